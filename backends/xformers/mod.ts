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
  type BackendTarget,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { KERNEL_PATH_SETTING, kernelPathOf } from "../../native/mod.ts";
import { nativeTarget } from "../../native/target.ts";
import { webGpuTarget } from "../../webgpu/target.ts";
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";
import {
  createXformersNativeBackend,
  XFORMERS_NATIVE_VERSION,
} from "./native_backend.ts";
import {
  createXformersWebGpuBackend,
  XFORMERS_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";

// The entry exports data a user can inspect (capabilities, targets) and the
// definition; instances come from `target.create()`, so the concrete
// instance and cache classes stay internal (they change with the contract).
export { XFORMERS_CAPABILITIES };

/**
 * The native target of the xformers backend; create() receives the setting
 * `kernelPath` (KERNEL_PATH_SETTING) checked and defaulted.
 *
 * @example Usage
 * ```ts
 * import { XFORMERS_NATIVE_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await XFORMERS_NATIVE_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.match(probe.reason, /^native addon /);
 * ```
 */
export const XFORMERS_NATIVE_TARGET: BackendTarget = nativeTarget({
  backend: "xformers",
  capabilities: XFORMERS_CAPABILITIES,
  kernels: "xformersAttend",
  create: (addon, options) =>
    createXformersNativeBackend(addon, {
      kernelPath: kernelPathOf(options?.settings),
    }),
});

/**
 * The webgpu target of the xformers backend.
 *
 * @example Usage
 * ```ts
 * import { XFORMERS_WEBGPU_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await XFORMERS_WEBGPU_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export const XFORMERS_WEBGPU_TARGET: BackendTarget = webGpuTarget({
  capabilities: XFORMERS_WEBGPU_CAPABILITIES,
  create: () => createXformersWebGpuBackend(),
});

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
