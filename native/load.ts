/**
 * Loads the native addon with Node's `require` (Deno runs .node files
 * through its Node-API support; this needs `--allow-ffi`) and refuses an
 * addon built for another ABI.
 *
 * @module
 */

import { createRequire } from "node:module";
import { NativeAbiError, NativeAddonError } from "./errors.ts";
import { NATIVE_ADDON_PATH } from "./paths.ts";
import { ADDON_ABI_VERSION, type NativeAddon } from "./types.ts";

const require = createRequire(import.meta.url);
const loaded = new Map<string, NativeAddon>();

/** Options for {@linkcode loadNativeAddon} and `probeNativeAddon()`. */
export interface LoadNativeAddonOptions {
  /**
   * The .node file to load.
   *
   * @default NATIVE_ADDON_PATH (native/kvplug_native.node)
   */
  addonPath?: string;
}

/**
 * Throws unless `actual` is the expected addon ABI, naming both numbers.
 *
 * @param actual What the addon's `abiVersion()` returned.
 * @param expected The ABI this TypeScript was written against.
 * @throws {NativeAbiError} On any other value.
 *
 * @example Refusing an addon from a newer build
 * ```ts
 * import { assertAbiVersion } from "./load.ts";
 * import assert from "node:assert/strict";
 *
 * assertAbiVersion(1, 1);
 * assert.throws(() => assertAbiVersion(2, 1), /ABI 2 does not match expected 1/);
 * ```
 */
export function assertAbiVersion(
  actual: unknown,
  expected: number = ADDON_ABI_VERSION,
): void {
  if (actual !== expected) throw new NativeAbiError(actual, expected);
}

/**
 * Loads the addon once per path and checks its ABI; later calls return the
 * same object. A process cannot unload a .node file, so a rebuilt addon
 * takes effect in the next process.
 *
 * @param options Which file to load.
 * @returns The addon's exports, typed.
 * @throws {NativeAddonError} When the file cannot be loaded.
 * @throws {NativeAbiError} When its ABI is not {@linkcode ADDON_ABI_VERSION}.
 *
 * @example Loading the built addon
 * ```ts
 * import { loadNativeAddon, probeNativeAddon } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * if (probeNativeAddon().available) {
 *   const addon = loadNativeAddon();
 *   assert.equal(addon.sumF32(new Float32Array([1, 2, 3.5])), 6.5);
 *   assert.equal(loadNativeAddon(), addon);
 * }
 * ```
 */
export function loadNativeAddon(
  options: LoadNativeAddonOptions = {},
): NativeAddon {
  const addonPath = options.addonPath ?? NATIVE_ADDON_PATH;
  const cached = loaded.get(addonPath);
  if (cached) return cached;
  let exports: Partial<NativeAddon>;
  try {
    exports = require(addonPath);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new NativeAddonError(
      `Native addon failed to load: ${detail}`,
      { cause: error },
    );
  }
  if (typeof exports?.abiVersion !== "function") {
    throw new NativeAbiError(
      "unknown (no abiVersion export)",
      ADDON_ABI_VERSION,
    );
  }
  assertAbiVersion(exports.abiVersion());
  const addon = exports as NativeAddon;
  loaded.set(addonPath, addon);
  return addon;
}
