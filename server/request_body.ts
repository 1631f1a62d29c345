/**
 * Reads and checks OpenAI request bodies: bytes must be UTF-8, the body a
 * JSON object, every field of the right type and range. Each failure is a
 * 400 naming the field, so a client can fix its request.
 *
 * @module
 */

import { badRequest } from "./http_error.ts";

/** A JSON object body, read strictly. */
export async function readJsonObject(
  request: Request,
): Promise<Record<string, unknown>> {
  const bytes = new Uint8Array(await request.arrayBuffer());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest(
      "body",
      "The request body is not valid UTF-8: send UTF-8 encoded JSON",
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badRequest(
      "body",
      `The request body is not valid JSON: ${(error as Error).message}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("body", "The request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

type Kind = "string" | "number" | "integer" | "boolean" | "object" | "array";

/**
 * A field of the given kind, or undefined when absent (null counts as
 * absent, as OpenAI's API treats it).
 *
 * @example Usage
 * ```ts
 * import { field } from "./request_body.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(field({ n: 2 }, "n", "integer"), 2);
 * assert.throws(() => field({ n: "2" }, "n", "integer"), /n must be an integer, got "2"/);
 * ```
 */
export function field<T = unknown>(
  body: Record<string, unknown>,
  name: string,
  kind: Kind,
): T | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  const ok = kind === "integer"
    ? Number.isInteger(v)
    : kind === "array"
    ? Array.isArray(v)
    : kind === "object"
    ? typeof v === "object" && !Array.isArray(v)
    : kind === "string"
    ? typeof v === "string"
    : kind === "number"
    ? typeof v === "number"
    : typeof v === "boolean";
  if (!ok) {
    const article = /^[aeiou]/.test(kind) ? "an" : "a";
    throw badRequest(
      name,
      `${name} must be ${article} ${kind}, got ${
        JSON.stringify(v)?.slice(0, 80)
      }`,
    );
  }
  return v as T;
}
