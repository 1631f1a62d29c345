/**
 * Attention layer specs from a Hugging Face config.json, for the
 * architectures whose layer types differ in ways a backend cares about
 * (head_dim, GQA, sliding windows, soft-caps, query scaling).
 *
 * @module
 */

import type { ModelDtype } from "./dtype.ts";
import type { LayerKind, LayerSpec } from "./layer.ts";

/** Architectures (config.json `model_type`) this parser understands. */
export const MODEL_TYPES = [
  "llama",
  "mistral",
  "qwen2",
  "gemma2",
  "gemma3_text",
] as const;

/** The attention-relevant view of a model. */
export interface ModelSpec {
  /** For reports and messages: the caller's name, else `_name_or_path`, else the model type. */
  readonly name: string;
  /** config.json `model_type`; decides how layer kinds and scales are read. */
  readonly modelType: typeof MODEL_TYPES[number];
  /** Weight and activation dtype (`torch_dtype`, fp32 when absent); `auto` caches use it. */
  readonly dtype: ModelDtype;
  /** One spec per decoder layer, in model order (`layers[i].index === i`). */
  readonly layers: readonly LayerSpec[];
}

/** A config.json this parser cannot use; the message names the field. */
export class ModelConfigError extends TypeError {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelConfigError";
  }
}

const DTYPES: Record<string, ModelDtype> = {
  float32: "fp32",
  float16: "fp16",
  bfloat16: "bf16",
};

/**
 * Parses a config.json object into per-layer attention specs.
 *
 * @example Usage
 * ```ts
 * import { parseModelConfig } from "./model_config.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = parseModelConfig({
 *   model_type: "gemma2", num_hidden_layers: 2, num_attention_heads: 8,
 *   num_key_value_heads: 4, hidden_size: 2048, head_dim: 256,
 *   sliding_window: 4096, attn_logit_softcapping: 50,
 *   query_pre_attn_scalar: 256, torch_dtype: "bfloat16",
 * });
 * assert.deepEqual(spec.layers.map((l) => l.kind), ["sliding_window", "full"]);
 * assert.equal(spec.layers[0].softCap, 50);
 * ```
 */
export function parseModelConfig(
  config: unknown,
  options: { name?: string } = {},
): ModelSpec {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new ModelConfigError("config.json must hold a JSON object");
  }
  const c = config as Record<string, unknown>;
  const modelType = c.model_type;
  if (!(MODEL_TYPES as readonly unknown[]).includes(modelType)) {
    throw new ModelConfigError(
      `model_type ${JSON.stringify(modelType)} is not supported: use one of ${
        MODEL_TYPES.join(", ")
      }`,
    );
  }
  const int = (field: string, fallback?: number): number => {
    const v = c[field] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new ModelConfigError(
        `${field} must be a positive integer, got ${JSON.stringify(c[field])}`,
      );
    }
    return v as number;
  };
  const numLayers = int("num_hidden_layers");
  const numQHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numQHeads);
  if (numQHeads % numKvHeads !== 0) {
    throw new ModelConfigError(
      `num_attention_heads (${numQHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  const headDim = c.head_dim != null
    ? int("head_dim")
    : int("hidden_size") / numQHeads;
  if (!Number.isInteger(headDim)) {
    throw new ModelConfigError(
      `hidden_size / num_attention_heads = ${headDim} is not an integer: set head_dim`,
    );
  }
  const rawDtype = (c.torch_dtype ?? c.dtype ?? "float32") as string;
  const dtype = DTYPES[rawDtype];
  if (dtype === undefined) {
    throw new ModelConfigError(
      `torch_dtype ${
        JSON.stringify(rawDtype)
      } is not supported: use float32, float16 or bfloat16`,
    );
  }
  const kinds = layerKinds(c, modelType as ModelSpec["modelType"], numLayers);
  const window = kinds.includes("sliding_window")
    ? int("sliding_window")
    : undefined;
  const softCap = modelType === "gemma2" && c.attn_logit_softcapping != null
    ? Number(c.attn_logit_softcapping)
    : undefined;
  const scale = (modelType === "gemma2" || modelType === "gemma3_text") &&
      c.query_pre_attn_scalar != null
    ? Number(c.query_pre_attn_scalar) ** -0.5
    : headDim ** -0.5;
  const layers = kinds.map((kind, index): LayerSpec => ({
    index,
    kind,
    numQHeads,
    numKvHeads,
    headDim,
    scale,
    ...(kind === "sliding_window" ? { slidingWindow: window } : {}),
    ...(softCap !== undefined ? { softCap } : {}),
  }));
  return {
    name: options.name ?? String(c._name_or_path ?? modelType),
    modelType: modelType as ModelSpec["modelType"],
    dtype,
    layers,
  };
}

function layerKinds(
  c: Record<string, unknown>,
  modelType: ModelSpec["modelType"],
  numLayers: number,
): LayerKind[] {
  if (c.layer_types !== undefined) {
    const types = c.layer_types;
    if (!Array.isArray(types) || types.length !== numLayers) {
      throw new ModelConfigError(
        `layer_types must list num_hidden_layers = ${numLayers} entries, got ${
          Array.isArray(types) ? types.length : typeof types
        }`,
      );
    }
    return types.map((t, i) => {
      if (t === "full_attention") return "full";
      if (t === "sliding_attention") return "sliding_window";
      throw new ModelConfigError(
        `layer_types[${i}] is ${
          JSON.stringify(t)
        }: use "full_attention" or "sliding_attention"`,
      );
    });
  }
  const all = (kind: LayerKind) => Array<LayerKind>(numLayers).fill(kind);
  switch (modelType) {
    case "gemma2":
      // Gemma 2 alternates, starting with a sliding-window layer
      // (transformers: is_sliding = not bool(layer_idx % 2)).
      return all("full").map((_, i) => i % 2 === 0 ? "sliding_window" : "full");
    case "gemma3_text": {
      // Gemma 3 without layer_types: every sliding_window_pattern-th layer is full.
      const pattern = Number(c.sliding_window_pattern ?? 6);
      return all("full").map((_, i) =>
        (i + 1) % pattern === 0 ? "full" : "sliding_window"
      );
    }
    case "mistral":
      return all(c.sliding_window != null ? "sliding_window" : "full");
    case "qwen2": {
      // Qwen2 windows only the layers from max_window_layers on, and only
      // when use_sliding_window is set.
      if (c.use_sliding_window !== true) return all("full");
      const from = Number(c.max_window_layers ?? numLayers);
      return all("full").map((_, i) => i >= from ? "sliding_window" : "full");
    }
    default:
      return all("full");
  }
}

/**
 * Reads and parses a config.json file (or a model directory holding one).
 *
 * @example Usage
 * ```ts
 * import { loadModelConfig } from "./model_config.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = await loadModelConfig(new URL("../configs/llama-3.1-8b.json", import.meta.url).pathname);
 * assert.equal(spec.layers.length, 32);
 * ```
 */
export async function loadModelConfig(path: string): Promise<ModelSpec> {
  let file = path;
  try {
    if ((await Deno.stat(path)).isDirectory) file = `${path}/config.json`;
  } catch (cause) {
    throw new ModelConfigError(`Cannot read model config ${path}: ${cause}`, {
      cause,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(file));
  } catch (cause) {
    throw new ModelConfigError(
      `Cannot read model config ${file}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const base = file.split("/").at(-1)!.replace(/\.json$/, "");
  return parseModelConfig(json, {
    name: base === "config" ? file.split("/").at(-2) : base,
  });
}
