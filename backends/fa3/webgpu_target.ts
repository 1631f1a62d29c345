/**
 * The fa3 backend's WebGPU target entry for mod.ts. This version has no
 * fa3 WGSL kernels, and the probe says so.
 *
 * @example Usage
 * ```ts
 * import { FA3_WEBGPU_TARGET } from "./webgpu_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FA3_WEBGPU_TARGET.probe();
 * assert.equal(FA3_WEBGPU_TARGET.target, "webgpu");
 * if (!probe.available) assert.ok(probe.reason.length > 0);
 * ```
 *
 * @module
 */

import type { BackendTarget } from "../../core/backend.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";

/** The WebGPU target of the fa3 backend. */
export const FA3_WEBGPU_TARGET: BackendTarget = {
  target: "webgpu",
  capabilities: FA3_CAPABILITIES,
  probe: () => ({
    available: false,
    reason: "fa3 has no webgpu kernels in this version yet",
  }),
  create: (): never => {
    throw new Error(
      "Backend fa3 cannot be created on webgpu: it has no webgpu kernels in this version yet; use --backend reference",
    );
  },
};
