/**
 * The native target: a Rust Node-API addon (native/src/) and its typed
 * TypeScript binding. Build it with `deno task build:native` (needs cargo);
 * load it with {@linkcode loadNativeAddon} (needs `--allow-ffi`), or ask
 * {@linkcode probeNativeAddon} whether it can be used and why not.
 *
 * @example Probing before use
 * ```ts
 * import { KERNEL_PATHS, probeNativeAddon } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = probeNativeAddon();
 * if (probe.available) {
 *   assert.ok(KERNEL_PATHS.includes(probe.addon.kernelPath()));
 * } else {
 *   assert.match(probe.reason, /^native addon /);
 * }
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./load.ts";
export * from "./paths.ts";
export * from "./probe.ts";
export * from "./types.ts";
export * from "./kernel_path_setting.ts";
export * from "./target.ts";
