/**
 * The fa3 backend: 8-bit compute: int8 QK^T and PV with two-level accumulation (opt-in)
 *
 * Both targets are built here by the target factories (native/target.ts,
 * webgpu/target.ts), which own the probes; a target without kernels says
 * so through its probe, and the selector falls back with that reason. See
 * the Status table in README.md.
 *
 * The WebGPU target (webgpu_backend.ts) runs WGSL kernels wherever a
 * WebGPU adapter exists: Q quantized per query head, int8 QK^T and PV with
 * dot4I8Packed (or shifts where the WGSL feature is absent), fp8_e4m3
 * decoded by bit operations, P quantized to 8 bits, and two-level
 * accumulation. `create({ settings: { accumulationPromotion: false } })`
 * turns the promotion off (settings.ts lists every setting, per target;
 * from the command line: `--backend-setting accumulationPromotion=false`). Its
 * attention can also be recorded into a caller's command encoder
 * (DeviceResidentAttention, webgpu/device_attention.ts).
 *
 * @example Usage
 * ```ts
 * import backend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backend.name, "fa3");
 * assert.deepEqual(backend.targets.map((t) => t.target), ["native", "webgpu"]);
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
import { nativeTarget } from "../../native/target.ts";
import { webGpuTarget } from "../../webgpu/target.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";
import { createFa3NativeBackend } from "./native_backend.ts";
import { FA3_SETTINGS } from "./settings.ts";
import {
  createFa3WebGpuBackend,
  FA3_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";
import { hasPackedDot } from "./webgpu_kernels.ts";

export { FA3_CAPABILITIES, FA3_SETTINGS };

/**
 * The native target of the fa3 backend: everything fa3 declares (fp8_e4m3
 * and int8 in both schemes, head dims 64/128/256, blocks 16/32/64, sliding
 * window, soft-cap, prefill, decode, mixed batches); create() receives the
 * native settings of FA3_SETTINGS checked and defaulted.
 *
 * @example Usage
 * ```ts
 * import { FA3_NATIVE_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FA3_NATIVE_TARGET.probe();
 * assert.equal(FA3_NATIVE_TARGET.target, "native");
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.ok(probe.reason.length > 0);
 * ```
 */
export const FA3_NATIVE_TARGET: BackendTarget = nativeTarget({
  backend: "fa3",
  capabilities: FA3_CAPABILITIES,
  kernels: "fa3Attend",
  create: (addon, options) =>
    createFa3NativeBackend(addon, FA3_CAPABILITIES, options?.settings),
});

/**
 * The WebGPU target of the fa3 backend; its probe detail names the int8
 * dot it uses (dot4I8Packed, or shifts where the WGSL feature is absent).
 *
 * @example Usage
 * ```ts
 * import { FA3_WEBGPU_TARGET } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FA3_WEBGPU_TARGET.probe();
 * assert.equal(FA3_WEBGPU_TARGET.target, "webgpu");
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter .* \(/);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export const FA3_WEBGPU_TARGET: BackendTarget = webGpuTarget({
  capabilities: FA3_WEBGPU_CAPABILITIES,
  detail: () => ` (${hasPackedDot() ? "dot4I8Packed" : "int8 dot by shifts"})`,
  create: (options) => createFa3WebGpuBackend({ settings: options?.settings }),
});

/** The fa3 backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "fa3",
  version: "0.0.0",
  description:
    "8-bit compute: int8 QK^T and PV with two-level accumulation (opt-in)",
  optIn: true,
  targets: [FA3_NATIVE_TARGET, FA3_WEBGPU_TARGET],
  settings: FA3_SETTINGS,
});
export default definition;
