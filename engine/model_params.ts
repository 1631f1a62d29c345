/**
 * The non-attention half of a Hugging Face config.json: what a forward pass
 * needs beyond the per-layer attention specs (those come from
 * core/model_config.ts). Defaults are transformers' own for each
 * architecture; anything this engine cannot run is an error naming the field.
 *
 * @module
 */

import {
  ModelConfigError,
  type ModelSpec,
  parseModelConfig,
} from "../core/model_config.ts";
import { parseRope, type RopeParams } from "./rope_params.ts";

export type { RopeParams, RopeScaling } from "./rope_params.ts";

/** The feed-forward gate's activation: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU). */
export type Activation = "silu" | "gelu_tanh";

/** Everything but attention that a forward pass reads from config.json. */
export interface ModelParams {
  /** config.json `model_type`; picks the architecture's defaults below. */
  readonly modelType: ModelSpec["modelType"];
  /** Decoder layers (num_hidden_layers). */
  readonly numLayers: number;
  /** Width of the residual stream and of each embedding row (hidden_size). */
  readonly hiddenSize: number;
  /** Width of the MLP's gate and up projections (intermediate_size). */
  readonly intermediateSize: number;
  /** Rows of the embedding matrix and width of the logits (vocab_size). */
  readonly vocabSize: number;
  /** Query heads, as layer 0's attention spec has them (every layer agrees). */
  readonly numQHeads: number;
  /** KV heads (GQA when fewer than numQHeads), from layer 0's spec. */
  readonly numKvHeads: number;
  /** Elements per head, from layer 0's spec (head_dim, else hidden_size / heads). */
  readonly headDim: number;
  /** Epsilon inside every RMSNorm's square root (rms_norm_eps). @default 1e-6 */
  readonly rmsNormEps: number;
  /** Gemma's RMSNorm multiplies by (1 + w) with w stored zero-centred; Llama's by w. */
  readonly normAddOne: boolean;
  /** Embeddings are multiplied by this (Gemma: sqrt(hidden_size) rounded to fp32; else 1). */
  readonly embedScale: number;
  /** The MLP gate's activation (hidden_act; Gemma's hidden_activation). */
  readonly activation: Activation;
  /** The output projection is the embedding matrix (no lm_head.weight). */
  readonly tieWordEmbeddings: boolean;
  /** Final logits become c * tanh(x / c) (Gemma 2). */
  readonly finalLogitSoftcap?: number;
  /** Gemma 2/3: norms after attention and the MLP, and a separate pre-MLP norm. */
  readonly postNorms: boolean;
  /** Gemma 3: RMSNorm over each head of q and k before RoPE. */
  readonly qkNorm: boolean;
  /** Biases on q/k/v projections (Qwen2 always; Llama-likes with attention_bias). */
  readonly qkvBias: boolean;
  /** Bias on o_proj (attention_bias, not Qwen2). */
  readonly oBias: boolean;
  /** Biases on gate/up/down (Llama's mlp_bias). */
  readonly mlpBias: boolean;
  /** RoPE of each layer; layers that share settings share one object. */
  readonly rope: readonly RopeParams[];
}

const ACTIVATIONS: Record<string, Activation> = {
  silu: "silu",
  swish: "silu",
  gelu_pytorch_tanh: "gelu_tanh",
  gelu_new: "gelu_tanh",
};

/**
 * Parses the forward-pass fields of a config.json object.
 *
 * @example Usage
 * ```ts
 * import { parseModelParams } from "./model_params.ts";
 * import assert from "node:assert/strict";
 *
 * const p = parseModelParams({
 *   model_type: "qwen2", num_hidden_layers: 2, num_attention_heads: 4,
 *   num_key_value_heads: 2, hidden_size: 64, intermediate_size: 128,
 *   vocab_size: 100, rope_theta: 1e6,
 * });
 * assert.equal(p.qkvBias, true);
 * assert.equal(p.activation, "silu");
 * assert.equal(p.rope[0].theta, 1e6);
 * ```
 */
export function parseModelParams(config: unknown): ModelParams {
  const spec = parseModelConfig(config); // validates model_type and heads
  const c = config as Record<string, unknown>;
  const modelType = spec.modelType;
  const gemma = modelType === "gemma2" || modelType === "gemma3_text";
  const int = (field: string): number => {
    const v = c[field];
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new ModelConfigError(
        `${field} must be a positive integer, got ${JSON.stringify(v)}`,
      );
    }
    return v as number;
  };
  const num = (field: string, fallback: number): number => {
    const v = c[field] ?? fallback;
    if (typeof v !== "number" || !(v > 0) || !isFinite(v)) {
      throw new ModelConfigError(
        `${field} must be a positive number, got ${JSON.stringify(c[field])}`,
      );
    }
    return v;
  };
  const hiddenSize = int("hidden_size");
  const actField = gemma && c.hidden_activation != null
    ? "hidden_activation"
    : "hidden_act";
  const actName = c[actField] ?? (gemma ? "gelu_pytorch_tanh" : "silu");
  const activation = ACTIVATIONS[String(actName)];
  if (activation === undefined) {
    throw new ModelConfigError(
      `${actField} ${JSON.stringify(actName)} is not supported: use one of ${
        Object.keys(ACTIVATIONS).join(", ")
      }`,
    );
  }
  const bias = (field: string) => {
    const v = c[field] ?? false;
    if (typeof v !== "boolean") {
      throw new ModelConfigError(
        `${field} must be true or false, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  const attentionBias = bias("attention_bias");
  const softcap = c.final_logit_softcapping ??
    (modelType === "gemma2" ? 30 : null); // Gemma2Config's default
  const first = spec.layers[0];
  return {
    modelType,
    numLayers: spec.layers.length,
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    vocabSize: int("vocab_size"),
    numQHeads: first.numQHeads,
    numKvHeads: first.numKvHeads,
    headDim: first.headDim,
    rmsNormEps: num("rms_norm_eps", 1e-6),
    normAddOne: gemma,
    embedScale: gemma ? Math.fround(Math.sqrt(hiddenSize)) : 1,
    activation,
    tieWordEmbeddings: bias("tie_word_embeddings") ||
      (c.tie_word_embeddings === undefined && gemma),
    ...(softcap != null
      ? { finalLogitSoftcap: num("final_logit_softcapping", 30) }
      : {}),
    postNorms: gemma,
    qkNorm: modelType === "gemma3_text",
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: modelType !== "qwen2" && attentionBias,
    mlpBias: bias("mlp_bias"),
    rope: parseRope(c, spec),
  };
}
