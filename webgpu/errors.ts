/**
 * Errors of the shared WebGPU plumbing.
 *
 * @module
 */

/** WebGPU cannot be used here; the message says why and what to do. */
export class WebGpuUnavailableError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WebGpuUnavailableError";
  }
}

/** A WGSL module or pipeline failed to compile; the message holds the compiler's report. */
export class WgslCompileError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WgslCompileError";
  }
}
