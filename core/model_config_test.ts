import assert from "node:assert/strict";
import {
  loadModelConfig,
  ModelConfigError,
  parseModelConfig,
} from "./model_config.ts";

const configs = new URL("../configs/", import.meta.url).pathname;

Deno.test("loadModelConfig() reads Llama 3.1 8B as 32 full layers of head_dim 128, GQA 32/8", async () => {
  const m = await loadModelConfig(`${configs}llama-3.1-8b.json`);
  assert.equal(m.layers.length, 32);
  assert.equal(m.dtype, "bf16");
  for (const l of m.layers) {
    assert.equal(l.kind, "full");
    assert.equal(l.headDim, 128);
    assert.equal(l.numQHeads, 32);
    assert.equal(l.numKvHeads, 8);
    assert.equal(l.scale, 128 ** -0.5);
    assert.equal(l.softCap, undefined);
  }
});

Deno.test("loadModelConfig() reads Gemma 2 9B as alternating sliding-window and full layers with soft-cap", async () => {
  const m = await loadModelConfig(`${configs}gemma-2-9b.json`);
  assert.equal(m.layers.length, 42);
  m.layers.forEach((l, i) => {
    assert.equal(l.kind, i % 2 === 0 ? "sliding_window" : "full");
    assert.equal(l.slidingWindow, i % 2 === 0 ? 4096 : undefined);
    assert.equal(l.softCap, 50);
    assert.equal(l.headDim, 256);
    assert.equal(l.scale, 1 / 16);
  });
});

Deno.test("loadModelConfig() reads Qwen2 0.5B as head_dim 64 with a GQA ratio of 7", async () => {
  const m = await loadModelConfig(`${configs}qwen2-0.5b.json`);
  assert.equal(m.layers[0].headDim, 64);
  assert.equal(m.layers[0].numQHeads / m.layers[0].numKvHeads, 7);
  assert.ok(m.layers.every((l) => l.kind === "full"));
});

Deno.test("parseModelConfig() follows layer_types when a config lists them", () => {
  const m = parseModelConfig({
    model_type: "gemma3_text",
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 64,
    sliding_window: 512,
    query_pre_attn_scalar: 64,
    layer_types: ["sliding_attention", "full_attention", "sliding_attention"],
    torch_dtype: "bfloat16",
  });
  assert.deepEqual(m.layers.map((l) => l.kind), [
    "sliding_window",
    "full",
    "sliding_window",
  ]);
  assert.equal(m.layers[0].slidingWindow, 512);
});

Deno.test("parseModelConfig() windows every Mistral layer and only late Qwen2 layers", () => {
  const common = {
    num_hidden_layers: 4,
    num_attention_heads: 4,
    hidden_size: 256,
  };
  const mistral = parseModelConfig({
    ...common,
    model_type: "mistral",
    sliding_window: 4096,
  });
  assert.ok(mistral.layers.every((l) => l.kind === "sliding_window"));
  const qwen = parseModelConfig({
    ...common,
    model_type: "qwen2",
    use_sliding_window: true,
    max_window_layers: 2,
    sliding_window: 1024,
  });
  assert.deepEqual(qwen.layers.map((l) => l.kind), [
    "full",
    "full",
    "sliding_window",
    "sliding_window",
  ]);
});

Deno.test("parseModelConfig() names the field of an unusable config", () => {
  const ok = {
    model_type: "llama",
    num_hidden_layers: 2,
    num_attention_heads: 4,
    hidden_size: 256,
  };
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...ok, model_type: "gpt2" },
      /model_type "gpt2" is not supported: use one of llama/,
    ],
    [
      { ...ok, num_hidden_layers: 0 },
      /num_hidden_layers must be a positive integer, got 0/,
    ],
    [
      { ...ok, num_key_value_heads: 3 },
      /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/,
    ],
    [
      { ...ok, hidden_size: 250 },
      /hidden_size \/ num_attention_heads = 62.5 is not an integer: set head_dim/,
    ],
    [{ ...ok, torch_dtype: "int4" }, /torch_dtype "int4" is not supported/],
    [
      { ...ok, layer_types: ["full_attention"] },
      /layer_types must list num_hidden_layers = 2 entries, got 1/,
    ],
    [
      { ...ok, model_type: "gemma2", head_dim: 64 },
      /sliding_window must be a positive integer/,
    ],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parseModelConfig(config), (e: Error) => {
      assert.ok(e instanceof ModelConfigError);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("loadModelConfig() says which file it cannot read", async () => {
  await assert.rejects(
    loadModelConfig("/nonexistent/config.json"),
    /Cannot read model config \/nonexistent/,
  );
});
