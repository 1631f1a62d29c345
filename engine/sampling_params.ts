/**
 * Per-request sampling parameters, with OpenAI's defaults and names mapped
 * to ours, validated field by field.
 *
 * @module
 */

/** How to pick the next token and when to stop. */
export interface SamplingParams {
  /** 0 is greedy. @default 1 */
  readonly temperature: number;
  /** Keep the k most likely tokens; 0 keeps all. @default 0 */
  readonly topK: number;
  /** Keep the smallest set whose probability reaches p. @default 1 */
  readonly topP: number;
  /** Makes sampling reproducible. @default undefined (random) */
  readonly seed?: number;
  /** Output tokens at most, the prompt not counted; the context length also caps it. @default 16 */
  readonly maxTokens: number;
  /** Generation stops before any of these strings; they are not returned. @default [] */
  readonly stop: readonly string[];
  /** Keep going past the end-of-sequence token. @default false */
  readonly ignoreEos: boolean;
}

/** Defaults, as OpenAI's completions API has them. */
export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 1,
  topK: 0,
  topP: 1,
  maxTokens: 16,
  stop: [],
  ignoreEos: false,
};

/** A sampling parameter out of range; `field` names it as the API spells it. */
export class SamplingParamsError extends RangeError {
  /** The offending parameter in the API's snake_case (`top_p`), for a 400 response. */
  readonly field: string;
  /**
   * Creates the error.
   *
   * @param field The parameter's API name.
   * @param message The full sentence: field, allowed range and the value given.
   */
  constructor(field: string, message: string) {
    super(message);
    this.name = "SamplingParamsError";
    this.field = field;
  }
}

/**
 * Fills defaults and checks every field, throwing on the first bad one with
 * the field's name, its value and the allowed range.
 *
 * @example Usage
 * ```ts
 * import { samplingParams } from "./sampling_params.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(samplingParams({ temperature: 0 }).temperature, 0);
 * assert.throws(() => samplingParams({ topP: 1.5 }), /top_p must be in \(0, 1\], got 1.5/);
 * ```
 */
export function samplingParams(
  partial: Partial<SamplingParams> = {},
  limits: { maxTokens?: number } = {},
): SamplingParams {
  const p = { ...DEFAULT_SAMPLING, ...partial };
  const check = (ok: boolean, field: string, rule: string, value: unknown) => {
    if (!ok) {
      throw new SamplingParamsError(
        field,
        `${field} must be ${rule}, got ${JSON.stringify(value)}`,
      );
    }
  };
  check(
    typeof p.temperature === "number" && p.temperature >= 0 &&
      p.temperature <= 100,
    "temperature",
    "a number in [0, 100]",
    p.temperature,
  );
  check(
    Number.isInteger(p.topK) && p.topK >= 0,
    "top_k",
    "a non-negative integer (0 = off)",
    p.topK,
  );
  check(
    typeof p.topP === "number" && p.topP > 0 && p.topP <= 1,
    "top_p",
    "in (0, 1]",
    p.topP,
  );
  const max = limits.maxTokens ?? Number.MAX_SAFE_INTEGER;
  check(
    Number.isInteger(p.maxTokens) && p.maxTokens >= 1 && p.maxTokens <= max,
    "max_tokens",
    `an integer in [1, ${max}]`,
    p.maxTokens,
  );
  check(
    p.seed === undefined ||
      (Number.isInteger(p.seed) && p.seed >= 0 && p.seed < 2 ** 53),
    "seed",
    "a non-negative integer",
    p.seed,
  );
  check(
    Array.isArray(p.stop) && p.stop.length <= 16 &&
      p.stop.every((s) => typeof s === "string" && s.length > 0),
    "stop",
    "up to 16 non-empty strings",
    p.stop,
  );
  return p;
}
