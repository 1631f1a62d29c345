/**
 * The xformers backend: portable baseline: PagedAttention-v1 decode, memory-efficient prefill, dequantize on load
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
 * assert.equal(backend.name, "xformers");
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
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";

export { XFORMERS_CAPABILITIES };

// Neither target has kernels yet. The native probe still reports the
// addon's own state first, so the reason tells a user what they can fix.
const missing = (target: Target): Availability => {
  if (target === "native") {
    const addon = probeNativeAddon();
    if (!addon.available) return addon;
    return {
      available: false,
      reason:
        `the native addon loaded (kernel path ${addon.kernelPath}) but has no xformers kernels in this version yet`,
    };
  }
  return {
    available: false,
    reason: `xformers has no ${target} kernels in this version yet`,
  };
};

const target = (t: Target) => ({
  target: t,
  capabilities: XFORMERS_CAPABILITIES,
  probe: () => missing(t),
  create: (): never => {
    throw new Error(
      `Backend xformers cannot be created on ${t}: it has no ${t} kernels in this version yet; use --backend reference`,
    );
  },
});

/** The xformers backend's definition. */
const definition: BackendDefinition = defineBackend({
  apiVersion: BACKEND_API_VERSION,
  name: "xformers",
  version: "0.0.0",
  description:
    "portable baseline: PagedAttention-v1 decode, memory-efficient prefill, dequantize on load",
  targets: [target("native"), target("webgpu")],
});
export default definition;
