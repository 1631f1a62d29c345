import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import type { BackendDefinition } from "../core/backend.ts";
import { BackendError } from "../core/backend_errors.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import { parseModelConfig } from "../core/model_config.ts";
import { mulberry32 } from "../core/prng.ts";
import { CalibrationError, type LayerKvScales } from "../core/scales.ts";
import { selectBackends } from "../core/selector.ts";
import { COUNTING_VOCAB, countingModel } from "./counting_model.ts";
import { Engine } from "./engine.ts";
import { samplingParams } from "./sampling_params.ts";
import { SCHEDULING_POLICIES, type SchedulingPolicy } from "./scheduler.ts";

const VOCAB = COUNTING_VOCAB;
const EOS = 31;

const tokenizer = {
  decode: (ids: readonly number[]) =>
    ids.map((i) => String.fromCharCode(97 + (i % 26))).join(""),
  eosTokenIds: [EOS],
};

async function engine(
  opts: {
    kvCacheMemory?: number;
    nanFor?: number;
    maxNumBatchedTokens?: number;
    schedulingPolicy?: SchedulingPolicy;
    kvCacheDtype?: KvCacheDtype;
    calculateKvScales?: boolean;
    calibration?: LayerKvScales[];
    delayMs?: number;
  } = {},
) {
  const model = parseModelConfig({
    model_type: "llama",
    num_hidden_layers: 1,
    num_attention_heads: 1,
    head_dim: 8,
    hidden_size: 8,
    torch_dtype: "float32",
  });
  const plan = selectBackends(model, [{
    definition: referenceBackend,
    availability: new Map([["reference", { available: true }]]),
  }], { blockSize: 4, kvCacheDtype: opts.kvCacheDtype ?? "auto" });
  return await Engine.create({
    model: countingModel(opts),
    tokenizer,
    plan,
    backends: [referenceBackend],
    kvCacheMemory: opts.kvCacheMemory ?? 1 << 20,
    maxModelLen: 64,
    maxNumSeqs: 8,
    maxNumBatchedTokens: opts.maxNumBatchedTokens ?? 32,
    schedulingPolicy: opts.schedulingPolicy,
    calculateKvScales: opts.calculateKvScales,
    ...(opts.calibration ? { calibration: opts.calibration } : {}),
    warn: () => {},
  });
}

const greedy = (maxTokens: number, extra = {}) =>
  samplingParams({ temperature: 0, maxTokens, ...extra });

Deno.test("Engine generates greedily until max_tokens and frees the request's blocks", async () => {
  const e = await engine();
  const r = await e.addRequest([1, 2, 3], greedy(5)).result();
  assert.deepEqual(r.tokenIds, [4, 5, 6, 7, 8]);
  assert.equal(r.text, "efghi");
  assert.equal(r.finishReason, "length");
  assert.equal(e.cache.numFreeBlocks, e.cache.numBlocks);
  await e.shutdown();
});

Deno.test("Engine stops before a stop string and does not return it", async () => {
  const e = await engine();
  const r = await e.addRequest([1], greedy(10, { stop: ["de"] })).result();
  assert.equal(r.text, "c");
  assert.equal(r.finishReason, "stop");
  await e.shutdown();
});

Deno.test("Engine stops at the end-of-sequence token", async () => {
  const e = await engine();
  const r = await e.addRequest([28], greedy(10)).result();
  assert.deepEqual(r.tokenIds, [29, 30]);
  assert.equal(r.finishReason, "stop");
  await e.shutdown();
});

Deno.test("Engine completes many concurrent requests through preemptions without losing a token", async () => {
  // 12 blocks of 4 tokens for 16 requests of up to 30 tokens: it must preempt.
  const e = await engine({
    kvCacheMemory: 12 * 256,
    maxNumBatchedTokens: 16,
  });
  assert.equal(e.cache.numBlocks, 12);
  const starts = Array.from({ length: 16 }, (_, i) => i % 20);
  const results = await Promise.all(
    starts.map((s) =>
      e.addRequest([s, s + 1, s + 2], greedy(25, { ignoreEos: true })).result()
    ),
  );
  results.forEach((r, i) => {
    const expected = Array.from(
      { length: 25 },
      (_, k) => (starts[i] + 3 + k) % VOCAB,
    );
    assert.deepEqual(r.tokenIds, expected, `request ${i}`);
  });
  assert.ok(
    e.metrics.preemptions > 0,
    "the small pool should force preemptions",
  );
  assert.equal(e.cache.numFreeBlocks, e.cache.numBlocks);
  assert.ok(Math.max(...e.metrics.batchSizes) > 1, "requests were batched");
  await e.shutdown();
});

Deno.test("Engine frees an aborted request's blocks at once and keeps serving others", async () => {
  const e = await engine();
  const a = e.addRequest([1], greedy(40, { ignoreEos: true }));
  const b = e.addRequest([2], greedy(3));
  let seen = 0;
  for await (const _ of a) if (++seen === 2) a.abort();
  assert.equal(a.finishReason, "abort");
  assert.equal((await b.result()).tokenIds.length, 3);
  await e.idle();
  assert.equal(e.cache.numFreeBlocks, e.cache.numBlocks);
  await e.shutdown();
});

Deno.test("Engine fails a request whose logits are NaN with a clear error, and serves the rest", async () => {
  const e = await engine({ nanFor: 5 });
  const bad = e.addRequest([4], greedy(5));
  const good = e.addRequest([10], greedy(3));
  await assert.rejects(bad.result(), /NaN logits/);
  assert.deepEqual((await good.result()).tokenIds, [11, 12, 13]);
  await e.shutdown();
});

Deno.test("Engine refuses empty and over-long prompts with the reason", async () => {
  const e = await engine();
  assert.throws(() => e.addRequest([], greedy(1)), /The prompt is empty/);
  assert.throws(
    () => e.addRequest(Array(64).fill(1), greedy(1)),
    /64 tokens but the model's context is 64/,
  );
  await e.shutdown();
});

Deno.test("Engine refuses a request whose prompt plus max_tokens can never fit the pool", async () => {
  const e = await engine({ kvCacheMemory: 4 * 256 }); // 4 blocks of 4 tokens
  assert.throws(
    () => e.addRequest([1, 2, 3], greedy(20)),
    /needs 6 KV blocks but the whole cache has 4: lower max_tokens/,
  );
  assert.equal(
    (await e.addRequest([1, 2, 3], greedy(5)).result()).tokenIds.length,
    5,
  );
  await e.shutdown();
});

Deno.test("Engine returns every block after a random mix of completions, aborts and preemptions, under both policies", async () => {
  for (const schedulingPolicy of SCHEDULING_POLICIES) {
    let aborts = 0, preemptions = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const rand = mulberry32(seed);
      // 12 blocks of 4 tokens for 14 requests of up to 34 tokens.
      const e = await engine({
        kvCacheMemory: 12 * 256,
        maxNumBatchedTokens: 16,
        schedulingPolicy,
      });
      const runs = Array.from({ length: 14 }, async (_, i) => {
        const start = Math.floor(rand() * 20);
        const prompt = Array.from(
          { length: 1 + Math.floor(rand() * 10) },
          (_, k) => (start + k) % 26,
        );
        const maxTokens = 1 + Math.floor(rand() * 24);
        const abortAfter = rand() < 0.3 ? Math.floor(rand() * 4) : -1;
        // Requests arrive over the first steps, not all at once.
        await new Promise((r) => setTimeout(r, Math.floor(rand() * 3)));
        const s = e.addRequest(prompt, greedy(maxTokens, { ignoreEos: true }));
        let seen = 0;
        if (abortAfter === 0) s.abort();
        for await (const _ of s) if (++seen === abortAfter) s.abort();
        if (s.finishReason === "abort") return aborts++;
        const r = await s.result();
        const last = prompt.at(-1)!;
        assert.deepEqual(
          r.tokenIds,
          Array.from({ length: maxTokens }, (_, k) => (last + 1 + k) % VOCAB),
          `${schedulingPolicy} seed ${seed} request ${i}`,
        );
      });
      await Promise.all(runs);
      await e.idle();
      assert.equal(e.numRequests, 0);
      assert.equal(
        e.cache.numFreeBlocks,
        e.cache.numBlocks,
        `${schedulingPolicy} seed ${seed}: leaked blocks`,
      );
      assert.equal([...e.cache.sequences()].length, 0);
      assert.equal(e.scheduler.numPreemptions, e.metrics.preemptions);
      preemptions += e.metrics.preemptions;
      await e.shutdown();
    }
    assert.ok(aborts > 5, `${schedulingPolicy}: only ${aborts} aborts`);
    if (schedulingPolicy === "guaranteed_no_evict") {
      assert.equal(preemptions, 0, "guaranteed_no_evict preempted");
    } else {
      assert.ok(preemptions > 0, "max_utilization should have preempted");
    }
  }
});

Deno.test("Engine under guaranteed_no_evict runs the preempting workload with zero preemptions and the same outputs", async () => {
  const starts = Array.from({ length: 16 }, (_, i) => i % 20);
  const outputs: number[][][] = [];
  for (const schedulingPolicy of SCHEDULING_POLICIES) {
    const e = await engine({
      kvCacheMemory: 12 * 256,
      maxNumBatchedTokens: 16,
      schedulingPolicy,
    });
    const results = await Promise.all(
      starts.map((s) =>
        e.addRequest([s, s + 1, s + 2], greedy(25, { ignoreEos: true }))
          .result()
      ),
    );
    outputs.push(results.map((r) => [...r.tokenIds]));
    if (schedulingPolicy === "guaranteed_no_evict") {
      assert.equal(e.metrics.preemptions, 0);
      // 7 blocks per request in a pool of 12: one request at a time.
      assert.equal(Math.max(...e.metrics.batchSizes), 1);
    } else {
      assert.ok(e.metrics.preemptions > 0);
    }
    assert.equal(e.cache.numFreeBlocks, e.cache.numBlocks);
    await e.shutdown();
  }
  assert.deepEqual(outputs[0], outputs[1]);
});

Deno.test("Engine with calculateKvScales measures each scaled layer on the first prefill, then keeps the scales", async () => {
  const e = await engine({
    kvCacheDtype: "fp8_e4m3",
    calculateKvScales: true,
  });
  const layer0 = () => e.kvScales[0];
  assert.equal(layer0(), undefined);
  // The counting model writes K = V = token / 32: amax 20/32 in this prefill.
  await e.addRequest([3, 20, 7], greedy(2)).result();
  const expected = Math.fround(Math.fround(20 / 32) / 448);
  assert.equal(layer0()?.kScale, expected);
  assert.equal(layer0()?.vScale, expected);
  // A later, larger prompt does not change them.
  await e.addRequest([25, 26], greedy(2)).result();
  assert.equal(layer0()?.kScale, expected);
  await e.shutdown();
});

Deno.test("Engine with calculateKvScales serves a per-tensor int8 cache, which has no default scale", async () => {
  await assert.rejects(
    engine({ kvCacheDtype: "int8" }),
    /Layer 0 has a per-tensor int8 KV cache but no scales: .*pass --kv-quant-params-path FILE .*--calculate-kv-scales/,
  );
  const e = await engine({ kvCacheDtype: "int8", calculateKvScales: true });
  const r = await e.addRequest([1, 2, 3], greedy(4)).result();
  assert.deepEqual(r.tokenIds, [4, 5, 6, 7]);
  assert.equal(
    e.kvScales[0]?.kScale,
    Math.fround(Math.fround(3 / 32) / 127),
  );
  await e.shutdown();
});

Deno.test("Engine refuses two scale sources, and scale sources for a 16-bit cache, saying what to do", async () => {
  const one = { kScale: 0.01, vScale: 0.01, kZeroPoint: 0, vZeroPoint: 0 };
  await assert.rejects(
    engine({
      kvCacheDtype: "fp8_e4m3",
      calculateKvScales: true,
      calibration: [one],
    }),
    (e: Error) =>
      e instanceof CalibrationError &&
      /Both --kv-quant-params-path .* and --calculate-kv-scales .* were given/
        .test(e.message),
  );
  await assert.rejects(
    engine({ kvCacheDtype: "bf16", calculateKvScales: true }),
    /--calculate-kv-scales .* no layer's KV cache has per-layer scales \(the plan stores bf16\).*pass --kv-cache-dtype fp8_e4m3/,
  );
  await assert.rejects(
    engine({ kvCacheDtype: "fp16", calibration: [one] }),
    /--kv-quant-params-path .*\(the plan stores fp16\)/,
  );
  await assert.rejects(
    engine({ kvCacheDtype: "fp8_e4m3", calibration: [one, one] }),
    /The calibration has 2 layers but the model has 1/,
  );
  const e = await engine({ kvCacheDtype: "fp8_e5m2", calibration: [one] });
  assert.deepEqual(e.kvScales, [one]);
  await e.shutdown();
});

Deno.test("Engine.generate needs a tokenizer with encode for a text prompt, and takes token ids without one", async () => {
  const e = await engine();
  await assert.rejects(
    e.generate("abc", { temperature: 0 }),
    /tokenizer has no encode\(\)/,
  );
  assert.equal(
    await e.generate([1, 2], { temperature: 0, maxTokens: 3 }),
    "def",
  );
  await e.shutdown();
});

Deno.test("Engine fails the step's requests when copyBlocks throws, frees their blocks, and keeps serving", async () => {
  const [target] = referenceBackend.targets;
  const copying: BackendDefinition = {
    ...referenceBackend,
    name: "copyfails",
    targets: [{
      ...target,
      create: async (options) => {
        const backend = await target.create(options);
        return {
          ...backend,
          name: "copyfails",
          copyBlocks: () => {
            throw new TypeError("pairs is not iterable");
          },
        };
      },
    }],
  };
  const model = parseModelConfig({
    model_type: "llama",
    num_hidden_layers: 1,
    num_attention_heads: 1,
    head_dim: 8,
    hidden_size: 8,
    torch_dtype: "float32",
  });
  const plan = selectBackends(model, [{
    definition: copying,
    availability: new Map([["reference", { available: true }]]),
  }], { blockSize: 4 });
  const e = await Engine.create({
    model: countingModel({}),
    tokenizer,
    plan,
    backends: [copying],
    kvCacheMemory: 1 << 20,
    maxModelLen: 64,
    maxNumSeqs: 8,
    maxNumBatchedTokens: 32,
    warn: () => {},
  });
  // The engine never forks today, so copy-on-write copies are made to
  // appear in one step: that step must run copyBlocks before attention.
  const schedule = e.scheduler.schedule.bind(e.scheduler);
  let copyNext = true;
  e.scheduler.schedule = () => {
    const out = schedule();
    if (!copyNext || out.scheduled.length === 0) return out;
    copyNext = false;
    return { ...out, copies: Int32Array.of(0, 1) };
  };
  const failed = e.addRequest([4], greedy(5));
  const error = await failed.result().then(
    () => assert.fail("the request survived a failed copyBlocks"),
    (error: Error) => error,
  );
  assert.match(
    error.message,
    /The forward pass failed \(attention backends: .*copyfails.*\): Backend copyfails \(reference\) failed on layer 0: TypeError: pairs is not iterable/,
  );
  assert.ok(error.cause instanceof BackendError);
  assert.equal(error.cause.layer, 0);
  assert.equal(failed.finishReason, "abort");
  await e.idle();
  assert.equal(e.cache.numFreeBlocks, e.cache.numBlocks);
  // The loop survived: the next request is served.
  assert.deepEqual((await e.addRequest([10], greedy(3)).result()).tokenIds, [
    11,
    12,
    13,
  ]);
  await e.shutdown();
});
