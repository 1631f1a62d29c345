import assert from "node:assert/strict";
import { KvCacheManager } from "../core/kv_cache_manager.ts";
import { mulberry32 } from "../core/prng.ts";
import { RequestTooLargeError, Scheduler } from "./scheduler.ts";
import { Sequence } from "./sequence.ts";

/** Drives the scheduler as the engine would, with a fake model. */
function simulate(seed: number, numBlocks: number, requests: number) {
  const rand = mulberry32(seed);
  const cache = new KvCacheManager({ numBlocks, blockSize: 4 });
  const scheduler = new Scheduler(cache, {
    maxNumSeqs: 8,
    maxNumBatchedTokens: 24,
  });
  const seqs: Sequence[] = [];
  const wanted = new Map<Sequence, number>();
  let arrivals = 0, steps = 0;
  const addOne = () => {
    const prompt = Array.from(
      { length: 1 + Math.floor(rand() * 20) },
      (_, i) => i,
    );
    const seq = new Sequence(arrivals, prompt, arrivals++);
    wanted.set(seq, 1 + Math.floor(rand() * 12));
    seqs.push(seq);
    scheduler.add(seq);
  };
  while (scheduler.hasWork || arrivals < requests) {
    if (arrivals < requests && rand() < 0.5) addOne();
    if (!scheduler.hasWork) continue;
    const out = scheduler.schedule();
    steps++;
    assert.ok(out.numTokens <= 24, `seed ${seed}: step over budget`);
    assert.ok(out.scheduled.length <= 8);
    const ids = new Set(out.scheduled.map((s) => s.seq.id));
    assert.equal(
      ids.size,
      out.scheduled.length,
      `seed ${seed}: a sequence scheduled twice`,
    );
    for (const s of out.scheduled) {
      // The cache holds exactly the computed tokens plus this step's.
      assert.equal(
        cache.numTokens(s.seq.id),
        s.seq.numComputed + s.numNewTokens,
        `seed ${seed}`,
      );
      s.seq.numComputed += s.numNewTokens;
      if (s.sample) {
        s.seq.tokens.push(1000 + s.seq.numOutput);
        if (s.seq.numOutput >= wanted.get(s.seq)!) scheduler.finish(s.seq);
      }
    }
    assert.ok(steps < 10000, `seed ${seed}: no progress`);
  }
  return { cache, scheduler, seqs, wanted, steps };
}

Deno.test("Scheduler runs every request to completion and frees every block, preempting when the pool is tight", () => {
  let preemptions = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const { cache, scheduler, seqs, wanted } = simulate(seed, 10, 20);
    for (const s of seqs) {
      assert.equal(s.status, "finished");
      assert.equal(
        s.numOutput,
        wanted.get(s),
        `seed ${seed}: sequence ${s.id} lost or duplicated tokens`,
      );
      // Generated tokens in order, none lost to a preemption.
      assert.deepEqual(
        s.tokens.slice(s.promptLength),
        Array.from({ length: s.numOutput }, (_, i) => 1000 + i),
      );
    }
    assert.equal(
      cache.numFreeBlocks,
      cache.numBlocks,
      `seed ${seed}: leaked blocks`,
    );
    preemptions += scheduler.numPreemptions;
  }
  assert.ok(
    preemptions > 20,
    `the tight pool should force preemptions, saw ${preemptions}`,
  );
});

Deno.test("Scheduler chunks a long prompt over several steps within the token budget", () => {
  const cache = new KvCacheManager({ numBlocks: 64, blockSize: 4 });
  const scheduler = new Scheduler(cache, { maxNumBatchedTokens: 16 });
  const seq = new Sequence(0, Array.from({ length: 40 }, (_, i) => i), 0);
  scheduler.add(seq);
  const chunks: number[] = [];
  for (;;) {
    const out = scheduler.schedule();
    const s = out.scheduled[0];
    seq.numComputed += s.numNewTokens;
    chunks.push(s.numNewTokens);
    if (s.sample) break;
  }
  assert.deepEqual(chunks, [16, 16, 8]);
});

Deno.test("Scheduler refuses a prompt the whole pool cannot hold, naming both numbers", () => {
  const scheduler = new Scheduler(
    new KvCacheManager({ numBlocks: 2, blockSize: 4 }),
  );
  assert.throws(
    () => scheduler.add(new Sequence(0, Array(8).fill(1), 0)),
    (e: Error) =>
      e instanceof RequestTooLargeError &&
      /needs 3 KV blocks but the whole cache has 2/.test(e.message),
  );
});

Deno.test("Scheduler puts decodes of running sequences before new prompts", () => {
  const cache = new KvCacheManager({ numBlocks: 64, blockSize: 4 });
  const scheduler = new Scheduler(cache, { maxNumBatchedTokens: 100 });
  const a = new Sequence(0, [1, 2, 3], 0);
  scheduler.add(a);
  const first = scheduler.schedule();
  a.numComputed += first.scheduled[0].numNewTokens;
  a.tokens.push(9);
  scheduler.add(new Sequence(1, [4, 5], 1));
  const second = scheduler.schedule();
  assert.deepEqual(second.scheduled.map((s) => [s.seq.id, s.numNewTokens]), [[
    0,
    1,
  ], [1, 2]]);
});
