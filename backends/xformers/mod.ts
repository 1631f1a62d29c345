/**
 * The xformers backend: the portable baseline: PagedAttention-v1 decode,
 * memory-efficient prefill, every KV dtype by dequantizing on load.
 *
 * Status: the native target runs (Rust kernels in native/src/xformers/,
 * available when the addon is built); the WebGPU target runs WGSL kernels
 * (webgpu_backend.ts) wherever a WebGPU adapter exists, and its probe says
 * why not elsewhere.
 *
 * @example Usage
 * ```ts
 * import backend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backend.name, "xformers");
 * const native = backend.targets.find((t) => t.target === "native")!;
 * const probe = await native.probe();
 * if (probe.available) {
 *   const live = await native.create();
 *   assert.equal(live.target, "native");
 *   await live.dispose();
 * } else {
 *   assert.match(probe.reason, /native addon/); // e.g. not built: how to build it
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
import { KERNEL_PATH_SETTING } from "../../native/mod.ts";
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";
import { XFORMERS_NATIVE_VERSION } from "./native_backend.ts";
import { XFORMERS_NATIVE_TARGET } from "./native_target.ts";
import { XFORMERS_WEBGPU_TARGET } from "./webgpu_target.ts";

// The entry exports data a user can inspect (capabilities, targets) and the
// definition; instances come from `target.create()`, so the concrete
// instance and cache classes stay internal (they change with the contract).
export {
  XFORMERS_CAPABILITIES,
  XFORMERS_NATIVE_TARGET,
  XFORMERS_WEBGPU_TARGET,
};

/** The xformers backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "xformers",
  version: XFORMERS_NATIVE_VERSION,
  description:
    "portable baseline: PagedAttention-v1 decode, memory-efficient prefill, dequantize on load",
  targets: [XFORMERS_NATIVE_TARGET, XFORMERS_WEBGPU_TARGET],
  settings: [KERNEL_PATH_SETTING],
});
export default definition;
