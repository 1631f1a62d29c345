import assert from "node:assert/strict";
import { planBatch } from "./batch.ts";
import { pagedTables } from "./paged_tables.ts";

Deno.test("pagedTables: a hand-worked batch of a prefill, a decode and a one-page sequence", () => {
  // Pages of 4 tokens. Sequence 0: 3-token prefill, 3 tokens, page [5].
  // Sequence 1: decode with 9 tokens cached, pages [1, 8, 6] (last has 1).
  // Sequence 2: decode at exactly 8 tokens, pages [0, 4] (last one full);
  // the -1 and the stale 99 past each sequence's last page are ignored.
  const batch = planBatch({
    queryStartLoc: Int32Array.of(0, 3, 4, 5),
    seqLens: Int32Array.of(3, 9, 8),
    blockTables: Int32Array.of(5, -1, -1, 1, 8, 6, 0, 4, 99),
    maxBlocksPerSeq: 3,
    blockSize: 4,
  });
  const t = pagedTables(batch);
  assert.deepEqual([...t.kvIndptr], [0, 1, 4, 6]);
  assert.deepEqual([...t.kvIndices], [5, 1, 8, 6, 0, 4]);
  assert.deepEqual([...t.kvLastPageLen], [3, 1, 4]);
  assert.equal(t.maxPageId, 8);
  assert.ok(t.kvIndptr instanceof Int32Array);
  assert.ok(Object.isFrozen(t));
});

Deno.test("pagedTables: built once per batch object, rebuilt for another", () => {
  const spec = {
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(17),
    blockTables: Int32Array.of(2, 3),
    maxBlocksPerSeq: 2,
    blockSize: 16,
  };
  const a = planBatch(spec), b = planBatch(spec);
  assert.equal(pagedTables(a), pagedTables(a));
  assert.notEqual(pagedTables(a), pagedTables(b));
  assert.deepEqual(pagedTables(a), pagedTables(b));
});
