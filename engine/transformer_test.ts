// The forward pass against tools/train_tiny_model.py's own logits (when the
// demo model has been trained), and, on small random models of every
// architecture, against itself: prefill vs token-by-token decode, and one
// mixed batch vs separate runs. Relative error is max|a - b| / max|b| per
// logit row, the worst row reported.
import assert from "node:assert/strict";
import { Transformer } from "./transformer.ts";
import {
  maxRowRelativeError,
  randomModel,
  referenceCaches,
  stepBatch,
  TINY_GEMMA2,
} from "./transformer_test_support.ts";

const DEMO = new URL("../models/demo-gemma2", import.meta.url).pathname;
const demoMissing = await Deno.stat(`${DEMO}/reference_logits.json`)
  .then(() => false, () => true);
const SKIP = " (ignored: models/demo-gemma2 is missing: train it with " +
  "/usr/bin/python3 tools/train_tiny_model.py --out models/demo-gemma2)";

Deno.test({
  name:
    "forward() matches train_tiny_model.py's logits for models/demo-gemma2 within 1e-3" +
    (demoMissing ? SKIP : ""),
  ignore: demoMissing,
  async fn() {
    const model = await Transformer.load(DEMO);
    const ref = JSON.parse(
      await Deno.readTextFile(`${DEMO}/reference_logits.json`),
    );
    assert.deepEqual(model.tokenizer!.encode(ref.text), ref.token_ids);
    const { manager, attention } = referenceCaches(model);
    const batch = stepBatch(manager, [{ seq: 0, tokens: ref.token_ids }], {
      allRows: true,
    });
    const logits = await model.forward(batch, attention);
    assert.equal(logits.length, ref.token_ids.length * model.config.vocabSize);
    const err = maxRowRelativeError(
      logits,
      ref.logits.flat(),
      model.config.vocabSize,
    );
    assert.ok(err <= 1e-3, `max row relative error ${err} > 1e-3`);
  },
});

Deno.test({
  name:
    "forward() decoding models/demo-gemma2 token by token gives the prefill's last-row logits" +
    (demoMissing ? SKIP : ""),
  ignore: demoMissing,
  async fn() {
    const model = await Transformer.load(DEMO);
    const ids = model.tokenizer!.encode(
      "In the beginning God created the heaven",
    );
    await assertDecodeMatchesPrefill(model, ids);
  },
});

async function assertDecodeMatchesPrefill(model: Transformer, ids: number[]) {
  const full = referenceCaches(model, { blockSize: 4 });
  const prefill = await model.forward(
    stepBatch(full.manager, [{ seq: 0, tokens: ids }]),
    full.attention,
  );
  const step = referenceCaches(model, { blockSize: 4 });
  let last: Float32Array = new Float32Array();
  for (const id of ids) {
    last = await model.forward(
      stepBatch(step.manager, [{ seq: 0, tokens: [id] }]),
      step.attention,
    );
  }
  const err = maxRowRelativeError(last, prefill, model.config.vocabSize);
  assert.ok(err <= 1e-4, `decode vs prefill: max relative error ${err} > 1e-4`);
}

const TINY = {
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  hidden_size: 32,
  intermediate_size: 40,
  vocab_size: 50,
};
const ARCHITECTURES: Record<string, Record<string, unknown>> = {
  gemma2: TINY_GEMMA2,
  llama: {
    ...TINY,
    model_type: "llama",
    rope_theta: 500000,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  },
  qwen2: { ...TINY, model_type: "qwen2", tie_word_embeddings: true },
  mistral: { ...TINY, model_type: "mistral", sliding_window: 3, head_dim: 16 },
  gemma3_text: {
    ...TINY,
    model_type: "gemma3_text",
    head_dim: 8,
    sliding_window: 4,
    query_pre_attn_scalar: 8,
    layer_types: ["sliding_attention", "full_attention"],
    rope_scaling: { rope_type: "linear", factor: 4 },
  },
};

for (const [arch, config] of Object.entries(ARCHITECTURES)) {
  Deno.test(`forward() gives the same logits for a prefill and for token-by-token decoding (${arch})`, async () => {
    const model = randomModel(config);
    // 11 tokens: longer than the sliding windows, across several 4-token blocks.
    await assertDecodeMatchesPrefill(model, [
      1,
      5,
      9,
      2,
      7,
      3,
      30,
      11,
      4,
      8,
      6,
    ]);
  });
}

Deno.test("forward() gives each sequence of a mixed prefill/decode batch its own logits", async () => {
  const model = randomModel(TINY_GEMMA2, 3);
  const a = [1, 2, 3, 4, 5], b = [9, 8, 7, 6, 5, 4];
  const together = referenceCaches(model, { blockSize: 4 });
  await model.forward(
    stepBatch(together.manager, [{ seq: "a", tokens: a }]),
    together.attention,
  );
  const mixed = await model.forward(
    stepBatch(together.manager, [{ seq: "a", tokens: [6] }, {
      seq: "b",
      tokens: b,
    }]),
    together.attention,
  );
  const alone = referenceCaches(model, { blockSize: 4 });
  const wantA = await model.forward(
    stepBatch(alone.manager, [{ seq: "a", tokens: [...a, 6] }]),
    alone.attention,
  );
  const wantB = await model.forward(
    stepBatch(alone.manager, [{ seq: "b", tokens: b }]),
    alone.attention,
  );
  const v = model.config.vocabSize;
  assert.ok(maxRowRelativeError(mixed.subarray(0, v), wantA, v) <= 1e-5);
  assert.ok(maxRowRelativeError(mixed.subarray(v), wantB, v) <= 1e-5);
});

Deno.test("forward() plans the batch once per backend, not once per layer", async () => {
  const model = randomModel({ ...TINY_GEMMA2, num_hidden_layers: 4 });
  const { manager, attention } = referenceCaches(model);
  const calls = new Map<string, number>();
  const counted = (name: string) => ({
    ...attention[0].backend,
    plan(
      batch: Parameters<NonNullable<typeof attention[0]["backend"]["plan"]>>[0],
    ) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return batch;
    },
  });
  const [even, odd] = [counted("even"), counted("odd")];
  const layers = attention.map((a, i) => ({
    ...a,
    backend: i % 2 ? odd : even,
  }));
  await model.forward(
    stepBatch(manager, [{ seq: 0, tokens: [1, 2, 3] }]),
    layers,
  );
  await model.forward(stepBatch(manager, [{ seq: 0, tokens: [4] }]), layers);
  assert.deepEqual(Object.fromEntries(calls), { even: 2, odd: 2 });
});

Deno.test("forward() refuses inputs that do not fit the model, naming the field", async () => {
  const model = randomModel(TINY_GEMMA2);
  const { manager, attention } = referenceCaches(model);
  const batch = stepBatch(manager, [{ seq: 0, tokens: [1, 2] }]);
  await assert.rejects(
    model.forward(batch, attention.slice(1)),
    /attention has 1 entries but the model has 2 layers/,
  );
  await assert.rejects(
    model.forward({ ...batch, tokens: Int32Array.of(1, 999) }, attention),
    /batch\.tokens\[1\] is 999, outside the vocabulary 0\.\.36/,
  );
  await assert.rejects(
    model.forward({ ...batch, logitRows: Int32Array.of(2) }, attention),
    /batch\.logitRows\[0\] is 2, outside the batch's rows 0\.\.1/,
  );
  await assert.rejects(
    model.forward({ ...batch, positions: Int32Array.of(0) }, attention),
    /batch\.positions is 1 long but the batch has 2 tokens/,
  );
  const other = referenceCaches(
    randomModel({ ...TINY_GEMMA2, sliding_window: 8 }),
  );
  await assert.rejects(
    model.forward(batch, [attention[1], attention[0]]),
    /Layer 0's cache has kind full but the model's layer 0 has sliding_window/,
  );
  await assert.rejects(
    model.forward(batch, other.attention),
    /Layer 0's cache has slidingWindow 8 but the model's layer 0 has 4: build its LayerConfig from transformer\.modelSpec\.layers\[0\]/,
  );
});
