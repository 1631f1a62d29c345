/**
 * The fa3 backend's native target entry for mod.ts: its capabilities (all
 * of FA3_CAPABILITIES), a probe that loads the addon and checks that it
 * has the fa3 kernels (else says why), and create(), which receives the
 * native settings of FA3_SETTINGS (settings.ts) checked and defaulted.
 *
 * @example Usage
 * ```ts
 * import { FA3_NATIVE_TARGET } from "./native_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FA3_NATIVE_TARGET.probe();
 * assert.equal(FA3_NATIVE_TARGET.target, "native");
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.ok(probe.reason.length > 0);
 * ```
 *
 * @module
 */

import type {
  Availability,
  BackendTarget,
  CreateBackendOptions,
} from "../../core/backend.ts";
import type { BackendCapabilities } from "../../core/capabilities.ts";
import { loadNativeAddon, probeNativeAddon } from "../../native/mod.ts";
import { FA3_CAPABILITIES } from "./capabilities.ts";
import { createFa3NativeBackend } from "./native_backend.ts";

/**
 * What the native kernels serve: everything fa3 declares (fp8_e4m3 and
 * int8 in both schemes, head dims 64/128/256, blocks 16/32/64, sliding
 * window, soft-cap, prefill, decode, mixed batches).
 */
export const FA3_NATIVE_CAPABILITIES: BackendCapabilities = {
  ...FA3_CAPABILITIES,
};

function probeNative(): Availability {
  const addon = probeNativeAddon();
  if (!addon.available) return addon;
  if (typeof addon.addon.fa3Attend !== "function") {
    return {
      available: false,
      reason:
        "native addon has no fa3 kernels (an older build): rebuild with deno task build:native",
    };
  }
  return {
    available: true,
    detail:
      `kernel path ${addon.kernelPath}, ${addon.addon.poolThreads()} threads`,
  };
}

/** The native target of the fa3 backend. */
export const FA3_NATIVE_TARGET: BackendTarget = {
  target: "native",
  capabilities: FA3_NATIVE_CAPABILITIES,
  probe: probeNative,
  create: (options?: CreateBackendOptions) => {
    const probe = probeNative();
    if (!probe.available) {
      throw new Error(
        `Backend fa3 cannot be created on native: ${probe.reason}`,
      );
    }
    return createFa3NativeBackend(
      loadNativeAddon(),
      FA3_NATIVE_CAPABILITIES,
      options?.settings,
    );
  },
};
