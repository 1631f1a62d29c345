import assert from "node:assert/strict";
import { encodeSafetensors, type TensorToWrite } from "./safetensors_write.ts";
import type { Tensor } from "./safetensors.ts";
import { Transformer } from "./transformer.ts";
import {
  randomModel,
  referenceCaches,
  stepBatch,
  TINY_GEMMA2,
} from "./transformer_test_support.ts";
import { weightShapes } from "./weights.ts";
import { parseModelParams } from "./model_params.ts";

const TOKENIZER =
  new URL("./testdata/byte_tokenizer", import.meta.url).pathname;

function tensorsOf(model: Transformer): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const shapes = weightShapes(model.config);
  const w = model.weights;
  const byName: Record<string, Float32Array | undefined> = {
    "model.embed_tokens.weight": w.embed.data,
    "model.norm.weight": w.finalNorm,
  };
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    Object.assign(byName, {
      [`${p}input_layernorm.weight`]: l.inputNorm,
      [`${p}post_attention_layernorm.weight`]: l.postAttnNorm,
      [`${p}pre_feedforward_layernorm.weight`]: l.preMlpNorm,
      [`${p}post_feedforward_layernorm.weight`]: l.postMlpNorm,
      [`${p}self_attn.q_proj.weight`]: l.q.data,
      [`${p}self_attn.k_proj.weight`]: l.k.data,
      [`${p}self_attn.v_proj.weight`]: l.v.data,
      [`${p}self_attn.o_proj.weight`]: l.o.data,
      [`${p}mlp.gate_proj.weight`]: l.gate.data,
      [`${p}mlp.up_proj.weight`]: l.up.data,
      [`${p}mlp.down_proj.weight`]: l.down.data,
    });
  });
  for (const [name, shape] of shapes) {
    out.set(name, {
      dtype: "F32",
      shape: shape.map(([d]) => d),
      data: byName[name]!,
    });
  }
  return out;
}

Deno.test("Transformer names a missing tensor and a misshapen one, with the config fields behind the shape", () => {
  const tensors = tensorsOf(randomModel(TINY_GEMMA2));
  const missing = new Map(tensors);
  missing.delete("model.layers.1.mlp.up_proj.weight");
  assert.throws(
    () =>
      new Transformer({
        config: TINY_GEMMA2,
        tensors: missing,
        source: "ckpt",
      }),
    {
      name: "ModelWeightsError",
      message: 'ckpt: Tensor "model.layers.1.mlp.up_proj.weight" is missing',
    },
  );
  const wrong = new Map(tensors);
  wrong.set("model.layers.0.self_attn.k_proj.weight", {
    dtype: "F32",
    shape: [32, 32],
    data: new Float32Array(1024),
  });
  assert.throws(
    () =>
      new Transformer({ config: TINY_GEMMA2, tensors: wrong, source: "ckpt" }),
    /^ModelWeightsError: ckpt: Tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[32,32\] but config\.json implies \[16,32\] \(num_key_value_heads \* head_dim, hidden_size\)$/,
  );
  const untied = { ...TINY_GEMMA2, tie_word_embeddings: false };
  assert.throws(
    () => new Transformer({ config: untied, tensors }),
    /Tensor "lm_head\.weight" is missing: config\.json says tie_word_embeddings is false/,
  );
});

Deno.test("weightShapes() asks Qwen2 for q/k/v biases and Gemma 3 for q/k norms", () => {
  const base = {
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    hidden_size: 8,
    intermediate_size: 16,
    vocab_size: 10,
  };
  const qwen = [
    ...weightShapes(parseModelParams({ ...base, model_type: "qwen2" })).keys(),
  ];
  assert.ok(qwen.includes("model.layers.0.self_attn.k_proj.bias"));
  assert.ok(!qwen.includes("model.layers.0.self_attn.o_proj.bias"));
  assert.ok(qwen.includes("lm_head.weight"));
  const gemma3 = weightShapes(
    parseModelParams({
      ...base,
      model_type: "gemma3_text",
      head_dim: 4,
      sliding_window: 4,
    }),
  );
  assert.deepEqual(gemma3.get("model.layers.0.self_attn.q_norm.weight"), [[
    4,
    "head_dim",
  ]]);
  assert.ok(!gemma3.has("lm_head.weight"));
});

Deno.test("Transformer.load() reads a BF16 checkpoint, its config and tokenizer from a directory", async () => {
  const model = randomModel({ ...TINY_GEMMA2, vocab_size: 259 });
  const dir = await Deno.makeTempDir();
  try {
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, t] of tensorsOf(model)) {
      tensors[name] = { ...t, dtype: "BF16" };
    }
    tensors["unused.buffer"] = {
      dtype: "F32",
      shape: [1],
      data: new Float32Array(1),
    };
    await Deno.writeFile(
      `${dir}/model.safetensors`,
      encodeSafetensors(tensors),
    );
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...TINY_GEMMA2, vocab_size: 259, eos_token_id: 258 }),
    );
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${TOKENIZER}/${f}`, `${dir}/${f}`);
    }
    const loaded = await Transformer.load(dir);
    assert.deepEqual(loaded.tokenizer!.eosTokenIds, [258]);
    assert.equal(loaded.modelSpec.layers[0].kind, "sliding_window");
    const ids = loaded.tokenizer!.encode("Hi there");
    const run = async (m: Transformer) => {
      const { manager, attention } = referenceCaches(m);
      return await m.forward(
        stepBatch(manager, [{ seq: 0, tokens: ids }]),
        attention,
      );
    };
    const [got, want] = [await run(loaded), await run(model)];
    // BF16 keeps 8 bits of mantissa: the logits move, but not far.
    const diff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
    assert.ok(diff > 0 && diff < 0.5, `bf16 vs f32 logits differ by ${diff}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
