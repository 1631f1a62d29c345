import assert from "node:assert/strict";
import referenceBackend, {
  createReferenceBackend,
} from "../backends/reference/mod.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import type { LayerKvScales } from "../core/scales.ts";
import { probeBackends, selectBackends } from "../core/selector.ts";
import { Engine } from "./engine.ts";
import { samplingParams } from "./sampling_params.ts";
import { Transformer } from "./transformer.ts";

// The demo model on the reference backend: real attention, so a recomputed
// sequence must rebuild exactly the K/V it lost for its output to match.
const model = await Transformer.load(
  new URL("../models/demo-gemma2", import.meta.url).pathname,
);
const tokenizer = model.tokenizer!;
const PROMPTS = [
  "To every thing",
  "A time to be born",
  "and a time to die;",
  "A time to kill",
  "a time to heal;",
  "A time to weep",
];

async function run(
  o: {
    kvCacheDtype: KvCacheDtype;
    numBlocks?: number;
    calibration?: readonly LayerKvScales[];
    calculateKvScales?: boolean;
  },
) {
  const plan = selectBackends(
    model.modelSpec,
    await probeBackends([referenceBackend]),
    { blockSize: 4, kvCacheDtype: o.kvCacheDtype },
  );
  const sizer = createReferenceBackend();
  const bytesPerBlock = plan.decisions.reduce(
    (a, d) => a + sizer.cacheBytesPerBlock(d.layer),
    0,
  );
  const engine = await Engine.create({
    model: {
      vocabSize: model.config.vocabSize,
      forward: (b, a) => model.forward(b, a),
    },
    tokenizer,
    plan,
    backends: [referenceBackend],
    kvCacheMemory: (o.numBlocks ?? 256) * bytesPerBlock,
    maxModelLen: 64,
    maxNumBatchedTokens: 12,
    ...(o.calibration ? { calibration: o.calibration } : {}),
    calculateKvScales: o.calculateKvScales,
  });
  const params = samplingParams({
    temperature: 0,
    maxTokens: 12,
    ignoreEos: true,
  });
  const results = await Promise.all(
    PROMPTS.map((p) => engine.addRequest(tokenizer.encode(p), params).result()),
  );
  await engine.shutdown();
  assert.equal(engine.cache.numFreeBlocks, engine.cache.numBlocks);
  return {
    tokens: results.map((r) => [...r.tokenIds]),
    preemptions: engine.metrics.preemptions,
    scales: engine.kvScales as LayerKvScales[],
  };
}

Deno.test("Engine's greedy outputs on the demo model are the same with and without preemption (fp32 cache)", async () => {
  const roomy = await run({ kvCacheDtype: "fp32" });
  assert.equal(roomy.preemptions, 0);
  // 12 blocks of 4 tokens for 6 requests of up to 6 + 12 tokens.
  const tight = await run({ kvCacheDtype: "fp32", numBlocks: 12 });
  assert.ok(tight.preemptions > 0, "the tight pool should preempt");
  assert.deepEqual(tight.tokens, roomy.tokens);
});

Deno.test("Engine's greedy outputs on the demo model are the same with and without preemption (fp8 cache, fixed scales)", async () => {
  // Scales measured once, then given to both runs: a recomputed sequence
  // re-encodes its K/V with the same scales, so it gets the same codes.
  const { scales } = await run({
    kvCacheDtype: "fp8_e4m3",
    calculateKvScales: true,
  });
  assert.ok(scales.every((s) => s.kScale > 0 && s.kScale !== 1));
  const roomy = await run({ kvCacheDtype: "fp8_e4m3", calibration: scales });
  const tight = await run({
    kvCacheDtype: "fp8_e4m3",
    calibration: scales,
    numBlocks: 12,
  });
  assert.equal(roomy.preemptions, 0);
  assert.ok(tight.preemptions > 0, "the tight pool should preempt");
  assert.deepEqual(tight.tokens, roomy.tokens);
});
