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
  type Availability,
  BACKEND_API_VERSION,
  type BackendDefinition,
  type Target,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { probeNativeAddon } from "../../native/mod.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import { FLASHINFER_WEBGPU_TARGET } from "./webgpu_target.ts";

export { FLASHINFER_CAPABILITIES, FLASHINFER_WEBGPU_TARGET };
export {
  createFlashinferWebGpuBackend,
  FLASHINFER_WEBGPU_VERSION,
  type FlashinferWebGpuBackend,
  type FlashinferWebGpuOptions,
} from "./webgpu_backend.ts";
export type { FlashinferPlan } from "./webgpu_plan.ts";

// The native target has no kernels yet. Its probe still reports the addon's
// own state first, so the reason tells a user what they can fix.
const missing = (target: Target): Availability => {
  const addon = probeNativeAddon();
  if (!addon.available) return addon;
  return {
    available: false,
    reason:
      `the native addon loaded (kernel path ${addon.kernelPath}) but has no flashinfer ${target} kernels in this version yet`,
  };
};

const nativeTarget = (t: Target) => ({
  target: t,
  capabilities: FLASHINFER_CAPABILITIES,
  probe: () => missing(t),
  create: (): never => {
    throw new Error(
      `Backend flashinfer cannot be created on ${t}: it has no ${t} kernels in this version yet; use --target webgpu`,
    );
  },
});

/** The flashinfer backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "flashinfer",
  version: "0.1.0",
  description:
    "fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant",
  targets: [nativeTarget("native"), FLASHINFER_WEBGPU_TARGET],
});
export default definition;
