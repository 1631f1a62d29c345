/**
 * The built-in backends, in the order the selector prefers them. This index
 * sits beside the backends (not in core) so that the core never names one.
 *
 * @example Usage
 * ```ts
 * import { builtinRegistry } from "./builtin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(builtinRegistry().names, ["flashinfer", "xformers", "fa3", "reference"]);
 * ```
 *
 * @module
 */

import { BackendRegistry } from "../core/registry.ts";

/** A registry of the built-in backends, loaded lazily by name. */
export function builtinRegistry(): BackendRegistry {
  return new BackendRegistry({
    flashinfer: async () => (await import("./flashinfer/mod.ts")).default,
    xformers: async () => (await import("./xformers/mod.ts")).default,
    fa3: async () => (await import("./fa3/mod.ts")).default,
    reference: async () => (await import("./reference/mod.ts")).default,
  });
}
