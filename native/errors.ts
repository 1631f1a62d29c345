/**
 * Errors raised while loading or building the native addon.
 *
 * @module
 */

/**
 * Thrown when the addon file cannot be loaded, e.g. it is missing, was built
 * for another platform, or `--allow-ffi` was not granted.
 *
 * @example Wrapping a load failure
 * ```ts
 * import { NativeAddonError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const cause = new Error("Cannot find module");
 * const error = new NativeAddonError("Native addon failed to load: Cannot find module", { cause });
 * assert.equal(error.name, "NativeAddonError");
 * assert.equal(error.cause, cause);
 * ```
 */
export class NativeAddonError extends Error {
  /**
   * @param message What failed and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NativeAddonError";
  }
}

/**
 * Thrown when the addon reports an ABI other than the one this TypeScript
 * expects: the .node file is older or newer than native/mod.ts.
 *
 * @example Reading both numbers
 * ```ts
 * import { NativeAbiError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new NativeAbiError(2, 1);
 * assert.equal(error.actual, 2);
 * assert.equal(
 *   error.message,
 *   "Native addon ABI 2 does not match expected 1: rebuild with deno task build:native",
 * );
 * ```
 */
export class NativeAbiError extends NativeAddonError {
  /** The ABI the addon reported (whatever `abiVersion()` returned). */
  readonly actual: unknown;
  /** The ABI this TypeScript expects. */
  readonly expected: number;

  /**
   * @param actual The ABI the addon reported.
   * @param expected The ABI this TypeScript expects.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(actual: unknown, expected: number, options?: ErrorOptions) {
    super(
      `Native addon ABI ${
        String(actual)
      } does not match expected ${expected}: rebuild with deno task build:native`,
      options,
    );
    this.name = "NativeAbiError";
    this.actual = actual;
    this.expected = expected;
  }
}

/**
 * Thrown when building the addon fails: a tool is missing or the build
 * exits with an error. The message names the fix.
 *
 * @example Naming the missing tool
 * ```ts
 * import { NativeBuildError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new NativeBuildError("cargo was not found: install Rust");
 * assert.equal(error.name, "NativeBuildError");
 * ```
 */
export class NativeBuildError extends Error {
  /**
   * @param message What failed and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NativeBuildError";
  }
}
