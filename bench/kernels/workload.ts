/**
 * The data a kernel benchmark runs on: one layer's cache filled through
 * the backend's own write(), and the planned batch of one grid point.
 *
 * Filling is fast because one random chunk (core/prng.ts) is generated
 * once and written again and again to successive slots; every sequence
 * still owns distinct blocks, so an attention call reads distinct memory.
 *
 * @module
 */

import type { AttentionBackend, LayerCache } from "../../core/backend.ts";
import { planBatch, type PlannedBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { DEFAULT_SCALES } from "../../core/scales.ts";
import { BLOCK_SIZE, type KernelMode } from "./shapes.ts";

/** Tokens of the random chunk written repeatedly. */
const CHUNK_TOKENS = 2048;

/** Uniform random values in [-1, 1) from a seed. */
export function randomFloats(length: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = 2 * next() - 1;
  return out;
}

/** Blocks one sequence of `context` tokens occupies. */
export function blocksPerSeq(context: number): number {
  return Math.ceil(context / BLOCK_SIZE);
}

/**
 * Creates the cache for `numBlocks` blocks and writes every slot: 8-bit
 * caches quantize with scale 1 (fp8, vLLM's default) or per-token-head
 * scales (int8); random values in [-1, 1) fit both.
 */
export async function filledCache(
  backend: AttentionBackend,
  layer: LayerConfig,
  numBlocks: number,
  seed: number,
  onProgress?: (done: number, total: number) => void,
): Promise<LayerCache> {
  const cache = await backend.createCache(layer, {
    numBlocks,
    scales: DEFAULT_SCALES,
  });
  const row = layer.numKvHeads * layer.headDim;
  const total = numBlocks * BLOCK_SIZE;
  const chunk = Math.min(CHUNK_TOKENS, total);
  const keys = randomFloats(chunk * row, seed);
  const values = randomFloats(chunk * row, seed + 1);
  const slots = new Int32Array(chunk);
  for (let at = 0; at < total; at += chunk) {
    const n = Math.min(chunk, total - at);
    for (let i = 0; i < n; i++) slots[i] = at + i;
    await backend.write(cache, {
      keys: keys.subarray(0, n * row),
      values: values.subarray(0, n * row),
      slotMapping: slots.subarray(0, n),
    });
    onProgress?.(at + n, total);
  }
  return cache;
}

/**
 * The batch of one grid point: `batch` sequences of `context` cached
 * tokens each, sequence s in blocks s * blocksPerSeq(context) onwards; in
 * decode mode the last token of each is the query, in prefill mode the
 * last `prefillTokens`.
 *
 * @example Usage
 * ```ts
 * import { gridBatch } from "./workload.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = gridBatch("prefill", 40, 2, 8);
 * assert.equal(plan.numTokens, 16);
 * assert.deepEqual([...plan.blockTables], [0, 1, 2, 3, 4, 5]);
 * ```
 */
export function gridBatch(
  mode: KernelMode,
  context: number,
  batch: number,
  prefillTokens: number,
): PlannedBatch {
  const perSeq = blocksPerSeq(context);
  const queryLen = mode === "decode" ? 1 : Math.min(prefillTokens, context);
  const blockTables = new Int32Array(batch * perSeq);
  for (let i = 0; i < blockTables.length; i++) blockTables[i] = i;
  const queryStartLoc = new Int32Array(batch + 1);
  for (let s = 0; s <= batch; s++) queryStartLoc[s] = s * queryLen;
  return planBatch({
    queryStartLoc,
    seqLens: new Int32Array(batch).fill(context),
    blockTables,
    maxBlocksPerSeq: perSeq,
    blockSize: BLOCK_SIZE,
  });
}
