/**
 * The flashinfer backend's webgpu target entry for mod.ts: capabilities, a
 * probe through the shared WebGPU probe, and create().
 *
 * @module
 */

import type { Availability, BackendTarget } from "../../core/backend.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import {
  createFlashinferWebGpuBackend,
  FLASHINFER_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";

/**
 * The webgpu target of the flashinfer backend.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_WEBGPU_TARGET } from "./webgpu_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FLASHINFER_WEBGPU_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export const FLASHINFER_WEBGPU_TARGET: BackendTarget = {
  target: "webgpu",
  capabilities: FLASHINFER_WEBGPU_CAPABILITIES,
  async probe(): Promise<Availability> {
    const probe = await probeWebGpu();
    if (!probe.available) return probe;
    const features = probe.features.length > 0
      ? ` with ${probe.features.join(", ")}`
      : "";
    return {
      available: true,
      detail: `WebGPU adapter "${probe.adapterName}"${features}`,
      software: probe.isFallbackAdapter,
    };
  },
  create: () => createFlashinferWebGpuBackend(),
};
