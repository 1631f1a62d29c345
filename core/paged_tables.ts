/**
 * The CSR page tables of a planned batch, in FlashInfer's layout
 * (`paged_kv_indptr` / `paged_kv_indices` / `paged_kv_last_page_len`),
 * built once per batch and shared by every backend and layer that reads
 * them (vLLM's common attention metadata). Memoized on the batch object,
 * so a backend's plan() and every layer's attend() may ask again for free.
 *
 * @module
 */

import type { PlannedBatch } from "./batch.ts";

/** A batch's pages as compressed sparse rows, one row per sequence. */
export interface PagedTables {
  /** Where each sequence's pages start in kvIndices: shape [numSeqs + 1], int32 */
  readonly kvIndptr: Int32Array;
  /** Page ids of all sequences, in order: shape [kvIndptr[numSeqs]], int32 */
  readonly kvIndices: Int32Array;
  /** Tokens in each sequence's last page, 1..blockSize: shape [numSeqs], int32 */
  readonly kvLastPageLen: Int32Array;
  /** Largest page id in kvIndices (-1 for no pages); caches check it. */
  readonly maxPageId: number;
}

// Keyed by the planned batch object: one build per batch, freed with it.
const memo = new WeakMap<PlannedBatch, PagedTables>();

/**
 * The page tables of `batch`: built on the first call, the same frozen
 * object on every later call with the same batch.
 *
 * @example Usage
 * ```ts
 * import { pagedTables } from "./paged_tables.ts";
 * import { planBatch } from "./batch.ts";
 * import assert from "node:assert/strict";
 *
 * // 40 cached tokens in pages of 16 (7, 3, 9); then 5 tokens in page 2.
 * const batch = planBatch({
 *   queryStartLoc: Int32Array.of(0, 1, 2),
 *   seqLens: Int32Array.of(40, 5),
 *   blockTables: Int32Array.of(7, 3, 9, 2, -1, -1),
 *   maxBlocksPerSeq: 3,
 *   blockSize: 16,
 * });
 * const t = pagedTables(batch);
 * assert.deepEqual([...t.kvIndptr], [0, 3, 4]);
 * assert.deepEqual([...t.kvIndices], [7, 3, 9, 2]);
 * assert.deepEqual([...t.kvLastPageLen], [8, 5]);
 * assert.equal(pagedTables(batch), t);
 * ```
 */
export function pagedTables(batch: PlannedBatch): PagedTables {
  let tables = memo.get(batch);
  if (!tables) {
    tables = buildPagedTables(batch);
    memo.set(batch, tables);
  }
  return tables;
}

function buildPagedTables(batch: PlannedBatch): PagedTables {
  const { numSeqs, blockSize, seqLens, blockTables, maxBlocksPerSeq } = batch;
  const kvIndptr = new Int32Array(numSeqs + 1);
  const kvLastPageLen = new Int32Array(numSeqs);
  for (let s = 0; s < numSeqs; s++) {
    // planBatch guarantees seqLens[s] >= 1, so every sequence has a page.
    const pages = Math.ceil(seqLens[s] / blockSize);
    kvIndptr[s + 1] = kvIndptr[s] + pages;
    kvLastPageLen[s] = seqLens[s] - (pages - 1) * blockSize;
  }
  const kvIndices = new Int32Array(kvIndptr[numSeqs]);
  for (let s = 0; s < numSeqs; s++) {
    const row = blockTables.subarray(s * maxBlocksPerSeq);
    kvIndices.set(row.subarray(0, kvIndptr[s + 1] - kvIndptr[s]), kvIndptr[s]);
  }
  let maxPageId = -1;
  for (const id of kvIndices) maxPageId = Math.max(maxPageId, id);
  return Object.freeze({ kvIndptr, kvIndices, kvLastPageLen, maxPageId });
}
