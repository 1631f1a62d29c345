/**
 * The fa3 backend: 8-bit compute: int8 QK^T and PV with two-level accumulation (opt-in)
 *
 * Each target lives in its own file (native_target.ts, webgpu_target.ts);
 * a target without kernels says so through its probe, and the selector
 * falls back with that reason. See the Status table in README.md.
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
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";
import { FA3_NATIVE_TARGET } from "./native_target.ts";
import { FA3_SETTINGS } from "./settings.ts";
import { FA3_WEBGPU_TARGET } from "./webgpu_target.ts";

export { FA3_CAPABILITIES, FA3_NATIVE_TARGET, FA3_SETTINGS, FA3_WEBGPU_TARGET };

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
