/**
 * Errors that carry their own HTTP response, with OpenAI's error body
 * (`{ error: { message, type, param, code } }`), as Hono's HTTPException
 * carries its response. Anything else becomes a logged 500.
 *
 * @module
 */

/** OpenAI's error types. */
export type ErrorType =
  | "invalid_request_error"
  | "not_found_error"
  | "server_error"
  | "service_unavailable";

/** An error with a status, an OpenAI-style body, and the field at fault. */
export class HttpError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  readonly code: string | null;

  constructor(
    status: number,
    message: string,
    options: {
      type?: ErrorType;
      param?: string;
      code?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "HttpError";
    this.status = status;
    this.type = options.type ??
      (status >= 500 ? "server_error" : "invalid_request_error");
    this.param = options.param ?? null;
    this.code = options.code ?? null;
  }

  /** The JSON body OpenAI clients parse. */
  get body(): {
    error: {
      message: string;
      type: ErrorType;
      param: string | null;
      code: string | null;
    };
  } {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
      },
    };
  }

  /**
   * The response.
   *
   * @example Usage
   * ```ts
   * import { HttpError } from "./http_error.ts";
   * import assert from "node:assert/strict";
   *
   * const res = new HttpError(400, "max_tokens must be positive", { param: "max_tokens" }).getResponse();
   * assert.equal(res.status, 400);
   * assert.equal((await res.json()).error.param, "max_tokens");
   * ```
   */
  getResponse(): Response {
    return Response.json(this.body, { status: this.status });
  }
}

/** A 400 naming the request field at fault. */
export function badRequest(param: string, message: string): HttpError {
  return new HttpError(400, message, { param });
}
