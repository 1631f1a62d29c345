import assert from "node:assert/strict";
import { KvCacheManager } from "./kv_cache_manager.ts";
import { KvCacheExhaustedError } from "./kv_cache_errors.ts";

function snapshot(cache: KvCacheManager) {
  return {
    free: cache.numFreeBlocks,
    seqs: [...cache.sequences()].map((id) => [
      id,
      cache.numTokens(id),
      cache.blockTable(id),
    ]),
  };
}

Deno.test("KvCacheManager defaults to 16 tokens a block", () => {
  const cache = new KvCacheManager({ numBlocks: 4 });
  assert.equal(cache.blockSize, 16);
  assert.equal(cache.numBlocks, 4);
  assert.equal(cache.numFreeBlocks, 4);
  assert.equal(cache.numUsedBlocks, 0);
  assert.equal(cache.usage, 0);
});

Deno.test("KvCacheManager refuses a bad block size or block count", () => {
  assert.throws(
    () => new KvCacheManager({ numBlocks: 4, blockSize: 0 }),
    /Block size 0 is invalid: pass a positive integer number of tokens/,
  );
  assert.throws(
    () => new KvCacheManager({ numBlocks: 0 }),
    /Cannot create a block pool of 0 blocks/,
  );
});

Deno.test("KvCacheManager.addSequence() refuses an id that is already live", () => {
  const cache = new KvCacheManager({ numBlocks: 4 });
  cache.addSequence("a");
  assert.ok(cache.hasSequence("a"));
  assert.ok(!cache.hasSequence(1));
  assert.throws(
    () => cache.addSequence("a"),
    /Sequence "a" is already in the KV cache: free it first or use a new id/,
  );
});

Deno.test('KvCacheManager treats 1 and "1" as different sequences', () => {
  const cache = new KvCacheManager({ numBlocks: 4 });
  cache.addSequence(1);
  cache.addSequence("1");
  assert.deepEqual([...cache.sequences()], [1, "1"]);
});

Deno.test("KvCacheManager.append() maps positions to block * blockSize + offset", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  cache.addSequence(0);
  cache.addSequence(1);
  assert.deepEqual([...cache.append(0, 3).slots], [0, 1, 2]);
  assert.deepEqual(
    [...cache.append(1, 5).slots],
    [4, 5, 6, 7, 8],
  );
  // Sequence 0 fills its block, then spills into a new one (block 3).
  const { slots, copies } = cache.append(0, 3);
  assert.deepEqual([...slots], [3, 12, 13]);
  assert.deepEqual(copies, []);
  assert.deepEqual(cache.blockTable(0), [0, 3]);
  assert.deepEqual(cache.blockTable(1), [1, 2]);
  assert.equal(cache.numTokens(0), 6);
  assert.equal(cache.numUsedBlocks, 4);
  assert.equal(cache.usage, 0.5);
});

Deno.test("KvCacheManager.append() of zero tokens changes nothing", () => {
  const cache = new KvCacheManager({ numBlocks: 2, blockSize: 4 });
  cache.addSequence(0);
  const result = cache.append(0, 0);
  assert.equal(result.slots.length, 0);
  assert.deepEqual(result.copies, []);
  assert.equal(cache.numFreeBlocks, 2);
});

Deno.test("KvCacheManager.append() refuses a negative or fractional token count", () => {
  const cache = new KvCacheManager({ numBlocks: 2 });
  cache.addSequence(0);
  assert.throws(
    () => cache.append(0, -1),
    /Cannot append -1 tokens to sequence 0: pass a non-negative integer/,
  );
  assert.throws(() => cache.append(0, 0.5), /Cannot append 0.5 tokens/);
});

Deno.test("KvCacheManager.append() to an unknown sequence names the fix", () => {
  const cache = new KvCacheManager({ numBlocks: 2 });
  assert.throws(
    () => cache.append(9, 1),
    /Sequence 9 is not in the KV cache: call addSequence\(9\) first/,
  );
});

Deno.test("KvCacheManager.append() copies a shared last block before writing (copy on write)", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  cache.addSequence("p");
  cache.append("p", 6); // blocks 0, 1; block 1 half full
  cache.fork("p", "c");
  const child = cache.append("c", 1);
  assert.deepEqual(child.copies, [{ src: 1, dst: 2 }]);
  assert.deepEqual([...child.slots], [2 * 4 + 2]);
  assert.deepEqual(cache.blockTable("c"), [0, 2]);
  // The parent is now the only holder of block 1, so it writes in place.
  const parent = cache.append("p", 1);
  assert.deepEqual(parent.copies, []);
  assert.deepEqual([...parent.slots], [1 * 4 + 2]);
  assert.deepEqual(cache.blockTable("p"), [0, 1]);
});

Deno.test("KvCacheManager.append() shares a full last block without copying", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  cache.addSequence(0);
  cache.append(0, 8);
  cache.fork(0, 1);
  const { slots, copies } = cache.append(1, 2);
  assert.deepEqual(copies, []);
  assert.deepEqual([...slots], [8, 9]);
  assert.deepEqual(cache.blockTable(1), [0, 1, 2]);
});

Deno.test("KvCacheManager.append() throws KvCacheExhaustedError and changes nothing when blocks run out", () => {
  const cache = new KvCacheManager({ numBlocks: 3, blockSize: 4 });
  cache.addSequence(0);
  cache.append(0, 6);
  cache.fork(0, 1);
  const before = snapshot(cache);
  // Needs a copy of block 1 plus 2 new blocks: 3 > 1 free.
  assert.equal(cache.blocksNeeded(1, 10), 3);
  assert.ok(!cache.canAppend(1, 10));
  assert.throws(
    () => cache.append(1, 10),
    (e: unknown) =>
      e instanceof KvCacheExhaustedError && e.needed === 3 && e.free === 1 &&
      /need 3, 1 free of 3/.test(e.message),
  );
  assert.deepEqual(snapshot(cache), before);
  assert.ok(cache.canAppend(1, 2));
});

Deno.test("KvCacheManager.blocksNeeded() counts the copy-on-write block", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  cache.addSequence(0);
  assert.equal(cache.blocksNeeded(0, 0), 0);
  assert.equal(cache.blocksNeeded(0, 1), 1);
  assert.equal(cache.blocksNeeded(0, 9), 3);
  cache.append(0, 3);
  assert.equal(cache.blocksNeeded(0, 1), 0);
  cache.fork(0, 1);
  assert.equal(cache.blocksNeeded(0, 1), 1);
  assert.equal(cache.blocksNeeded(0, 2), 2);
  assert.equal(cache.blocksNeeded(0, 0), 0);
});

Deno.test("KvCacheManager.fork() shares every block and the length", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 2 });
  cache.addSequence(0);
  cache.append(0, 5);
  const used = cache.numUsedBlocks;
  cache.fork(0, 1);
  assert.equal(cache.numUsedBlocks, used);
  assert.deepEqual(cache.blockTable(1), cache.blockTable(0));
  assert.equal(cache.numTokens(1), 5);
  assert.deepEqual([...cache.slotsFor(1, 0, 5)], [...cache.slotsFor(0, 0, 5)]);
});

Deno.test("KvCacheManager.fork() refuses an unknown parent or a live child", () => {
  const cache = new KvCacheManager({ numBlocks: 8 });
  cache.addSequence(0);
  cache.append(0, 1);
  assert.throws(() => cache.fork(5, 6), /Sequence 5 is not in the KV cache/);
  cache.addSequence(1);
  assert.throws(
    () => cache.fork(0, 1),
    /Sequence 1 is already in the KV cache/,
  );
  assert.throws(
    () => cache.fork(0, 0),
    /Sequence 0 is already in the KV cache/,
  );
  // A failed fork takes no references.
  cache.free(0);
  assert.equal(cache.numFreeBlocks, 8);
});

Deno.test("KvCacheManager.free() returns blocks once their last holder is freed", () => {
  const cache = new KvCacheManager({ numBlocks: 4, blockSize: 4 });
  cache.addSequence(0);
  cache.append(0, 8);
  cache.fork(0, 1);
  cache.free(0);
  assert.ok(!cache.hasSequence(0));
  assert.equal(cache.numFreeBlocks, 2);
  cache.free(1);
  assert.equal(cache.numFreeBlocks, 4);
  assert.deepEqual([...cache.sequences()], []);
});

Deno.test("KvCacheManager.free() of an unknown or already freed sequence is an error", () => {
  const cache = new KvCacheManager({ numBlocks: 4 });
  cache.addSequence("x");
  cache.free("x");
  assert.throws(
    () => cache.free("x"),
    /Sequence "x" is not in the KV cache: call addSequence\("x"\) first, or check it was not freed already/,
  );
});

Deno.test("KvCacheManager.blockTable() returns a copy", () => {
  const cache = new KvCacheManager({ numBlocks: 4, blockSize: 1 });
  cache.addSequence(0);
  cache.append(0, 2);
  const table = cache.blockTable(0) as number[];
  table.push(3);
  assert.deepEqual(cache.blockTable(0), [0, 1]);
});

Deno.test("KvCacheManager.slotsFor() reads back existing positions", () => {
  const cache = new KvCacheManager({ numBlocks: 4, blockSize: 2 });
  cache.addSequence(0);
  cache.addSequence(1);
  cache.append(0, 1);
  cache.append(1, 1);
  cache.append(0, 2); // positions 1, 2 of seq 0: block 0 offset 1, block 2
  assert.deepEqual([...cache.slotsFor(0, 0, 3)], [0, 1, 4]);
  assert.deepEqual([...cache.slotsFor(0, 2, 1)], [4]);
  assert.deepEqual([...cache.slotsFor(0, 3, 0)], []);
  assert.throws(
    () => cache.slotsFor(0, 2, 2),
    /Cannot read slots 2..3 of sequence 0: it holds positions 0..2/,
  );
  assert.throws(() => cache.slotsFor(0, -1, 1), /Cannot read slots -1..-1/);
});

Deno.test("KvCacheManager.buildBlockTables() pads rows with -1 to the longest table", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 2 });
  for (const [id, n] of [[0, 5], [1, 1], [2, 0]]) {
    cache.addSequence(id);
    cache.append(id, n);
  }
  const { blockTables, width } = cache.buildBlockTables([1, 0, 2]);
  assert.equal(width, 3);
  assert.deepEqual([...blockTables], [3, -1, -1, 0, 1, 2, -1, -1, -1]);
  const wide = cache.buildBlockTables([0], 5);
  assert.deepEqual([...wide.blockTables], [0, 1, 2, -1, -1]);
  assert.equal(wide.width, 5);
  const empty = cache.buildBlockTables([]);
  assert.equal(empty.width, 0);
  assert.equal(empty.blockTables.length, 0);
});

Deno.test("KvCacheManager.buildBlockTables() refuses a width narrower than a table", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 2 });
  cache.addSequence(0);
  cache.append(0, 5);
  assert.throws(
    () => cache.buildBlockTables([0], 2),
    /Cannot build block tables of width 2: the longest table in the batch has 3 blocks: pass an integer of at least 3, or omit width/,
  );
  assert.throws(
    () => cache.buildBlockTables([7]),
    /Sequence 7 is not in the KV cache/,
  );
});
