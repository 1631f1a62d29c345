/**
 * The fa3 backend's WebGPU target entry for mod.ts: capabilities (all of
 * FA3_CAPABILITIES), a probe through the shared WebGPU probe, and create(),
 * which receives the settings checked and defaulted (FA3_SETTINGS in
 * settings.ts).
 *
 * @example Usage
 * ```ts
 * import { FA3_WEBGPU_TARGET } from "./webgpu_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FA3_WEBGPU_TARGET.probe();
 * assert.equal(FA3_WEBGPU_TARGET.target, "webgpu");
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 *
 * @module
 */

import type { Availability, BackendTarget } from "../../core/backend.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import {
  createFa3WebGpuBackend,
  FA3_WEBGPU_CAPABILITIES,
} from "./webgpu_backend.ts";
import { hasPackedDot } from "./webgpu_kernels.ts";

/** The WebGPU target of the fa3 backend. */
export const FA3_WEBGPU_TARGET: BackendTarget = {
  target: "webgpu",
  capabilities: FA3_WEBGPU_CAPABILITIES,
  async probe(): Promise<Availability> {
    const probe = await probeWebGpu();
    if (!probe.available) return probe;
    const dot = hasPackedDot() ? "dot4I8Packed" : "int8 dot by shifts";
    return {
      available: true,
      detail: `WebGPU adapter "${probe.adapterName}" (${dot})`,
      software: probe.isFallbackAdapter,
    };
  },
  create: (options) => createFa3WebGpuBackend({ settings: options?.settings }),
};
