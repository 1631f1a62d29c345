// planNative(): the page tables and the work partition of a batch, checked
// entry by entry against what the core plan says.

import assert from "node:assert/strict";
import { planBatch } from "../../core/batch.ts";
import {
  chunkKeysFor,
  MIN_CHUNK_KEYS,
  planNative,
  PREFILL_TILE_TOKENS,
} from "./native_plan.ts";
import { planMetadata } from "./webgpu_plan.ts";
import { pagedTables } from "../../core/paged_tables.ts";

// A mixed batch: a 40-token prefill (3 tiles), a decode of 33 keys, a
// decode of exactly one page, and a 2-token chunked prefill.
const batch = planBatch({
  queryStartLoc: Int32Array.of(0, 40, 41, 42, 44),
  seqLens: Int32Array.of(40, 33, 16, 20),
  blockTables: Int32Array.of(
    4,
    9,
    2,
    7,
    1,
    8,
    5,
    -1,
    3,
    -1,
    -1,
    -1,
    6,
    0,
    -1,
    -1,
  ),
  maxBlocksPerSeq: 4,
  blockSize: 16,
});

Deno.test("planNative() builds indptr, indices and last page lengths from the block tables", () => {
  const plan = planNative(batch);
  assert.deepEqual([...plan.kvIndptr], [0, 3, 6, 7, 9]);
  assert.deepEqual([...plan.kvIndices], [4, 9, 2, 1, 8, 5, 3, 6, 0]);
  assert.deepEqual([...plan.kvLastPageLen], [8, 1, 16, 4]);
  assert.equal(plan.maxPageId, 9);
  assert.equal(plan.pageSize, 16);
});

Deno.test("planNative() gives each decode one item whose chunks tile [0, seqLen)", () => {
  const plan = planNative(batch, { maxChunkKeys: 16 });
  assert.equal(plan.chunkKeys, 16);
  // token 40 (sequence 1, 33 keys): 3 chunks; token 41 (16 keys): 1 chunk.
  assert.deepEqual([...plan.decodeItems], [40, 0, 3, 41, 3, 1]);
  assert.deepEqual(
    [...plan.decodeChunks],
    [40, 1, 0, 16, 40, 1, 16, 32, 40, 1, 32, 33, 41, 2, 0, 16],
  );
});

Deno.test("planNative() tiles every prefill token exactly once, 16 at most per tile", () => {
  const plan = planNative(batch);
  assert.equal(PREFILL_TILE_TOKENS, 16);
  assert.deepEqual(
    [...plan.prefillTiles],
    [0, 16, 0, 0, 16, 16, 0, 16, 32, 8, 0, 32, 42, 2, 3, 18],
  );
});

Deno.test("chunkKeysFor() splits only when the decodes are too few for the threads", () => {
  // 16 decodes of 8k on 2 threads: chunks longer than any sequence.
  assert.equal(chunkKeysFor(16 * 8192, 16, 2), 16384);
  // One 32k decode on 2 threads: 8 chunks.
  assert.equal(chunkKeysFor(32768, 16, 2), 4096);
  // Short contexts never go below MIN_CHUNK_KEYS, rounded to pages.
  assert.equal(chunkKeysFor(100, 64, 2), MIN_CHUNK_KEYS);
  assert.equal(chunkKeysFor(100, 16, 2, 40), 32);
});

Deno.test("planNative() and the WebGPU planMetadata() take core's page tables, built once", () => {
  const core = pagedTables(batch);
  const native = planNative(batch), gpu = planMetadata(batch);
  // The very arrays core built for this batch: no second build per plan.
  for (const p of [native, gpu]) {
    assert.equal(p.kvIndptr, core.kvIndptr);
    assert.equal(p.kvIndices, core.kvIndices);
    assert.equal(p.kvLastPageLen, core.kvLastPageLen);
    assert.equal(p.maxPageId, core.maxPageId);
  }
  assert.deepEqual([...core.kvIndptr], [0, 3, 6, 7, 9]);
  assert.deepEqual([...core.kvIndices], [4, 9, 2, 1, 8, 5, 3, 6, 0]);
  assert.deepEqual([...core.kvLastPageLen], [8, 1, 16, 4]);
  assert.equal(core.maxPageId, 9);
});
