import assert from "node:assert/strict";
import { type AttentionBatch, BatchError, planBatch } from "./batch.ts";

const good: AttentionBatch = {
  queryStartLoc: Int32Array.of(0, 4, 5),
  seqLens: Int32Array.of(4, 20),
  blockTables: Int32Array.of(3, -1, 0, 1),
  maxBlocksPerSeq: 2,
  blockSize: 16,
};

Deno.test("planBatch() derives positions, sequence ids and counts", () => {
  const p = planBatch(good);
  assert.equal(p.numTokens, 5);
  assert.deepEqual([...p.tokenSeq], [0, 0, 0, 0, 1]);
  assert.deepEqual([...p.tokenPos], [0, 1, 2, 3, 19]);
  assert.equal(p.numPrefills, 1);
  assert.equal(p.numDecodes, 1);
  assert.equal(p.maxSeqLen, 20);
  assert.equal(p.maxQueryLen, 4);
});

Deno.test("planBatch() names the field that does not add up", () => {
  const cases: [Partial<AttentionBatch>, RegExp][] = [
    [
      { queryStartLoc: Int32Array.of(0, 4) },
      /queryStartLoc must have numSeqs \+ 1 = 3/,
    ],
    [{ queryStartLoc: Int32Array.of(1, 4, 5) }, /queryStartLoc\[0\] must be 0/],
    [
      { queryStartLoc: Int32Array.of(0, 4, 4) },
      /Sequence 1 has 0 query tokens/,
    ],
    [
      { seqLens: Int32Array.of(3, 20) },
      /seqLens\[0\] = 3 is shorter than its 4 query tokens/,
    ],
    [
      { seqLens: Int32Array.of(4, 40) },
      /seqLens\[1\] = 40 needs 3 blocks of 16 but maxBlocksPerSeq is 2/,
    ],
    [
      { blockTables: Int32Array.of(3, -1, 0, -1) },
      /blockTables\[1\]\[1\] = -1/,
    ],
    [
      { blockTables: Int32Array.of(3, -1, 0) },
      /blockTables must have numSeqs \* maxBlocksPerSeq = 4/,
    ],
    [{ blockSize: 0 }, /blockSize must be a positive integer, got 0/],
  ];
  for (const [patch, message] of cases) {
    assert.throws(() => planBatch({ ...good, ...patch }), (e: Error) => {
      assert.ok(e instanceof BatchError, `${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});
