/**
 * What one attention layer looks like to a backend: the model's shape facts
 * plus the cache choices the selector made for it.
 *
 * @module
 */

import type { Int8Scheme, KvCacheDtype } from "./dtype.ts";

/** `full` attends to the whole prefix; `sliding_window` to the last W tokens. */
export type LayerKind = "full" | "sliding_window";

/** The shape of one attention layer, as the model config defines it. */
export interface LayerSpec {
  /** Layer index in the model, from 0. */
  readonly index: number;
  /** Which keys a query may see: the whole prefix, or a window of them. */
  readonly kind: LayerKind;
  /** Query (attention) heads. */
  readonly numQHeads: number;
  /** numQHeads must be a multiple of it; 1 is MQA, numQHeads is MHA. */
  readonly numKvHeads: number;
  /** Elements per head vector, the same for q, k and v. */
  readonly headDim: number;
  /**
   * Tokens a query sees, itself included: key j is visible from position p
   * when p - W < j <= p (Hugging Face's convention for Mistral and Gemma 2).
   * Set exactly when kind is `sliding_window`.
   */
  readonly slidingWindow?: number;
  /** Logit soft-cap c: logits become c * tanh(s / c) (Gemma 2). */
  readonly softCap?: number;
  /** Softmax scale applied to q.k; usually 1 / sqrt(headDim). */
  readonly scale: number;
}

/** A layer together with how its KV cache is stored. */
export interface LayerConfig extends LayerSpec {
  /** Element type of the stored K and V; the 8-bit dtypes need scales. */
  readonly kvDtype: KvCacheDtype;
  /** Only meaningful for int8. @default "per_tensor" */
  readonly int8Scheme?: Int8Scheme;
  /** Tokens per cache block. */
  readonly blockSize: number;
}

/**
 * Checks that a layer spec is self-consistent and returns every problem found
 * (empty when valid), so a config error names all of its fields at once.
 *
 * @example Usage
 * ```ts
 * import { validateLayerSpec } from "./layer.ts";
 * import assert from "node:assert/strict";
 *
 * const ok = { index: 0, kind: "full", numQHeads: 32, numKvHeads: 8, headDim: 128, scale: 128 ** -0.5 } as const;
 * assert.deepEqual(validateLayerSpec(ok), []);
 * assert.match(validateLayerSpec({ ...ok, numKvHeads: 5 })[0], /multiple/);
 * ```
 */
export function validateLayerSpec(spec: LayerSpec): string[] {
  const problems: string[] = [];
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) {
      problems.push(`${name} must be a positive integer, got ${v}`);
      return false;
    }
    return true;
  };
  if (!Number.isInteger(spec.index) || spec.index < 0) {
    problems.push(`index must be a non-negative integer, got ${spec.index}`);
  }
  const q = positiveInt("numQHeads", spec.numQHeads);
  const kv = positiveInt("numKvHeads", spec.numKvHeads);
  positiveInt("headDim", spec.headDim);
  if (q && kv && spec.numQHeads % spec.numKvHeads !== 0) {
    problems.push(
      `numQHeads (${spec.numQHeads}) must be a multiple of numKvHeads (${spec.numKvHeads})`,
    );
  }
  if (spec.kind === "sliding_window") {
    positiveInt("slidingWindow", spec.slidingWindow ?? NaN);
  } else if (spec.kind !== "full") {
    problems.push(
      `kind must be "full" or "sliding_window", got "${spec.kind}"`,
    );
  } else if (spec.slidingWindow !== undefined) {
    problems.push(`slidingWindow is set on a full-attention layer`);
  }
  if (
    spec.softCap !== undefined && !(spec.softCap > 0 && isFinite(spec.softCap))
  ) {
    problems.push(
      `softCap must be a positive finite number, got ${spec.softCap}`,
    );
  }
  if (!(spec.scale > 0 && isFinite(spec.scale))) {
    problems.push(`scale must be a positive finite number, got ${spec.scale}`);
  }
  return problems;
}
