/**
 * Rotary position embedding in the "rotate_half" layout of transformers'
 * Llama, Qwen2 and Gemma: dimension i pairs with i + headDim/2 (not the
 * interleaved 2i, 2i+1 layout of the original paper and of GPT-J).
 *
 * @module
 */

import { ropeInvFreq, type RopeParams } from "./rope_params.ts";

/** cos and sin of every token's angles, computed once per forward and rope setting. */
export interface RopeTable {
  /** The head size the table was built for; rows it rotates must match. */
  readonly headDim: number;
  /** shape [numTokens, headDim / 2], float32 */
  readonly cos: Float32Array;
  /** shape [numTokens, headDim / 2], float32 */
  readonly sin: Float32Array;
}

/**
 * The angles pos * invFreq[i] for each token, rounded to float32 before the
 * cos and sin as transformers does (at position 10^5 that rounding moves an
 * angle by ~4e-3 radians, and the model was trained with it).
 *
 * @example Usage
 * ```ts
 * import { ropeTable } from "./rope.ts";
 * import assert from "node:assert/strict";
 *
 * const t = ropeTable(Int32Array.of(0, 1), { theta: 10000, scaling: { type: "default" } }, 2);
 * assert.deepEqual([...t.cos], [1, Math.fround(Math.cos(1))]);
 * ```
 *
 * @param positions shape [numTokens], int32
 */
export function ropeTable(
  positions: Int32Array,
  rope: RopeParams,
  headDim: number,
): RopeTable {
  if (!Number.isInteger(headDim) || headDim % 2 !== 0 || headDim < 2) {
    throw new RangeError(
      `RoPE needs an even head dim, got ${headDim}`,
    );
  }
  const half = headDim / 2;
  const inv = ropeInvFreq(rope, headDim);
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[t] * inv[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { headDim, cos, sin };
}

/**
 * Rotates every head of every token in place:
 * (a, b) -> (a cos - b sin, b cos + a sin) for a = x[i], b = x[i + d/2].
 *
 * @example Usage
 * ```ts
 * import { applyRope, ropeTable } from "./rope.ts";
 * import assert from "node:assert/strict";
 *
 * const table = ropeTable(Int32Array.of(0), { theta: 10000, scaling: { type: "default" } }, 4);
 * const x = Float32Array.of(1, 2, 3, 4);
 * assert.deepEqual([...applyRope(x, table)], [1, 2, 3, 4]); // position 0: identity
 * ```
 *
 * @param x shape [numTokens, numHeads, headDim], float32; overwritten.
 * @returns `x`.
 */
export function applyRope(x: Float32Array, table: RopeTable): Float32Array {
  const { headDim, cos, sin } = table;
  const half = headDim / 2;
  const numTokens = cos.length / half;
  const rowSize = x.length / numTokens;
  if (!Number.isInteger(rowSize) || rowSize % headDim !== 0) {
    throw new RangeError(
      `applyRope: x has ${x.length} elements, not ${numTokens} tokens of whole ${headDim}-wide heads`,
    );
  }
  for (let t = 0; t < numTokens; t++) {
    const c = t * half;
    for (let h = t * rowSize; h < (t + 1) * rowSize; h += headDim) {
      for (let i = 0; i < half; i++) {
        const a = x[h + i], b = x[h + i + half];
        x[h + i] = a * cos[c + i] - b * sin[c + i];
        x[h + i + half] = b * cos[c + i] + a * sin[c + i];
      }
    }
  }
  return x;
}
