/**
 * The attention kernel of tiled_ts, flash-attention style: the KV sequence
 * is walked once, a (block, kv head) tile at a time, and each tile is folded
 * into an fp32 online softmax (online_softmax.ts). Inputs are checked by the
 * caller (backend.ts); this file is only the arithmetic.
 *
 * @module
 */

import type { AttendInput } from "../../mod.ts";
import type { TiledPlan } from "./backend.ts";
import type { TiledCache } from "./cache.ts";
import { OnlineSoftmax } from "./online_softmax.ts";

/**
 * Paged causal attention (GQA, sliding window, soft-cap) for a planned
 * batch. Per sequence and kv head, one pass over the blocks: each tile is
 * dequantized once, then folded into the online-softmax state of every query
 * row of the GQA group (the sequence's query tokens times numQHeads /
 * numKvHeads heads), so a tile is read once for the whole group instead of
 * once per query head.
 *
 * @param cache The layer's cache; its block ids are checked by the caller.
 * @param plan The batch, planned by backend.plan().
 * @param input query: shape [numTokens, numQHeads, headDim], float32;
 *   out (written in full): same shape, float32.
 */
export function attendTiled(
  cache: TiledCache,
  plan: TiledPlan,
  input: AttendInput,
): void {
  const { numQHeads, numKvHeads, headDim, blockSize, scale, softCap } =
    cache.config;
  const window = cache.config.slidingWindow ?? Infinity;
  const group = numQHeads / numKvHeads;
  const { query, out } = input;
  const state = new OnlineSoftmax(plan.maxQueryLen * group, headDim);
  const kTile = new Float32Array(blockSize * headDim);
  const vTile = new Float32Array(blockSize * headDim);
  const logits = new Float32Array(blockSize);
  for (let s = 0; s < plan.numSeqs; s++) {
    const qStart = plan.queryStartLoc[s];
    const qLen = plan.queryStartLoc[s + 1] - qStart;
    const seqLen = plan.seqLens[s];
    const firstPos = seqLen - qLen; // position of the first query token
    // Keys before the first query's window are seen by no row: skip them.
    const firstKey = Math.max(0, firstPos - window + 1);
    const blocks = plan.seqBlocks[s];
    for (let kvh = 0; kvh < numKvHeads; kvh++) {
      state.reset();
      for (let b = Math.floor(firstKey / blockSize); b < blocks.length; b++) {
        const base = b * blockSize;
        const n = Math.min(blockSize, seqLen - base); // the tail is unwritten
        cache.readTile("k", blocks[b], kvh, 0, n, kTile);
        cache.readTile("v", blocks[b], kvh, 0, n, vTile);
        for (let r = 0; r < qLen * group; r++) {
          const pos = firstPos + Math.floor(r / group);
          // Causal (j <= pos) and windowed (pos - W < j), in tile offsets.
          const from = Math.max(0, pos - window + 1 - base);
          const to = Math.min(n, pos + 1 - base);
          if (from >= to) continue;
          const h = kvh * group + (r % group);
          const q = ((qStart + Math.floor(r / group)) * numQHeads + h) *
            headDim;
          for (let j = from; j < to; j++) {
            let dot = 0;
            for (let d = 0; d < headDim; d++) {
              dot += query[q + d] * kTile[j * headDim + d];
            }
            const x = dot * scale;
            logits[j] = softCap === undefined
              ? x
              : softCap * Math.tanh(x / softCap);
          }
          state.fold(r, logits, vTile, from, to);
        }
      }
      for (let r = 0; r < qLen * group; r++) {
        const t = qStart + Math.floor(r / group);
        const h = kvh * group + (r % group);
        state.normalize(r, out, (t * numQHeads + h) * headDim);
      }
    }
  }
}
