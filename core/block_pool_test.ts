import assert from "node:assert/strict";
import { BlockPool } from "./block_pool.ts";
import { KvCacheExhaustedError } from "./kv_cache_errors.ts";

Deno.test("BlockPool starts with every block free", () => {
  const pool = new BlockPool(8);
  assert.equal(pool.numBlocks, 8);
  assert.equal(pool.numFree, 8);
  assert.equal(pool.numUsed, 0);
  for (let b = 0; b < 8; b++) assert.equal(pool.refCount(b), 0);
});

Deno.test("BlockPool refuses a non-positive or fractional size", () => {
  for (const bad of [0, -3, 2.5, NaN]) {
    assert.throws(
      () => new BlockPool(bad),
      new RegExp(
        `Cannot create a block pool of ${bad} blocks: pass a positive integer`,
      ),
    );
  }
});

Deno.test("BlockPool.allocate() hands out blocks in order with a count of 1", () => {
  const pool = new BlockPool(3);
  assert.deepEqual([pool.allocate(), pool.allocate(), pool.allocate()], [
    0,
    1,
    2,
  ]);
  assert.equal(pool.refCount(1), 1);
  assert.equal(pool.numFree, 0);
  assert.equal(pool.numUsed, 3);
});

Deno.test("BlockPool.allocate() throws KvCacheExhaustedError when empty", () => {
  const pool = new BlockPool(1);
  pool.allocate();
  assert.throws(
    () => pool.allocate(),
    (e: unknown) =>
      e instanceof KvCacheExhaustedError && e.needed === 1 && e.free === 0 &&
      e.numBlocks === 1 && /need 1, 0 free of 1/.test(e.message),
  );
});

Deno.test("BlockPool reuses the most recently freed block first (LIFO)", () => {
  const pool = new BlockPool(4);
  const [a, b] = pool.allocateMany(2);
  pool.decRef(a);
  pool.decRef(b);
  assert.equal(pool.allocate(), b);
  assert.equal(pool.allocate(), a);
});

Deno.test("BlockPool.allocateMany() is all or nothing", () => {
  const pool = new BlockPool(4);
  pool.allocate();
  assert.throws(
    () => pool.allocateMany(4),
    (e: unknown) =>
      e instanceof KvCacheExhaustedError && e.needed === 4 && e.free === 3,
  );
  assert.equal(pool.numFree, 3);
  assert.deepEqual(pool.allocateMany(3), [1, 2, 3]);
  assert.deepEqual(pool.allocateMany(0), []);
});

Deno.test("BlockPool.allocateMany() refuses a negative or fractional count", () => {
  const pool = new BlockPool(4);
  assert.throws(
    () => pool.allocateMany(-1),
    /Cannot allocate -1 blocks: pass a non-negative integer/,
  );
  assert.throws(() => pool.allocateMany(1.5), /Cannot allocate 1.5 blocks/);
});

Deno.test("BlockPool.incRef() and decRef() share a block until the last release", () => {
  const pool = new BlockPool(2);
  const block = pool.allocate();
  pool.incRef(block);
  pool.incRef(block);
  assert.equal(pool.refCount(block), 3);
  pool.decRef(block);
  pool.decRef(block);
  assert.equal(pool.numFree, 1);
  pool.decRef(block);
  assert.equal(pool.refCount(block), 0);
  assert.equal(pool.numFree, 2);
});

Deno.test("BlockPool.decRef() of a free block reports a double free", () => {
  const pool = new BlockPool(8);
  assert.throws(
    () => pool.decRef(7),
    /^Error: Block 7 is already free: double free: a sequence released a block it did not hold/,
  );
  const block = pool.allocate();
  pool.decRef(block);
  assert.throws(
    () => pool.decRef(block),
    /Block 0 is already free: double free/,
  );
  assert.equal(pool.numFree, 8);
});

Deno.test("BlockPool.incRef() of a free block is refused", () => {
  const pool = new BlockPool(2);
  assert.throws(
    () => pool.incRef(1),
    /Block 1 is free: allocate it before adding a reference/,
  );
  assert.equal(pool.refCount(1), 0);
});

Deno.test("BlockPool rejects block ids out of range", () => {
  const pool = new BlockPool(4);
  for (const bad of [-1, 4, 1.5]) {
    assert.throws(
      () => pool.refCount(bad),
      new RegExp(
        `Block ${bad} is out of range: block ids are integers from 0 to 3`,
      ),
    );
    assert.throws(() => pool.incRef(bad), /out of range/);
    assert.throws(() => pool.decRef(bad), /out of range/);
  }
});
