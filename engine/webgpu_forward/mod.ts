/**
 * The decoder forward pass kept on one WebGPU device
 * ({@linkcode WebGpuTransformer}): weights uploaded once, every op a WGSL
 * kernel compiled once per device ({@linkcode ForwardKernels}), the cache
 * write and attention recorded through each layer's device-resident
 * backend, and one read-back per step, of the logits that are sampled.
 *
 * @example The loader
 * ```ts
 * import { WebGpuTransformer } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof WebGpuTransformer.load, "function");
 * ```
 *
 * @module
 */

export * from "./activations.ts";
export * from "./device_weights.ts";
export * from "./kernels.ts";
export * from "./webgpu_transformer.ts";
