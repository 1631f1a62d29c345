/**
 * The gate every backend's native tests share: builds the addon first when
 * cargo is here (so a test run never uses a stale one), then says why the
 * tests cannot run, if they cannot: cargo absent and no addon built, the
 * addon unusable, or the backend's kernels missing from it. Each test is
 * registered ignored, with that reason in its name, rather than silently
 * skipped.
 *
 * @example Usage
 * ```ts
 * import { nativeTestGate } from "./test_support.ts";
 *
 * import assert from "node:assert/strict";
 *
 * // In a test file: gate.test("name", fn) registers the test, ignored
 * // with the reason when the gate is closed.
 * const gate = await nativeTestGate("xformers", "xformersAttend");
 * if (gate.skipReason !== undefined) assert.match(gate.skipReason, /native addon|cargo/);
 * ```
 *
 * @module
 */

import { CARGO_MISSING, ensureNativeBuilt, hasCommand } from "./build.ts";
import { probeNativeAddon } from "./probe.ts";
import {
  type NativeKernelExport,
  nativeKernelsAvailability,
} from "./target.ts";

/** Whether a backend's native tests run here, and how to register them. */
export interface NativeTestGate {
  /** Why the tests cannot run here, or undefined when they can. */
  readonly skipReason: string | undefined;
  /**
   * `Deno.test`, ignored (with the reason in its name) when `skip` (by
   * default {@linkcode NativeTestGate.skipReason}) is set.
   */
  test(
    name: string,
    fn: () => void | Promise<void>,
    skip?: string | undefined,
  ): void;
}

// One build check per process, however many test files ask.
let built: Promise<boolean> | undefined;
function buildOnce(): Promise<boolean> {
  return built ??= (async () => {
    const hasCargo = await hasCommand("cargo");
    if (hasCargo) await ensureNativeBuilt({ quiet: true });
    return hasCargo;
  })();
}

/**
 * Builds the addon if cargo is here and answers whether `backend`'s native
 * tests can run (see {@linkcode NativeTestGate}); warns once with the
 * reason when they cannot.
 *
 * @param backend The backend's name, for the reason and the warning.
 * @param kernels The addon function that proves its kernels are built.
 */
export async function nativeTestGate(
  backend: string,
  kernels: NativeKernelExport,
): Promise<NativeTestGate> {
  const hasCargo = await buildOnce();
  const probe = probeNativeAddon();
  const availability = nativeKernelsAvailability(backend, kernels, probe);
  const skipReason = availability.available
    ? undefined
    : !probe.available && !hasCargo
    ? CARGO_MISSING
    : availability.reason;
  if (skipReason) {
    console.warn(`${backend} native tests ignored: ${skipReason}`);
  }
  return {
    skipReason,
    test: (name, fn, skip = skipReason) =>
      Deno.test({
        name: skip ? `${name} (ignored: ${skip})` : name,
        ignore: skip !== undefined,
        fn,
      }),
  };
}
