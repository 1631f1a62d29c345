/**
 * FlashInfer's plan step for the native target: from the core plan, build
 * the page-table metadata (indptr / indices / last_page_len) and the work
 * partition ONCE per batch; every layer's run() reuses it (the addon checks
 * it against each layer, cheaply, before running). Like the WebGPU plan it
 * depends on the batch, the page size and the thread count only, never on
 * a layer: chunks cover each decode's whole kv range [0, len), and a chunk
 * that a layer's window hides entirely costs nothing.
 *
 * Partitioning: a decode is split into chunks of `chunkKeys` keys (whole
 * pages) only when the batch's decode keys are too few to give every
 * thread about {@linkcode CHUNKS_PER_THREAD} chunks otherwise; each chunk
 * serves every kv head of its token (a page's heads are adjacent, read in
 * one sweep), and the chunks of one token are joined by the log-sum-exp
 * merge. Prefill tokens go in tiles of {@linkcode PREFILL_TILE_TOKENS}.
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { pagedTables } from "../../core/paged_tables.ts";
import type { NativeFlashinferPlan } from "../../native/mod.ts";

/** Chunks per thread the decode partition aims for (load balance). */
export const CHUNKS_PER_THREAD = 4;
/** The shortest chunk worth its merge (before page rounding). */
export const MIN_CHUNK_KEYS = 256;
/** Query tokens per prefill tile (the addon's limit). */
export const PREFILL_TILE_TOKENS = 16;

/** The native flashinfer plan: the core plan plus page tables and work. */
export interface FlashinferNativePlan
  extends PlannedBatch, NativeFlashinferPlan {
  /** Keys per split-KV chunk (a multiple of pageSize). */
  readonly chunkKeys: number;
  /** Largest page id used (attend checks it against the cache). */
  readonly maxPageId: number;
}

/** Options for {@linkcode planNative}. */
export interface NativePlanOptions {
  /** Threads of the addon's pool. @default 1 */
  readonly threads?: number;
  /**
   * Longest chunk, in keys (tests shrink it to merge many chunks on short
   * sequences). @default Infinity
   */
  readonly maxChunkKeys?: number;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * Keys per decode chunk: enough chunks for `threads` threads, at least
 * MIN_CHUNK_KEYS, at most `maxChunkKeys`, whole pages always.
 *
 * @example Usage
 * ```ts
 * import { chunkKeysFor } from "./native_plan.ts";
 * import assert from "node:assert/strict";
 *
 * // One 8192-key decode on 2 threads: 8 chunks of 1024 keys.
 * assert.equal(chunkKeysFor(8192, 16, 2), 1024);
 * ```
 */
export function chunkKeysFor(
  decodeKeys: number,
  pageSize: number,
  threads: number,
  maxChunkKeys = Infinity,
): number {
  const want = Math.max(
    Math.ceil(decodeKeys / (CHUNKS_PER_THREAD * threads)),
    MIN_CHUNK_KEYS,
  );
  const cap = Math.max(
    pageSize,
    Math.floor(maxChunkKeys / pageSize) * pageSize,
  );
  return Math.min(cap, roundUp(want, pageSize));
}

/**
 * Builds the page tables and the work partition of a planned batch.
 *
 * @example Usage
 * ```ts
 * import { planNative } from "./native_plan.ts";
 * import { planBatch } from "../../core/batch.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = planNative(planBatch({
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(40),
 *   blockTables: Int32Array.of(7, 3, 9), maxBlocksPerSeq: 3, blockSize: 16,
 * }), { maxChunkKeys: 32 });
 * assert.deepEqual([...plan.kvIndptr], [0, 3]);
 * assert.deepEqual([...plan.kvLastPageLen], [8]);
 * assert.deepEqual([...plan.decodeChunks], [0, 0, 0, 32, 0, 0, 32, 40]);
 * ```
 */
export function planNative(
  batch: PlannedBatch,
  options: NativePlanOptions = {},
): FlashinferNativePlan {
  const { numSeqs, blockSize: pageSize, seqLens, queryStartLoc } = batch;
  // The page tables are core's, built once per batch (shared with others).
  const { kvIndptr, kvIndices, kvLastPageLen, maxPageId } = pagedTables(batch);
  let decodeKeys = 0;
  for (let s = 0; s < numSeqs; s++) {
    if (queryStartLoc[s + 1] - queryStartLoc[s] === 1) decodeKeys += seqLens[s];
  }
  const chunkKeys = chunkKeysFor(
    decodeKeys,
    pageSize,
    options.threads ?? 1,
    options.maxChunkKeys,
  );
  const chunks: number[] = [], items: number[] = [], tiles: number[] = [];
  for (let s = 0; s < numSeqs; s++) {
    const t0 = queryStartLoc[s], qLen = queryStartLoc[s + 1] - t0;
    if (qLen === 1) {
      items.push(t0, chunks.length / 4, Math.ceil(seqLens[s] / chunkKeys));
      for (let k = 0; k < seqLens[s]; k += chunkKeys) {
        chunks.push(t0, s, k, Math.min(seqLens[s], k + chunkKeys));
      }
      continue;
    }
    for (let i = 0; i < qLen; i += PREFILL_TILE_TOKENS) {
      const n = Math.min(PREFILL_TILE_TOKENS, qLen - i);
      tiles.push(t0 + i, n, s, batch.tokenPos[t0 + i]);
    }
  }
  return Object.freeze({
    ...batch,
    pageSize,
    kvIndptr,
    kvIndices,
    kvLastPageLen,
    chunkKeys,
    decodeChunks: Int32Array.from(chunks),
    decodeItems: Int32Array.from(items),
    prefillTiles: Int32Array.from(tiles),
    maxPageId,
  });
}
