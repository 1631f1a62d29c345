/**
 * The fp64 oracle: attention computed in float64, the way the definition
 * reads, with no tiling, no online softmax and no low-precision shortcut.
 * Every backend is checked against it, never against another backend.
 *
 * @module
 */

import type { PlannedBatch } from "./batch.ts";
import type { LayerSpec } from "./layer.ts";

/** Attention inputs with each sequence's K/V laid out densely. */
export interface ReferenceAttentionInput {
  /** The planned batch (query offsets, sequence lengths, positions). */
  readonly batch: Pick<
    PlannedBatch,
    | "numSeqs"
    | "numTokens"
    | "queryStartLoc"
    | "seqLens"
    | "tokenSeq"
    | "tokenPos"
  >;
  /** shape [numTokens, numQHeads, headDim], float32 or float64 */
  readonly query: Float32Array | Float64Array;
  /** Per sequence s: shape [seqLens[s], numKvHeads, headDim], float32 or float64 */
  readonly keys: readonly (Float32Array | Float64Array)[];
  /** Per sequence s: shape [seqLens[s], numKvHeads, headDim], float32 or float64 */
  readonly values: readonly (Float32Array | Float64Array)[];
}

/** The oracle's answer. */
export interface ReferenceAttentionOutput {
  /** shape [numTokens, numQHeads, headDim], float64 */
  readonly out: Float64Array;
  /**
   * Natural-log sum of exp(logit) per row, the quantity split-KV kernels
   * merge. shape [numTokens, numQHeads], float64
   */
  readonly lse: Float64Array;
}

/**
 * Causal paged attention in float64: query token at position p of sequence s
 * attends keys j <= p (and p - j < W for a sliding window W), with logits
 * `scale * q.k`, soft-capped as `c * tanh(x / c)` when the layer has a cap,
 * and query head h reading kv head `floor(h / (numQHeads / numKvHeads))`.
 *
 * @example Usage
 * ```ts
 * import { referenceAttention } from "./reference_attention.ts";
 * import { planBatch } from "./batch.ts";
 * import assert from "node:assert/strict";
 *
 * // One sequence, two tokens, one head of dim 1: the second query sees both keys.
 * const batch = planBatch({
 *   queryStartLoc: Int32Array.of(0, 2), seqLens: Int32Array.of(2),
 *   blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 * });
 * const layer = { index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 1, scale: 1 } as const;
 * const { out } = referenceAttention(layer, {
 *   batch, query: Float64Array.of(0, 0),
 *   keys: [Float64Array.of(1, 2)], values: [Float64Array.of(10, 20)],
 * });
 * assert.equal(out[0], 10); // token 0 sees only itself
 * assert.equal(out[1], 15); // equal logits: the mean of 10 and 20
 * ```
 */
export function referenceAttention(
  layer: LayerSpec,
  input: ReferenceAttentionInput,
): ReferenceAttentionOutput {
  const { batch, query, keys, values } = input;
  const { numQHeads, numKvHeads, headDim, scale, softCap } = layer;
  const window = layer.kind === "sliding_window"
    ? layer.slidingWindow!
    : Infinity;
  const group = numQHeads / numKvHeads;
  if (!Number.isInteger(group)) {
    throw new RangeError(
      `numQHeads (${numQHeads}) must be a multiple of numKvHeads (${numKvHeads})`,
    );
  }
  if (query.length !== batch.numTokens * numQHeads * headDim) {
    throw new RangeError(
      `query has ${query.length} elements, expected numTokens * numQHeads * headDim = ${
        batch.numTokens * numQHeads * headDim
      }`,
    );
  }
  const kvRow = numKvHeads * headDim;
  for (let s = 0; s < batch.numSeqs; s++) {
    const want = batch.seqLens[s] * kvRow;
    if (keys[s]?.length !== want || values[s]?.length !== want) {
      throw new RangeError(
        `keys[${s}] and values[${s}] must have seqLens[${s}] * numKvHeads * headDim = ${want} elements, got ${
          keys[s]?.length
        } and ${values[s]?.length}`,
      );
    }
  }
  const out = new Float64Array(batch.numTokens * numQHeads * headDim);
  const lse = new Float64Array(batch.numTokens * numQHeads);
  const logits = new Float64Array(Math.max(0, ...batch.seqLens));
  for (let t = 0; t < batch.numTokens; t++) {
    const s = batch.tokenSeq[t];
    const pos = batch.tokenPos[t];
    const k = keys[s], v = values[s];
    const first = Math.max(0, pos - window + 1);
    for (let h = 0; h < numQHeads; h++) {
      const qOff = (t * numQHeads + h) * headDim;
      const kvHead = Math.floor(h / group);
      let max = -Infinity;
      for (let j = first; j <= pos; j++) {
        const kOff = j * kvRow + kvHead * headDim;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += query[qOff + d] * k[kOff + d];
        let x = dot * scale;
        if (softCap !== undefined) x = softCap * Math.tanh(x / softCap);
        logits[j] = x;
        if (x > max) max = x;
      }
      let sum = 0;
      for (let j = first; j <= pos; j++) {
        const p = Math.exp(logits[j] - max);
        logits[j] = p;
        sum += p;
      }
      for (let j = first; j <= pos; j++) {
        const w = logits[j] / sum;
        const vOff = j * kvRow + kvHead * headDim;
        for (let d = 0; d < headDim; d++) out[qOff + d] += w * v[vOff + d];
      }
      lse[t * numQHeads + h] = max + Math.log(sum);
    }
  }
  return { out, lse };
}
