/**
 * Asks whether the native addon can be used, and if not, why, in words a
 * user can act on. Never throws.
 *
 * @module
 */

import { NativeAbiError } from "./errors.ts";
import { loadNativeAddon, type LoadNativeAddonOptions } from "./load.ts";
import { NATIVE_ADDON_PATH } from "./paths.ts";
import type { CpuFeature, KernelPathName, NativeAddon } from "./types.ts";

/** The answer of {@linkcode probeNativeAddon}. */
export type NativeProbe =
  | {
    /** The addon loaded and its ABI matches. */
    readonly available: true;
    /** The loaded addon. */
    readonly addon: NativeAddon;
    /** The kernel path in use now (`KVPLUG_NATIVE_PATH` applied). */
    readonly kernelPath: KernelPathName;
    /** Why that path, e.g. `avx512_vnni is the best path this CPU supports`. */
    readonly kernelReason: string;
    /** The CPU features detected at run time. */
    readonly features: CpuFeature[];
  }
  | {
    /** The addon cannot be used. */
    readonly available: false;
    /**
     * Why, with the fix: `native addon not built: run deno task build:native
     * (needs cargo)`, `native addon failed to load: <error>` or `native
     * addon ABI 2 does not match expected 1: rebuild with deno task
     * build:native`.
     */
    readonly reason: string;
  };

/** The reason {@linkcode probeNativeAddon} gives when the file is missing. */
export const NOT_BUILT_REASON =
  "native addon not built: run deno task build:native (needs cargo)";

function fileExists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Loads the addon if it can, reporting the kernel path and features, or the
 * reason it cannot be used. Selectors call this to decide whether native
 * backends are candidates.
 *
 * @param options Which file to probe.
 * @returns `{ available: true, ... }` or `{ available: false, reason }`.
 *
 * @example A missing addon says how to build it
 * ```ts
 * import { probeNativeAddon } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = probeNativeAddon({ addonPath: "/nonexistent/kvplug_native.node" });
 * assert.equal(probe.available, false);
 * if (!probe.available) assert.match(probe.reason, /run deno task build:native/);
 * ```
 */
export function probeNativeAddon(
  options: LoadNativeAddonOptions = {},
): NativeProbe {
  const addonPath = options.addonPath ?? NATIVE_ADDON_PATH;
  try {
    if (!fileExists(addonPath)) {
      return { available: false, reason: NOT_BUILT_REASON };
    }
    const addon = loadNativeAddon({ addonPath });
    const selection = addon.kernelSelection();
    return {
      available: true,
      addon,
      kernelPath: selection.path,
      kernelReason: selection.reason,
      features: addon.cpuFeatures(),
    };
  } catch (error) {
    if (error instanceof NativeAbiError) {
      return {
        available: false,
        reason: `native addon ABI ${
          String(error.actual)
        } does not match expected ${error.expected}: rebuild with deno task build:native`,
      };
    }
    const cause = error instanceof Error && error.cause instanceof Error
      ? error.cause
      : error;
    const detail = cause instanceof Error ? cause.message : String(cause);
    return {
      available: false,
      reason: `native addon failed to load: ${detail}`,
    };
  }
}
