/**
 * Shared WebGPU plumbing for every backend's webgpu target: one adapter and
 * device request with the limits kernels need ({@linkcode requestWebGpuDevice}),
 * a process-wide device ({@linkcode sharedWebGpuDevice}), a probe that never
 * throws ({@linkcode probeWebGpu}), a per-device pipeline cache keyed by
 * source and override constants ({@linkcode pipelineCacheFor}), and buffer
 * helpers. It knows nothing about attention.
 *
 * @example Probing before use
 * ```ts
 * import { probeWebGpu } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await probeWebGpu();
 * if (!probe.available) assert.match(probe.reason, /WebGPU/);
 * ```
 *
 * @module
 */

export * from "./buffers.ts";
export * from "./device.ts";
export * from "./errors.ts";
export * from "./pipeline_cache.ts";
export * from "./probe.ts";
export * from "./shared_device.ts";
export * from "./kv_wgsl.ts";
export * from "./submission.ts";
export * from "./device_attention.ts";
export * from "./target.ts";
