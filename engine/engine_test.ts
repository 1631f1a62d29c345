import assert from "node:assert/strict";
import referenceBackend from "../backends/reference/mod.ts";
import { parseModelConfig } from "../core/model_config.ts";
import { selectBackends } from "../core/selector.ts";
import { COUNTING_VOCAB, countingModel } from "./counting_model.ts";
import { Engine } from "./engine.ts";
import { samplingParams } from "./sampling_params.ts";

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
  }], { blockSize: 4 });
  return await Engine.create({
    model: countingModel(opts),
    tokenizer,
    plan,
    backends: [referenceBackend],
    kvCacheMemory: opts.kvCacheMemory ?? 1 << 20,
    maxModelLen: 64,
    maxNumSeqs: 8,
    maxNumBatchedTokens: opts.maxNumBatchedTokens ?? 32,
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
