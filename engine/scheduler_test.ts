import assert from "node:assert/strict";
import { KvCacheManager } from "../core/kv_cache_manager.ts";
import { mulberry32 } from "../core/prng.ts";
import {
  RequestTooLargeError,
  Scheduler,
  type SchedulingPolicy,
} from "./scheduler.ts";
import { Sequence } from "./sequence.ts";

/**
 * Drives the scheduler as the engine would, with a fake model; with
 * `abortRate`, each step finishes a random live sequence early (a client
 * abort) with that probability.
 */
function simulate(
  seed: number,
  numBlocks: number,
  requests: number,
  o: { policy?: SchedulingPolicy; abortRate?: number } = {},
) {
  const rand = mulberry32(seed);
  const cache = new KvCacheManager({ numBlocks, blockSize: 4 });
  const scheduler = new Scheduler(cache, {
    maxNumSeqs: 8,
    maxNumBatchedTokens: 24,
    schedulingPolicy: o.policy,
  });
  const aborted = new Set<Sequence>();
  const seqs: Sequence[] = [];
  const wanted = new Map<Sequence, number>();
  let arrivals = 0, steps = 0;
  const addOne = () => {
    const prompt = Array.from(
      { length: 1 + Math.floor(rand() * 20) },
      (_, i) => i,
    );
    const want = 1 + Math.floor(rand() * 12);
    const seq = new Sequence(arrivals, prompt, arrivals++, want);
    wanted.set(seq, want);
    seqs.push(seq);
    scheduler.add(seq);
  };
  while (scheduler.hasWork || arrivals < requests) {
    if (arrivals < requests && rand() < 0.5) addOne();
    if (!scheduler.hasWork) continue;
    if (rand() < (o.abortRate ?? 0)) {
      const live = seqs.filter((s) => s.status !== "finished");
      const victim = live[Math.floor(rand() * live.length)];
      scheduler.finish(victim);
      aborted.add(victim);
      if (!scheduler.hasWork) continue;
    }
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
  return { cache, scheduler, seqs, wanted, steps, aborted };
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

Deno.test("Scheduler frees every block after random completions, aborts and preemptions, under both policies", () => {
  for (const policy of ["max_utilization", "guaranteed_no_evict"] as const) {
    let preemptions = 0, aborts = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = simulate(seed, 10, 20, { policy, abortRate: 0.08 });
      for (const s of r.seqs) {
        assert.equal(s.status, "finished", `${policy} seed ${seed}`);
        if (r.aborted.has(s)) continue;
        assert.equal(s.numOutput, r.wanted.get(s), `${policy} seed ${seed}`);
      }
      assert.equal(
        r.cache.numFreeBlocks,
        r.cache.numBlocks,
        `${policy} seed ${seed}: leaked blocks`,
      );
      assert.equal(
        [...r.cache.sequences()].length,
        0,
        `${policy} seed ${seed}`,
      );
      preemptions += r.scheduler.numPreemptions;
      aborts += r.aborted.size;
    }
    assert.ok(aborts > 20, `${policy}: the mix should abort, saw ${aborts}`);
    if (policy === "guaranteed_no_evict") {
      assert.equal(preemptions, 0, "guaranteed_no_evict preempted");
    } else {
      assert.ok(preemptions > 10, `max_utilization preempted ${preemptions}`);
    }
  }
});

Deno.test("Scheduler under guaranteed_no_evict admits a request only when prompt + max_tokens fits beside the running ones' reservations", () => {
  // 8 blocks of 4: each request reserves ceil((4 + 9 - 1) / 4) = 3 blocks.
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  const scheduler = new Scheduler(cache, {
    schedulingPolicy: "guaranteed_no_evict",
  });
  const seqs = [0, 1, 2].map((i) => new Sequence(i, [1, 2, 3, 4], i, 9));
  for (const s of seqs) scheduler.add(s);
  const first = scheduler.schedule();
  // Two fit (6 blocks promised); the third would need 3 of the 2 left,
  // though its prompt alone (1 block) would fit.
  assert.deepEqual(first.scheduled.map((s) => s.seq.id), [0, 1]);
  assert.equal(cache.numFreeBlocks, 6);
  assert.equal(scheduler.numWaiting, 1);
  scheduler.finish(seqs[0]);
  const second = scheduler.schedule();
  assert.ok(second.scheduled.some((s) => s.seq.id === 2));
  assert.throws(
    () => scheduler.add(new Sequence(3, [1, 2, 3, 4], 3, 40)),
    /plus max_tokens \(40\) needs 11 KV blocks but the whole cache has 8/,
  );
  assert.throws(
    () => scheduler.add(new Sequence(4, [1], 4)),
    /has no max_tokens/,
  );
});

Deno.test("Scheduler under max_utilization admits by the prompt alone", () => {
  const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
  const scheduler = new Scheduler(cache);
  assert.equal(scheduler.policy, "max_utilization");
  for (let i = 0; i < 3; i++) {
    scheduler.add(new Sequence(i, [1, 2, 3, 4], i, 9));
  }
  assert.equal(scheduler.schedule().scheduled.length, 3);
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
