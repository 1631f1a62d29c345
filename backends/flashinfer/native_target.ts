/**
 * The flashinfer backend's native target entry for mod.ts. This version has
 * no native flashinfer kernels: the probe reports the addon's own state
 * first (so the reason tells a user what they can fix), then that.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_NATIVE_TARGET } from "./native_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FLASHINFER_NATIVE_TARGET.probe();
 * assert.equal(FLASHINFER_NATIVE_TARGET.target, "native");
 * if (!probe.available) assert.ok(probe.reason.length > 0);
 * ```
 *
 * @module
 */

import type { Availability, BackendTarget } from "../../core/backend.ts";
import { probeNativeAddon } from "../../native/mod.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";

function probeNative(): Availability {
  const addon = probeNativeAddon();
  if (!addon.available) return addon;
  return {
    available: false,
    reason:
      `the native addon loaded (kernel path ${addon.kernelPath}) but has no flashinfer native kernels in this version yet`,
  };
}

/** The native target of the flashinfer backend. */
export const FLASHINFER_NATIVE_TARGET: BackendTarget = {
  target: "native",
  capabilities: FLASHINFER_CAPABILITIES,
  probe: probeNative,
  create: (): never => {
    throw new Error(
      "Backend flashinfer cannot be created on native: it has no native kernels in this version yet; use --target webgpu",
    );
  },
};
