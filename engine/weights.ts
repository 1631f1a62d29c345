/**
 * From a checkpoint's named tensors to the weights of a decoder, checked
 * against config.json: every tensor the architecture needs, by its
 * transformers name, with the shape the config implies.
 *
 * @module
 */

import type { Matrix } from "./matmul.ts";
import type { ModelParams } from "./model_params.ts";
import type { Tensor } from "./safetensors.ts";

/** One decoder layer's weights. Norm weights are as stored (Gemma's zero-centred). */
export interface LayerWeights {
  /** The norm before attention (input_layernorm). shape [hiddenSize], float32 */
  readonly inputNorm: Float32Array;
  /** q_proj. shape [numQHeads * headDim, hiddenSize] */
  readonly q: Matrix;
  /** k_proj. shape [numKvHeads * headDim, hiddenSize] */
  readonly k: Matrix;
  /** v_proj. shape [numKvHeads * headDim, hiddenSize] */
  readonly v: Matrix;
  /** o_proj, back to the residual stream. shape [hiddenSize, numQHeads * headDim] */
  readonly o: Matrix;
  /** Present when {@linkcode ModelParams.qkvBias}. shape [numQHeads * headDim], float32 */
  readonly qBias?: Float32Array;
  /** Present when {@linkcode ModelParams.qkvBias}. shape [numKvHeads * headDim], float32 */
  readonly kBias?: Float32Array;
  /** Present when {@linkcode ModelParams.qkvBias}. shape [numKvHeads * headDim], float32 */
  readonly vBias?: Float32Array;
  /** Present when {@linkcode ModelParams.oBias}. shape [hiddenSize], float32 */
  readonly oBias?: Float32Array;
  /** Gemma 3's per-head q/k norms. shape [headDim], float32 */
  readonly qNorm?: Float32Array;
  /** Gemma 3's per-head k norm, like qNorm. shape [headDim], float32 */
  readonly kNorm?: Float32Array;
  /** Gemma's norm of the attention output, before the residual add. */
  readonly postAttnNorm?: Float32Array;
  /** The norm before the MLP (Llama calls it post_attention_layernorm). */
  readonly preMlpNorm: Float32Array;
  /** Gemma's norm of the MLP output, before the residual add. */
  readonly postMlpNorm?: Float32Array;
  /** gate_proj, the activated half of the gated MLP. shape [intermediateSize, hiddenSize] */
  readonly gate: Matrix;
  /** up_proj, multiplied by the activated gate. shape [intermediateSize, hiddenSize] */
  readonly up: Matrix;
  /** down_proj, back to the residual stream. shape [hiddenSize, intermediateSize] */
  readonly down: Matrix;
  /** Present when {@linkcode ModelParams.mlpBias}. shape [intermediateSize], float32 */
  readonly gateBias?: Float32Array;
  /** Present when {@linkcode ModelParams.mlpBias}. shape [intermediateSize], float32 */
  readonly upBias?: Float32Array;
  /** Present when {@linkcode ModelParams.mlpBias}. shape [hiddenSize], float32 */
  readonly downBias?: Float32Array;
}

/** A whole decoder's weights. */
export interface ModelWeights {
  /** shape [vocabSize, hiddenSize] */
  readonly embed: Matrix;
  /** One entry per decoder layer, in model order. */
  readonly layers: readonly LayerWeights[];
  /** shape [hiddenSize], float32 */
  readonly finalNorm: Float32Array;
  /** The output projection: the embedding itself when tied. shape [vocabSize, hiddenSize] */
  readonly lmHead: Matrix;
}

/** A checkpoint that lacks a tensor or holds one of the wrong shape. */
export class ModelWeightsError extends Error {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelWeightsError";
  }
}

type Shape = readonly [number, string][];

/**
 * Every tensor name this config needs, with its expected shape and, for
 * error messages, which config fields give each dimension.
 */
export function weightShapes(p: ModelParams): Map<string, Shape> {
  const h: [number, string] = [p.hiddenSize, "hidden_size"];
  const f: [number, string] = [p.intermediateSize, "intermediate_size"];
  const qDim: [number, string] = [
    p.numQHeads * p.headDim,
    "num_attention_heads * head_dim",
  ];
  const kvDim: [number, string] = [
    p.numKvHeads * p.headDim,
    "num_key_value_heads * head_dim",
  ];
  const hd: [number, string] = [p.headDim, "head_dim"];
  const shapes = new Map<string, Shape>();
  shapes.set("model.embed_tokens.weight", [[p.vocabSize, "vocab_size"], h]);
  shapes.set("model.norm.weight", [h]);
  if (!p.tieWordEmbeddings) {
    shapes.set("lm_head.weight", [[p.vocabSize, "vocab_size"], h]);
  }
  for (let i = 0; i < p.numLayers; i++) {
    const at = (name: string, shape: Shape, when = true) => {
      if (when) shapes.set(`model.layers.${i}.${name}`, shape);
    };
    at("input_layernorm.weight", [h]);
    at("post_attention_layernorm.weight", [h]);
    at("pre_feedforward_layernorm.weight", [h], p.postNorms);
    at("post_feedforward_layernorm.weight", [h], p.postNorms);
    for (const [proj, out] of [["q", qDim], ["k", kvDim], ["v", kvDim]]) {
      at(`self_attn.${proj}_proj.weight`, [out as [number, string], h]);
      at(`self_attn.${proj}_proj.bias`, [out as [number, string]], p.qkvBias);
    }
    at("self_attn.o_proj.weight", [h, qDim]);
    at("self_attn.o_proj.bias", [h], p.oBias);
    at("self_attn.q_norm.weight", [hd], p.qkNorm);
    at("self_attn.k_norm.weight", [hd], p.qkNorm);
    for (const [proj, shape] of [["gate", [f, h]], ["up", [f, h]]] as const) {
      at(`mlp.${proj}_proj.weight`, shape);
      at(`mlp.${proj}_proj.bias`, [f], p.mlpBias);
    }
    at("mlp.down_proj.weight", [h, f]);
    at("mlp.down_proj.bias", [h], p.mlpBias);
  }
  return shapes;
}

/**
 * Checks the tensors against the config and assembles the weights.
 *
 * @param source Where the tensors came from, for error messages.
 * @throws {ModelWeightsError} Naming the first missing or misshapen tensor.
 */
export function buildWeights(
  tensors: ReadonlyMap<string, Tensor>,
  params: ModelParams,
  source: string,
): ModelWeights {
  const shapes = weightShapes(params);
  for (const [name, shape] of shapes) {
    const t = tensors.get(name);
    if (t === undefined) {
      const hint = name === "lm_head.weight"
        ? ": config.json says tie_word_embeddings is false"
        : "";
      throw new ModelWeightsError(
        `${source}: Tensor "${name}" is missing${hint}`,
      );
    }
    const want = shape.map(([n]) => n);
    if (
      t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])
    ) {
      throw new ModelWeightsError(
        `${source}: Tensor "${name}" has shape [${t.shape}] but config.json implies [${want}] (${
          shape.map(([, s]) => s).join(", ")
        })`,
      );
    }
  }
  // Only what the config asks for: a stray bias the config disables is ignored,
  // as transformers ignores it.
  const vec = (name: string) =>
    shapes.has(name) ? tensors.get(name)!.data : undefined;
  const mat = (name: string): Matrix => {
    const t = tensors.get(name)!;
    return { data: t.data, rows: t.shape[0], cols: t.shape[1] };
  };
  const layers = Array.from({ length: params.numLayers }, (_, i) => {
    const p = `model.layers.${i}.`;
    return {
      inputNorm: vec(`${p}input_layernorm.weight`)!,
      q: mat(`${p}self_attn.q_proj.weight`),
      k: mat(`${p}self_attn.k_proj.weight`),
      v: mat(`${p}self_attn.v_proj.weight`),
      o: mat(`${p}self_attn.o_proj.weight`),
      qBias: vec(`${p}self_attn.q_proj.bias`),
      kBias: vec(`${p}self_attn.k_proj.bias`),
      vBias: vec(`${p}self_attn.v_proj.bias`),
      oBias: vec(`${p}self_attn.o_proj.bias`),
      qNorm: vec(`${p}self_attn.q_norm.weight`),
      kNorm: vec(`${p}self_attn.k_norm.weight`),
      // Gemma's post_attention_layernorm follows attention; Llama's precedes the MLP.
      postAttnNorm: params.postNorms
        ? vec(`${p}post_attention_layernorm.weight`)
        : undefined,
      preMlpNorm: vec(
        params.postNorms
          ? `${p}pre_feedforward_layernorm.weight`
          : `${p}post_attention_layernorm.weight`,
      )!,
      postMlpNorm: vec(`${p}post_feedforward_layernorm.weight`),
      gate: mat(`${p}mlp.gate_proj.weight`),
      up: mat(`${p}mlp.up_proj.weight`),
      down: mat(`${p}mlp.down_proj.weight`),
      gateBias: vec(`${p}mlp.gate_proj.bias`),
      upBias: vec(`${p}mlp.up_proj.bias`),
      downBias: vec(`${p}mlp.down_proj.bias`),
    };
  });
  const embed = mat("model.embed_tokens.weight");
  return {
    embed,
    layers,
    finalNorm: vec("model.norm.weight")!,
    lmHead: params.tieWordEmbeddings ? embed : mat("lm_head.weight"),
  };
}
