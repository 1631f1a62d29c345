/**
 * The fa3 backend: 8-bit compute: int8 QK^T and PV with two-level accumulation (opt-in)
 *
 * Status: its capabilities are declared (so selection and its messages are
 * real), but neither kernel target is in this version yet; both probes say
 * so, and the selector falls back with that reason. See the Status table in README.md.
 *
 * @example Usage
 * ```ts
 * import backend from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(backend.name, "fa3");
 * const probe = await backend.targets[0].probe();
 * assert.equal(probe.available, false);
 * ```
 *
 * @module
 */

import {
  type Availability,
  BACKEND_API_VERSION,
  type BackendDefinition,
  type Target,
} from "../../core/backend.ts";
import { defineBackend } from "../../core/define_backend.ts";
import { probeNativeAddon } from "../../native/mod.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";

export { FA3_CAPABILITIES };

// Neither target has kernels yet. The native probe still reports the
// addon's own state first, so the reason tells a user what they can fix.
const missing = (target: Target): Availability => {
  if (target === "native") {
    const addon = probeNativeAddon();
    if (!addon.available) return addon;
    return {
      available: false,
      reason:
        `the native addon loaded (kernel path ${addon.kernelPath}) but has no fa3 kernels in this version yet`,
    };
  }
  return {
    available: false,
    reason: `fa3 has no ${target} kernels in this version yet`,
  };
};

const target = (t: Target) => ({
  target: t,
  capabilities: FA3_CAPABILITIES,
  probe: () => missing(t),
  create: (): never => {
    throw new Error(
      `Backend fa3 cannot be created on ${t}: it has no ${t} kernels in this version yet; use --backend reference`,
    );
  },
});

/** The fa3 backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "fa3",
  version: "0.0.0",
  description:
    "8-bit compute: int8 QK^T and PV with two-level accumulation (opt-in)",
  optIn: true,
  targets: [target("native"), target("webgpu")],
});
export default definition;
