/**
 * The flashinfer backend: fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant
 *
 * Status: the WebGPU target runs WGSL kernels (webgpu_backend.ts: planned
 * page tables, split-KV decode with a log-sum-exp merge, GQA-packed prefill)
 * wherever a WebGPU adapter exists; the native target has no kernels in this
 * version yet, and its probe says so. See the Status table in README.md.
 *
 * @example Usage
 * ```ts
 * import backend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backend.name, "flashinfer");
 * const native = backend.targets.find((t) => t.target === "native")!;
 * assert.equal((await native.probe()).available, false);
 * const webgpu = backend.targets.find((t) => t.target === "webgpu")!;
 * const probe = await webgpu.probe();
 * if (probe.available) {
 *   const live = await webgpu.create();
 *   assert.equal(live.target, "webgpu");
 *   await live.dispose();
 * }
 * ```
 *
 * @module
 */

import {
  BACKEND_API_VERSION,
  type BackendDefinition,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import { FLASHINFER_NATIVE_TARGET } from "./native_target.ts";
import { FLASHINFER_WEBGPU_TARGET } from "./webgpu_target.ts";

export {
  FLASHINFER_CAPABILITIES,
  FLASHINFER_NATIVE_TARGET,
  FLASHINFER_WEBGPU_TARGET,
};
export {
  createFlashinferWebGpuBackend,
  FLASHINFER_WEBGPU_VERSION,
  type FlashinferWebGpuBackend,
  type FlashinferWebGpuOptions,
} from "./webgpu_backend.ts";
export type { FlashinferPlan } from "./webgpu_plan.ts";

/** The flashinfer backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "flashinfer",
  version: "0.1.0",
  description:
    "fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant",
  targets: [FLASHINFER_NATIVE_TARGET, FLASHINFER_WEBGPU_TARGET],
});
export default definition;
