/**
 * Rotary embedding settings from config.json: the base, and the frequency
 * scaling (none, linear, or Llama 3's smooth long-context scaling), per
 * layer because Gemma 3 uses another base on its sliding-window layers.
 *
 * @module
 */

import { ModelConfigError, type ModelSpec } from "../core/model_config.ts";

/** How inverse frequencies are rescaled (transformers' rope_type). */
export type RopeScaling =
  | { readonly type: "default" }
  | { readonly type: "linear"; readonly factor: number }
  | {
    readonly type: "llama3";
    readonly factor: number;
    readonly lowFreqFactor: number;
    readonly highFreqFactor: number;
    readonly originalMaxPositions: number;
  };

/** One layer's RoPE. */
export interface RopeParams {
  /** The base (rope_theta). */
  readonly theta: number;
  /** Rescaling of the inverse frequencies for long contexts; `default` is none. */
  readonly scaling: RopeScaling;
}

type Json = Record<string, unknown>;

/**
 * Per-layer RoPE from a config object. Reads rope_theta and rope_scaling
 * (Gemma 3: rope_local_base_freq on sliding layers), or transformers 5's
 * rope_parameters, flat or keyed by layer type.
 */
export function parseRope(c: Json, spec: ModelSpec): RopeParams[] {
  const partial = c.partial_rotary_factor;
  if (partial !== undefined && partial !== 1) {
    throw new ModelConfigError(
      `partial_rotary_factor ${
        JSON.stringify(partial)
      } is not supported: only full-width RoPE (1.0) is`,
    );
  }
  const gemma3 = spec.modelType === "gemma3_text";
  let full: RopeParams, local: RopeParams;
  const params = c.rope_parameters as Json | undefined;
  if (params != null && typeof params === "object") {
    const nested = "full_attention" in params || "sliding_attention" in params;
    const get = (key: string) =>
      (nested ? params[key] : params) as Json | undefined;
    full = fromParams(get("full_attention"), "rope_parameters");
    local = fromParams(get("sliding_attention"), "rope_parameters");
  } else {
    const theta = positive(c.rope_theta ?? (gemma3 ? 1e6 : 1e4), "rope_theta");
    full = { theta, scaling: scaling(c.rope_scaling, "rope_scaling") };
    local = gemma3
      ? {
        theta: positive(c.rope_local_base_freq ?? 1e4, "rope_local_base_freq"),
        scaling: { type: "default" },
      }
      : full;
  }
  return spec.layers.map((l) => l.kind === "sliding_window" ? local : full);
}

function fromParams(p: Json | undefined, field: string): RopeParams {
  if (p == null) {
    throw new ModelConfigError(
      `${field} has no entry for a layer type the model uses: add full_attention and sliding_attention entries`,
    );
  }
  return {
    theta: positive(p.rope_theta, `${field}.rope_theta`),
    scaling: scaling(p, field),
  };
}

function scaling(s: unknown, field: string): RopeScaling {
  if (s == null) return { type: "default" };
  const o = s as Json;
  const type = o.rope_type ?? o.type ?? "default";
  const f = (key: string) => positive(o[key], `${field}.${key}`);
  switch (type) {
    case "default":
      return { type: "default" };
    case "linear":
      return { type: "linear", factor: f("factor") };
    case "llama3":
      return {
        type: "llama3",
        factor: f("factor"),
        lowFreqFactor: f("low_freq_factor"),
        highFreqFactor: f("high_freq_factor"),
        originalMaxPositions: f("original_max_position_embeddings"),
      };
    default:
      throw new ModelConfigError(
        `${field}.rope_type ${
          JSON.stringify(type)
        } is not supported: use default, linear or llama3`,
      );
  }
}

function positive(v: unknown, field: string): number {
  if (typeof v !== "number" || !(v > 0) || !isFinite(v)) {
    throw new ModelConfigError(
      `${field} must be a positive number, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/**
 * The inverse frequencies theta^(-2i/d), i = 0..d/2-1, rescaled, rounded to
 * float32 as transformers computes them (models are trained with those).
 *
 * @example Usage
 * ```ts
 * import { ropeInvFreq } from "./rope_params.ts";
 * import assert from "node:assert/strict";
 *
 * const inv = ropeInvFreq({ theta: 10000, scaling: { type: "linear", factor: 2 } }, 4);
 * assert.deepEqual([...inv], [0.5, Math.fround(0.01 / 2)]);
 * ```
 *
 * @returns shape [headDim / 2], float32
 */
export function ropeInvFreq(rope: RopeParams, headDim: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    inv[i] = 1 / Math.fround(rope.theta ** Math.fround((2 * i) / headDim));
  }
  const s = rope.scaling;
  if (s.type === "linear") {
    for (let i = 0; i < half; i++) inv[i] /= s.factor;
  } else if (s.type === "llama3") {
    // transformers' _compute_llama3_parameters: long wavelengths are slowed
    // by `factor`, short ones kept, the band between blended smoothly.
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] /= s.factor;
      else if (wavelen >= highWavelen) {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * inv[i] / s.factor + smooth * inv[i];
      }
    }
  }
  return inv;
}
