import assert from "node:assert/strict";
import { ModelConfigError } from "../core/model_config.ts";
import { parseModelParams } from "./model_params.ts";
import { ropeInvFreq } from "./rope_params.ts";

const BASE = {
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  hidden_size: 128,
  intermediate_size: 256,
  vocab_size: 1000,
};

async function repoConfig(name: string): Promise<Record<string, unknown>> {
  const url = new URL(`../configs/${name}`, import.meta.url);
  return JSON.parse(await Deno.readTextFile(url));
}

Deno.test("parseModelParams() reads Llama 3.1 8B's config with llama3 RoPE scaling", async () => {
  const p = parseModelParams(await repoConfig("llama-3.1-8b.json"));
  assert.equal(p.modelType, "llama");
  assert.deepEqual(
    [p.hiddenSize, p.intermediateSize, p.vocabSize, p.headDim],
    [4096, 14336, 128256, 128],
  );
  assert.equal(p.activation, "silu");
  assert.equal(p.normAddOne, false);
  assert.equal(p.embedScale, 1);
  assert.equal(p.tieWordEmbeddings, false);
  assert.equal(p.finalLogitSoftcap, undefined);
  assert.deepEqual([p.postNorms, p.qkNorm, p.qkvBias, p.oBias], [
    false,
    false,
    false,
    false,
  ]);
  assert.equal(p.rope[0].scaling.type, "llama3");
  assert.equal(p.rope[0].theta, 500000);
});

Deno.test("parseModelParams() gives Qwen2 its q/k/v biases and no o_proj bias", async () => {
  const p = parseModelParams(await repoConfig("qwen2-0.5b.json"));
  assert.deepEqual([p.qkvBias, p.oBias], [true, false]);
  assert.equal(p.tieWordEmbeddings, true); // Qwen2-0.5B ties
});

Deno.test("parseModelParams() reads the Gemma 2 specifics: (1 + w) norms, sqrt(hidden) scale, post norms, soft-cap", async () => {
  const p = parseModelParams(await repoConfig("demo-gemma2-tiny.json"));
  assert.equal(p.normAddOne, true);
  assert.equal(p.embedScale, 16);
  assert.equal(p.activation, "gelu_tanh");
  assert.equal(p.tieWordEmbeddings, true);
  assert.equal(p.finalLogitSoftcap, 30);
  assert.equal(p.postNorms, true);
  assert.equal(p.qkNorm, false);
  assert.equal(p.rope[0], p.rope[1]); // one setting, shared
});

Deno.test("parseModelParams() gives Gemma 3 q/k norms and the local RoPE base on sliding layers", () => {
  const p = parseModelParams({
    ...BASE,
    model_type: "gemma3_text",
    head_dim: 16,
    sliding_window: 512,
    layer_types: [
      "sliding_attention",
      "sliding_attention",
      "sliding_attention",
      "full_attention",
    ],
    rope_scaling: { rope_type: "linear", factor: 8 },
  });
  assert.equal(p.qkNorm, true);
  assert.equal(p.finalLogitSoftcap, undefined);
  assert.deepEqual(p.rope.map((r) => r.theta), [1e4, 1e4, 1e4, 1e6]);
  assert.deepEqual(p.rope[3].scaling, { type: "linear", factor: 8 });
  assert.deepEqual(p.rope[0].scaling, { type: "default" });
});

Deno.test("parseModelParams() reads transformers 5's rope_parameters keyed by layer type", () => {
  const p = parseModelParams({
    ...BASE,
    model_type: "gemma3_text",
    head_dim: 16,
    sliding_window: 512,
    layer_types: [
      "sliding_attention",
      "full_attention",
      "sliding_attention",
      "full_attention",
    ],
    rope_parameters: {
      full_attention: { rope_type: "linear", factor: 2, rope_theta: 1e6 },
      sliding_attention: { rope_type: "default", rope_theta: 1e4 },
    },
  });
  assert.deepEqual(p.rope.map((r) => r.theta), [1e4, 1e6, 1e4, 1e6]);
  assert.equal(p.rope[1].scaling.type, "linear");
});

Deno.test("parseModelParams() names the field it cannot use", () => {
  const llama = { ...BASE, model_type: "llama" };
  const cases: [Record<string, unknown>, RegExp][] = [
    [
      { ...llama, hidden_act: "gelu" },
      /^hidden_act "gelu" is not supported: use one of silu, swish/,
    ],
    [
      { ...llama, rope_scaling: { rope_type: "yarn", factor: 4 } },
      /^rope_scaling\.rope_type "yarn" is not supported: use default, linear or llama3$/,
    ],
    [
      { ...llama, rope_scaling: { rope_type: "linear" } },
      /^rope_scaling\.factor must be a positive number, got undefined$/,
    ],
    [
      { ...llama, partial_rotary_factor: 0.5 },
      /^partial_rotary_factor 0\.5 is not supported/,
    ],
    [
      { ...llama, intermediate_size: undefined },
      /^intermediate_size must be a positive integer, got undefined$/,
    ],
    [
      { ...llama, rms_norm_eps: -1 },
      /^rms_norm_eps must be a positive number, got -1$/,
    ],
    [
      { ...llama, attention_bias: "yes" },
      /^attention_bias must be true or false, got "yes"$/,
    ],
    [{ ...llama, model_type: "gpt2" }, /^model_type "gpt2" is not supported/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parseModelParams(config), (e: Error) => {
      assert.ok(e instanceof ModelConfigError, `${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("ropeInvFreq() with llama3 scaling keeps high frequencies, slows low ones by the factor, blends between", () => {
  const rope = { theta: 500000, scaling: { type: "default" } } as const;
  const plain = ropeInvFreq(rope, 128);
  const scaled = ropeInvFreq({
    theta: 500000,
    scaling: {
      type: "llama3",
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    },
  }, 128);
  let kept = 0, slowed = 0, blended = 0;
  for (let i = 0; i < 64; i++) {
    const wavelen = 2 * Math.PI / plain[i];
    if (wavelen < 8192 / 4) {
      assert.equal(scaled[i], plain[i]);
      kept++;
    } else if (wavelen > 8192) {
      assert.equal(scaled[i], Math.fround(plain[i] / 8));
      slowed++;
    } else {
      assert.ok(scaled[i] < plain[i] && scaled[i] > plain[i] / 8);
      blended++;
    }
  }
  assert.ok(
    kept > 0 && slowed > 0 && blended > 0,
    `${kept} ${slowed} ${blended}`,
  );
});
