/**
 * The flashinfer backend: fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant
 *
 * Status: both targets run kernels with FlashInfer's plan/run shape (page
 * tables and the split-KV partition planned once per batch, log-sum-exp
 * merge, GQA group fusion, dequantization fused into the inner loop). The
 * WebGPU target (webgpu_backend.ts) runs WGSL wherever an adapter exists;
 * the native target (native_backend.ts) runs the Rust kernels of the addon
 * (native/src/flashinfer/) on its thread pool, with AVX-512, AVX2 and
 * scalar paths chosen at run time. See the Status table in README.md.
 *
 * @example Usage
 * ```ts
 * import backend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backend.name, "flashinfer");
 * const native = backend.targets.find((t) => t.target === "native")!;
 * if ((await native.probe()).available) {
 *   const live = await native.create();
 *   assert.equal(live.target, "native");
 *   await live.dispose();
 * }
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
  type BackendTarget,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { kernelPathOf } from "../../native/mod.ts";
import { nativeTarget } from "../../native/target.ts";
import { webGpuTarget } from "../../webgpu/target.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import { createFlashinferNativeBackend } from "./native_backend.ts";
import { FLASHINFER_SETTINGS, UNLIMITED_CHUNK_KEYS } from "./settings.ts";
import {
  createFlashinferWebGpuBackend,
  FLASHINFER_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";

// The entry exports data a user can inspect (capabilities, targets,
// settings) and the definition; instances come from `target.create()`, so
// the concrete instance, cache and plan types stay internal (they change
// with the contract).
export { FLASHINFER_CAPABILITIES, FLASHINFER_SETTINGS };

/**
 * The native target of the flashinfer backend. create() receives the
 * settings `kernelPath` and `maxChunkKeys` checked and defaulted
 * (FLASHINFER_SETTINGS); the default chunk length means no limit.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_NATIVE_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FLASHINFER_NATIVE_TARGET.probe();
 * assert.equal(FLASHINFER_NATIVE_TARGET.target, "native");
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.match(probe.reason, /^native addon /);
 * ```
 */
export const FLASHINFER_NATIVE_TARGET: BackendTarget = nativeTarget({
  backend: "flashinfer",
  capabilities: FLASHINFER_CAPABILITIES,
  kernels: "flashinferRun",
  create: (addon, options) => {
    const settings = options?.settings;
    const maxChunkKeys = settings?.maxChunkKeys;
    return createFlashinferNativeBackend(addon, {
      kernelPath: kernelPathOf(settings),
      ...(typeof maxChunkKeys === "number" &&
          maxChunkKeys < UNLIMITED_CHUNK_KEYS
        ? { maxChunkKeys }
        : {}),
    });
  },
});

/**
 * The webgpu target of the flashinfer backend.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_WEBGPU_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FLASHINFER_WEBGPU_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export const FLASHINFER_WEBGPU_TARGET: BackendTarget = webGpuTarget({
  capabilities: FLASHINFER_WEBGPU_CAPABILITIES,
  create: () => createFlashinferWebGpuBackend(),
});

/** The flashinfer backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "flashinfer",
  version: "0.1.0",
  description:
    "fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant",
  targets: [FLASHINFER_NATIVE_TARGET, FLASHINFER_WEBGPU_TARGET],
  settings: FLASHINFER_SETTINGS,
});
export default definition;
