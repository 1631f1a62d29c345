/**
 * The flashinfer backend: fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant
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
 * assert.equal(backend.name, "flashinfer");
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
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";

export { FLASHINFER_CAPABILITIES };

// Neither target has kernels yet. The native probe still reports the
// addon's own state first, so the reason tells a user what they can fix.
const missing = (target: Target): Availability => {
  if (target === "native") {
    const addon = probeNativeAddon();
    if (!addon.available) return addon;
    return {
      available: false,
      reason:
        `the native addon loaded (kernel path ${addon.kernelPath}) but has no flashinfer kernels in this version yet`,
    };
  }
  return {
    available: false,
    reason: `flashinfer has no ${target} kernels in this version yet`,
  };
};

const target = (t: Target) => ({
  target: t,
  capabilities: FLASHINFER_CAPABILITIES,
  probe: () => missing(t),
  create: (): never => {
    throw new Error(
      `Backend flashinfer cannot be created on ${t}: it has no ${t} kernels in this version yet; use --backend reference`,
    );
  },
});

/** The flashinfer backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "flashinfer",
  version: "0.0.0",
  description:
    "fast paged path: planned page tables, split-KV decode, GQA fusion, fused dequant",
  targets: [target("native"), target("webgpu")],
});
export default definition;
