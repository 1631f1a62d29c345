/**
 * The flashinfer backend's native target entry for mod.ts: its
 * capabilities, a probe that loads the addon and checks that it has the
 * flashinfer kernels (else says why, e.g. how to build it), and create().
 *
 * @module
 */

import type {
  Availability,
  BackendTarget,
  CreateBackendOptions,
} from "../../core/backend.ts";
import type { BackendSetting } from "../../core/settings.ts";
import {
  KERNEL_PATH_SETTING,
  kernelPathOf,
  loadNativeAddon,
  probeNativeAddon,
} from "../../native/mod.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import { createFlashinferNativeBackend } from "./native_backend.ts";

function probeNative(): Availability {
  const addon = probeNativeAddon();
  if (!addon.available) return addon;
  if (typeof addon.addon.flashinferRun !== "function") {
    return {
      available: false,
      reason:
        "native addon has no flashinfer kernels (an older build): rebuild with deno task build:native",
    };
  }
  return {
    available: true,
    detail:
      `kernel path ${addon.kernelPath}, ${addon.addon.poolThreads()} threads`,
  };
}

/** The most keys a split-KV chunk may hold: the default, "no limit". */
export const MAX_CHUNK_KEYS = 2 ** 31 - 1;

/** The flashinfer settings (all on native): its definition's schema. */
export const FLASHINFER_SETTINGS: readonly BackendSetting[] = [
  KERNEL_PATH_SETTING,
  {
    name: "maxChunkKeys",
    type: "integer",
    min: 1,
    max: MAX_CHUNK_KEYS,
    default: MAX_CHUNK_KEYS,
    targets: ["native"],
    description:
      "Longest split-KV chunk in keys (tests shrink it to merge many chunks); the default means no limit",
  },
];

/**
 * The native target of the flashinfer backend.
 *
 * @example Usage
 * ```ts
 * import { FLASHINFER_NATIVE_TARGET } from "./native_target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await FLASHINFER_NATIVE_TARGET.probe();
 * assert.equal(FLASHINFER_NATIVE_TARGET.target, "native");
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.match(probe.reason, /^native addon /);
 * ```
 */
export const FLASHINFER_NATIVE_TARGET: BackendTarget = {
  target: "native",
  capabilities: FLASHINFER_CAPABILITIES,
  probe: probeNative,
  /** Settings `kernelPath`, `maxChunkKeys`, checked and defaulted (FLASHINFER_SETTINGS). */
  create: (options?: CreateBackendOptions) => {
    const probe = probeNative();
    if (!probe.available) {
      throw new Error(
        `Backend flashinfer cannot be created on native: ${probe.reason}`,
      );
    }
    const settings = options?.settings;
    const maxChunkKeys = settings?.maxChunkKeys;
    return createFlashinferNativeBackend(loadNativeAddon(), {
      kernelPath: kernelPathOf(settings),
      ...(typeof maxChunkKeys === "number" && maxChunkKeys < MAX_CHUNK_KEYS
        ? { maxChunkKeys }
        : {}),
    });
  },
};
