/**
 * Where the native crate and its built addon live.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

// A remote copy of this module (not file:) has no crate next to it; its
// href still makes a path that plainly does not exist.
function toPath(url: URL): string {
  return url.protocol === "file:" ? fileURLToPath(url) : url.href;
}

/** The crate directory (native/), holding Cargo.toml and package.json. */
export const NATIVE_CRATE_DIR: string = toPath(new URL(".", import.meta.url))
  .replace(/[\\/]$/, "");

/**
 * The built addon, written by `deno task build:native`:
 * native/kvplug_native.node (the napi `binaryName` plus `.node`).
 */
export const NATIVE_ADDON_PATH: string = toPath(
  new URL("./kvplug_native.node", import.meta.url),
);
