/**
 * The xformers backend's native target entry for mod.ts: its capabilities,
 * a probe that loads the addon and checks that it has the xformers kernels
 * (else says why, e.g. how to build it), and create(). Kept apart so that
 * mod.ts only lists it.
 *
 * @module
 */

import type {
  Availability,
  BackendTarget,
  CreateBackendOptions,
} from "../../core/backend.ts";
import {
  kernelPathOf,
  loadNativeAddon,
  probeNativeAddon,
} from "../../native/mod.ts";
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";
import { createXformersNativeBackend } from "./native_backend.ts";

function probeNative(): Availability {
  const addon = probeNativeAddon();
  if (!addon.available) return addon;
  if (typeof addon.addon.xformersAttend !== "function") {
    return {
      available: false,
      reason:
        "native addon has no xformers kernels (an older build): rebuild with deno task build:native",
    };
  }
  return {
    available: true,
    detail:
      `kernel path ${addon.kernelPath}, ${addon.addon.poolThreads()} threads`,
  };
}

/**
 * The native target of the xformers backend.
 *
 * @example Usage
 * ```ts
 * import { XFORMERS_NATIVE_TARGET } from "./native_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await XFORMERS_NATIVE_TARGET.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.match(probe.reason, /^native addon /);
 * ```
 */
export const XFORMERS_NATIVE_TARGET: BackendTarget = {
  target: "native",
  capabilities: XFORMERS_CAPABILITIES,
  probe: probeNative,
  /** Setting `kernelPath` (KERNEL_PATH_SETTING), checked and defaulted. */
  create: (options?: CreateBackendOptions) => {
    const probe = probeNative();
    if (!probe.available) {
      throw new Error(
        `Backend xformers cannot be created on native: ${probe.reason}`,
      );
    }
    return createXformersNativeBackend(loadNativeAddon(), {
      kernelPath: kernelPathOf(options?.settings),
    });
  },
};
