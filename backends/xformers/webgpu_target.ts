/**
 * The xformers backend's webgpu target entry for mod.ts: its capabilities,
 * a probe that reports the shared device (or why there is none), and
 * create(). Kept apart so that mod.ts only lists it.
 *
 * @module
 */

import type { Availability, BackendTarget } from "../../core/backend.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import {
  createXformersWebGpuBackend,
  XFORMERS_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";

/**
 * The webgpu target of the xformers backend.
 *
 * @example Usage
 * ```ts
 * import { XFORMERS_WEBGPU_TARGET } from "./webgpu_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await XFORMERS_WEBGPU_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export const XFORMERS_WEBGPU_TARGET: BackendTarget = {
  target: "webgpu",
  capabilities: XFORMERS_WEBGPU_CAPABILITIES,
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
  create: () => createXformersWebGpuBackend(),
};
