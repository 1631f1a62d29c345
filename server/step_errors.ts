/**
 * How the server answers a request whose generation failed inside an
 * attention backend, by class, in one place: a `BackendError` (what the
 * engine makes of anything a backend throws during a step) is a 500 naming
 * the backend, target and layer as a backend bug to report, never a 400; a
 * `DeviceLostError` is a 503, because nothing on that device can run again
 * in this process. Request validation errors never get here: they are 400s
 * naming the field (http_error.ts).
 *
 * @module
 */

import { BackendError, DeviceLostError } from "../core/backend_errors.ts";
import { HttpError } from "./http_error.ts";

/** The first BackendError on the error's cause chain, if any. */
export function findBackendError(error: unknown): BackendError | undefined {
  // The engine wraps a step's failure (its message names every backend in
  // use) with the backend's own error as the cause.
  for (let e = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof BackendError) return e;
    e = e.cause;
  }
  return undefined;
}

/**
 * The response for a backend failure, or undefined when the error is not
 * one (the caller keeps its own 500).
 *
 * @example A backend bug is a 500 naming the backend and layer
 * ```ts
 * import { backendFailure } from "./step_errors.ts";
 * import { BackendShapeError } from "../core/backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const cause = new BackendShapeError("keys has 3 elements, expected 4", {
 *   backend: "mine", target: "native", layer: 2,
 * });
 * const http = backendFailure(new Error("The forward pass failed", { cause }))!;
 * assert.equal(http.status, 500);
 * assert.equal(http.code, "backend_error");
 * assert.match(http.message, /^Backend mine \(native\) failed on layer 2: BackendShapeError: keys has 3/);
 * ```
 */
export function backendFailure(error: unknown): HttpError | undefined {
  const e = findBackendError(error);
  if (!e) return undefined;
  if (e instanceof DeviceLostError) {
    return new HttpError(
      503,
      `${e.message}: this server cannot run on that device again and refuses requests until it is restarted`,
      { type: "service_unavailable", code: "device_lost", cause: error },
    );
  }
  // An untyped throw attributed by the engine: its cause is what the
  // backend threw, and the wrapper's message would only repeat the names.
  const inner = e.constructor === BackendError && e.cause instanceof Error
    ? e.cause
    : e;
  const layer = e.layer === undefined ? "" : ` on layer ${e.layer}`;
  return new HttpError(
    500,
    `Backend ${e.backend} (${e.target}) failed${layer}: ${inner.name}: ${inner.message}: this is a bug in the backend, not in the request: report it to the backend's authors with this message`,
    { code: "backend_error", cause: error },
  );
}
