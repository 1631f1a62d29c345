// Property tests: random operation sequences over small pools, with every
// invariant checked after every operation. A failure message starts with the
// seed and operation index so it can be replayed with `runOne(seed)`.
import assert from "node:assert/strict";
import { type AppendResult, KvCacheManager } from "./kv_cache_manager.ts";
import { KvCacheExhaustedError } from "./kv_cache_errors.ts";
import { mulberry32 } from "./prng.ts";

const NUM_RUNS = 400;
const OPS_PER_RUN = 150;
const MAX_LIVE = 6;

interface Model {
  cache: KvCacheManager;
  // The fake cache contents: one token tag per slot, -1 = never written.
  content: Int32Array;
  // What each live sequence must read back, one tag per position.
  expected: Map<number, number[]>;
  nextTag: number;
  stats: Stats;
}

interface Stats {
  ops: number;
  appends: number;
  exhausted: number;
  copies: number;
}

function snapshot(cache: KvCacheManager) {
  const refs = Array.from(
    { length: cache.numBlocks },
    (_, b) => cache.refCount(b),
  );
  const seqs = [...cache.sequences()].map((id) => ({
    id,
    len: cache.numTokens(id),
    table: cache.blockTable(id),
  }));
  return { free: cache.numFreeBlocks, refs, seqs };
}

/** (a) refcounts match the tables; tables have the right length; data reads back. */
function checkInvariants(m: Model, where: string): void {
  const { cache } = m;
  const bs = cache.blockSize;
  const holders = new Int32Array(cache.numBlocks);
  for (const id of [...cache.sequences()] as number[]) {
    const table = cache.blockTable(id);
    const len = cache.numTokens(id);
    assert.equal(
      table.length,
      Math.ceil(len / bs),
      `${where}: seq ${id} table length`,
    );
    assert.equal(
      new Set(table).size,
      table.length,
      `${where}: seq ${id} holds a block twice`,
    );
    for (const block of table) holders[block]++;
    // Every position reads back the tag this sequence wrote or inherited.
    const slots = cache.slotsFor(id, 0, len);
    const got = Array.from(slots, (s) => m.content[s]);
    assert.deepEqual(
      got,
      m.expected.get(id),
      `${where}: seq ${id} reads wrong data`,
    );
  }
  let free = 0;
  for (let b = 0; b < cache.numBlocks; b++) {
    assert.equal(
      cache.refCount(b),
      holders[b],
      `${where}: block ${b} refCount`,
    );
    if (holders[b] === 0) free++;
  }
  assert.equal(cache.numFreeBlocks, free, `${where}: numFreeBlocks`);
  assert.equal(
    cache.numUsedBlocks + free,
    cache.numBlocks,
    `${where}: used + free`,
  );
}

/** (c), (d), (e): appends to several sequences as one batched step. */
function step(m: Model, ids: number[], counts: number[], where: string): void {
  const { cache } = m;
  const bs = cache.blockSize;
  const results: Array<[number, AppendResult]> = [];
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    const before = snapshot(cache);
    const oldLen = cache.numTokens(id);
    const needed = cache.blocksNeeded(id, counts[k]);
    const predicted = cache.canAppend(id, counts[k]);
    let result: AppendResult;
    try {
      result = cache.append(id, counts[k]);
    } catch (e) {
      assert.ok(e instanceof KvCacheExhaustedError, `${where}: ${e}`);
      assert.ok(!predicted, `${where}: canAppend said yes but append threw`);
      assert.equal(e.needed, needed, `${where}: needed in the error`);
      assert.deepEqual(
        snapshot(cache),
        before,
        `${where}: failed append changed state`,
      );
      m.stats.exhausted++;
      continue;
    }
    assert.ok(predicted, `${where}: canAppend said no but append worked`);
    assert.equal(
      before.free - cache.numFreeBlocks,
      needed,
      `${where}: blocksNeeded`,
    );
    const table = cache.blockTable(id);
    for (let i = 0; i < counts[k]; i++) {
      const pos = oldLen + i;
      const block = table[Math.floor(pos / bs)];
      assert.equal(
        result.slots[i],
        block * bs + (pos % bs),
        `${where}: slot of pos ${pos}`,
      );
      assert.equal(
        cache.refCount(block),
        1,
        `${where}: seq ${id} writes shared block ${block}`,
      );
    }
    for (const { src, dst } of result.copies) {
      assert.equal(
        cache.refCount(dst),
        1,
        `${where}: copy into shared block ${dst}`,
      );
      assert.ok(
        cache.refCount(src) >= 1,
        `${where}: copy from freed block ${src}`,
      );
      assert.equal(
        table[Math.floor(oldLen / bs)],
        dst,
        `${where}: copy target not last block`,
      );
    }
    m.stats.appends++;
    m.stats.copies += result.copies.length;
    results.push([id, result]);
  }
  // The caller's protocol: every copy of the step, then every write.
  const written = new Map<number, number>();
  for (const [, r] of results) {
    for (const { src, dst } of r.copies) {
      m.content.copyWithin(dst * bs, src * bs, src * bs + bs);
    }
  }
  for (const [id, r] of results) {
    for (const slot of r.slots) {
      const other = written.get(slot);
      assert.ok(
        other === undefined,
        `${where}: slot ${slot} given to seqs ${other} and ${id}`,
      );
      written.set(slot, id);
      m.content[slot] = m.nextTag;
      m.expected.get(id)!.push(m.nextTag++);
    }
  }
  for (const [id, r] of results) {
    for (const slot of r.slots) {
      const block = Math.floor(slot / bs);
      assert.equal(
        cache.refCount(block),
        1,
        `${where}: seq ${id} slot ${slot} now shared`,
      );
    }
  }
}

function runOne(seed: number, stats: Stats): void {
  const rand = mulberry32(seed);
  const int = (lo: number, hi: number) =>
    lo + Math.floor(rand() * (hi - lo + 1));
  const blockSize = [1, 2, 16][int(0, 2)];
  const numBlocks = int(8, 64);
  const cache = new KvCacheManager({ numBlocks, blockSize });
  const m: Model = {
    cache,
    content: new Int32Array(numBlocks * blockSize).fill(-1),
    expected: new Map(),
    nextTag: 0,
    stats,
  };
  let nextId = 0;
  const live = () => [...cache.sequences()] as number[];
  for (let op = 0; op < OPS_PER_RUN; op++) {
    const where =
      `seed=${seed} op=${op} (numBlocks=${numBlocks}, blockSize=${blockSize})`;
    try {
      const ids = live();
      const r = rand();
      if (ids.length === 0 || (r < 0.15 && ids.length < MAX_LIVE)) {
        cache.addSequence(nextId);
        m.expected.set(nextId++, []);
      } else if (r < 0.3 && ids.length < MAX_LIVE) {
        const parent = ids[int(0, ids.length - 1)];
        cache.fork(parent, nextId);
        m.expected.set(nextId++, [...m.expected.get(parent)!]);
      } else if (r < 0.45 || (cache.usage > 0.9 && r < 0.7)) {
        // Frees more often when the pool is nearly full, as a scheduler
        // preempts, so runs keep cycling instead of sitting exhausted.
        const id = ids[int(0, ids.length - 1)];
        cache.free(id);
        m.expected.delete(id);
      } else if (r < 0.48) {
        // Errors on bad ids change nothing.
        const before = snapshot(cache);
        assert.throws(
          () => cache.free(nextId + 1),
          /is not in the KV cache/,
          where,
        );
        assert.throws(
          () => cache.fork(ids[0], ids[0]),
          /is already in the KV cache/,
          where,
        );
        assert.deepEqual(
          snapshot(cache),
          before,
          `${where}: failed call changed state`,
        );
      } else {
        // A batched step: a few decodes (1 token) or prefills (up to 3 blocks),
        // sometimes far more than the pool holds, to hit exhaustion.
        const batch = ids.filter(() => rand() < 0.6);
        const counts = batch.map(() => {
          const kind = rand();
          if (kind < 0.6) return 1;
          if (kind < 0.95) return int(0, 3 * blockSize);
          return int(
            Math.ceil(numBlocks * blockSize / 2),
            numBlocks * blockSize * 2,
          );
        });
        step(m, batch, counts, where);
      }
      checkInvariants(m, where);
    } catch (e) {
      // Put the seed on errors the manager throws, not only on assertions.
      if (e instanceof assert.AssertionError) throw e;
      throw new Error(`${where}: unexpected ${e}`, { cause: e });
    }
    stats.ops++;
  }
  // (b) no leak: freeing everything returns every block.
  for (const id of live()) cache.free(id);
  assert.equal(
    cache.numFreeBlocks,
    numBlocks,
    `seed=${seed}: leaked blocks at the end`,
  );
  for (let b = 0; b < numBlocks; b++) {
    assert.equal(cache.refCount(b), 0, `seed=${seed}: block ${b} still held`);
  }
}

const newStats = (): Stats => ({ ops: 0, appends: 0, exhausted: 0, copies: 0 });

Deno.test(`KvCacheManager keeps its invariants over ${NUM_RUNS} random runs of ${OPS_PER_RUN} operations`, () => {
  const stats = newStats();
  for (let seed = 1; seed <= NUM_RUNS; seed++) runOne(seed, stats);
  console.log(`property runs: ${JSON.stringify(stats)}`);
  // Each property must actually be exercised, or its check proves nothing.
  assert.equal(stats.ops, NUM_RUNS * OPS_PER_RUN);
  assert.ok(
    stats.exhausted > 100,
    `only ${stats.exhausted} appends hit exhaustion`,
  );
  assert.ok(stats.copies > 100, `only ${stats.copies} copy-on-write copies`);
});

Deno.test("KvCacheManager property runs replay the same way from their seed", () => {
  const a = newStats();
  const b = newStats();
  runOne(12345, a);
  runOne(12345, b);
  assert.deepEqual(a, b);
});
