/**
 * Errors a backend instance throws, typed so that callers map them by class,
 * not by message: every one names the backend, its target and (when known)
 * the layer. `UnsupportedLayerError` (capabilities.ts) is not one of them: it is the
 * selector's capability refusal before any instance exists (a configuration
 * problem the user fixes), while these are raised by a live instance (a
 * caller's or the backend's own bug, or a lost device).
 *
 * @module
 */

import type { Target } from "./backend.ts";

/** Which backend instance raised an error, and on which layer. */
export interface BackendErrorContext {
  /** The backend's name, as `--backend` spells it. */
  readonly backend: string;
  /** The target its kernels run on. */
  readonly target: Target;
  /** The layer index (LayerConfig.index) the call was for, when known. */
  readonly layer?: number;
}

/** Options for {@linkcode BackendError}: the context plus `{ cause }`. */
export interface BackendErrorOptions
  extends BackendErrorContext, ErrorOptions {}

/**
 * Thrown by a live backend instance. The subclasses name the usual
 * situations; a plain BackendError is anything else a backend reports, or
 * what {@linkcode attributeBackendError} makes of an untyped throw. A server
 * answers it with a 500 naming the backend: it is a bug to report, never the
 * client's fault.
 *
 * @example Usage
 * ```ts
 * import { BackendError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new BackendError("Kernel failed: out of registers", {
 *   backend: "fa3", target: "native", layer: 3,
 * });
 * assert.equal(error.name, "BackendError");
 * assert.equal(error.layer, 3);
 * assert.equal(error.where, "backend fa3 (native), layer 3");
 * ```
 */
export class BackendError extends Error {
  /** The backend's name. */
  readonly backend: string;
  /** The target its kernels run on. */
  readonly target: Target;
  /** The layer index the call was for, when known. */
  readonly layer?: number;

  /**
   * Builds the error; the subclasses below set their own name.
   *
   * @param message What went wrong and the fix, in the project's style.
   * @param options The backend, target, layer and `cause`.
   */
  constructor(message: string, options: BackendErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "BackendError";
    this.backend = options.backend;
    this.target = options.target;
    if (options.layer !== undefined) this.layer = options.layer;
  }

  /** "backend NAME (TARGET)" plus ", layer N" when known, for messages. */
  get where(): string {
    const layer = this.layer === undefined ? "" : `, layer ${this.layer}`;
    return `backend ${this.backend} (${this.target})${layer}`;
  }
}

/**
 * A member other than cacheBytesPerBlock(), disposeCache() or dispose() was
 * called after dispose().
 *
 * @example Usage
 * ```ts
 * import { BackendDisposedError, BackendError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new BackendDisposedError({ backend: "reference", target: "reference" });
 * assert.ok(error instanceof BackendError);
 * assert.equal(
 *   error.message,
 *   "Backend reference was disposed: create a new instance to keep using it",
 * );
 * ```
 */
export class BackendDisposedError extends BackendError {
  /**
   * Builds the error with the standard message.
   *
   * @param options The backend, target and (optional) layer.
   */
  constructor(options: BackendErrorOptions) {
    super(
      `Backend ${options.backend} was disposed: create a new instance to keep using it`,
      options,
    );
    this.name = "BackendDisposedError";
  }
}

/**
 * A cache or plan this instance did not make: another instance's or another
 * backend's, or a cache already released by disposeCache().
 *
 * @example Usage
 * ```ts
 * import { ForeignHandleError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new ForeignHandleError(
 *   "Backend xformers (native) was given a cache it did not create: pass the cache from its own createCache()",
 *   { backend: "xformers", target: "native" },
 * );
 * assert.equal(error.name, "ForeignHandleError");
 * ```
 */
export class ForeignHandleError extends BackendError {
  /**
   * Builds the error.
   *
   * @param message Which handle and the fix.
   * @param options The backend, target, layer and `cause`.
   */
  constructor(message: string, options: BackendErrorOptions) {
    super(message, options);
    this.name = "ForeignHandleError";
  }
}

/**
 * An input of the wrong length or shape (keys, values, query, out, pairs), a
 * slot or block outside the cache, a plan for another block size.
 *
 * @example Usage
 * ```ts
 * import { BackendShapeError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new BackendShapeError("keys has 32 elements, expected 64", {
 *   backend: "reference", target: "reference", layer: 0,
 * });
 * assert.equal(error.name, "BackendShapeError");
 * ```
 */
export class BackendShapeError extends BackendError {
  /**
   * Builds the error.
   *
   * @param message The input, the actual and the expected value.
   * @param options The backend, target, layer and `cause`.
   */
  constructor(message: string, options: BackendErrorOptions) {
    super(message, options);
    this.name = "BackendShapeError";
  }
}

/**
 * The GPU device under a backend was lost (driver reset, GPU removed, out of
 * memory); `cause` keeps what the device reported. Nothing on that device can
 * continue: a new instance (on a freshly requested device) is needed.
 *
 * @example Usage
 * ```ts
 * import { DeviceLostError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new DeviceLostError("the driver was reset", {
 *   backend: "xformers", target: "webgpu",
 * });
 * assert.equal(
 *   error.message,
 *   "The webgpu device of backend xformers was lost: the driver was reset: create a new backend instance (a new device is requested) or restart the server",
 * );
 * ```
 */
export class DeviceLostError extends BackendError {
  /**
   * Builds the error with the standard message around the device's reason.
   *
   * @param reason What the device reported (GPUDeviceLostInfo.message).
   * @param options The backend, target, layer and the device's `cause`.
   */
  constructor(reason: string, options: BackendErrorOptions) {
    super(
      `The ${options.target} device of backend ${options.backend} was lost: ${reason}: create a new backend instance (a new device is requested) or restart the server`,
      options,
    );
    this.name = "DeviceLostError";
  }
}

/**
 * What a caller makes of anything a backend member threw: a BackendError
 * keeps its class (its layer filled in from `context` if it had none, so
 * the report names it); anything else becomes a BackendError naming the
 * backend, target and layer, with the original as `cause`.
 *
 * @example Attributing an untyped throw
 * ```ts
 * import { attributeBackendError, BackendError } from "./backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = attributeBackendError(new TypeError("x is undefined"), {
 *   backend: "faulty", target: "reference", layer: 2,
 * });
 * assert.ok(error instanceof BackendError);
 * assert.equal(
 *   error.message,
 *   "Backend faulty (reference) failed on layer 2: TypeError: x is undefined",
 * );
 * ```
 */
export function attributeBackendError(
  error: unknown,
  context: BackendErrorContext,
): BackendError {
  if (error instanceof BackendError) {
    // The same instance, so its class, stack and cause survive.
    if (error.layer === undefined && context.layer !== undefined) {
      Object.defineProperty(error, "layer", { value: context.layer });
    }
    return error;
  }
  const what = error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
  const layer = context.layer === undefined ? "" : ` on layer ${context.layer}`;
  return new BackendError(
    `Backend ${context.backend} (${context.target}) failed${layer}: ${what}`,
    { ...context, cause: error },
  );
}
