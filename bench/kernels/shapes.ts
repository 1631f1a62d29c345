/**
 * The attention shapes the kernel benchmark measures, the layer each one
 * becomes for a KV dtype, and what one attention call must read and compute
 * (the denominators of its GB/s and GFLOP/s).
 *
 * @module
 */

import type { KvCacheDtype } from "../../core/dtype.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";

/** A layer shape, named after the model family it imitates. */
export interface KernelShape {
  readonly name: string;
  /** What it imitates, for the results file. */
  readonly describe: string;
  readonly numQHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Logit soft-cap (Gemma 2 uses 50), or undefined. */
  readonly softCap?: number;
}

/** Every shape, by `--shape` name. */
export const SHAPES: Readonly<Record<string, KernelShape>> = {
  llama: {
    name: "llama",
    describe: "Llama-3.1-8B: 32 q heads / 8 kv heads, head_dim 128",
    numQHeads: 32,
    numKvHeads: 8,
    headDim: 128,
  },
  gemma: {
    name: "gemma",
    describe:
      "Gemma-2-9B: 16 q heads / 8 kv heads, head_dim 256, logit soft-cap 50 (full-attention layer)",
    numQHeads: 16,
    numKvHeads: 8,
    headDim: 256,
    softCap: 50,
  },
};

/** Tokens per cache block: every built-in backend accepts it. */
export const BLOCK_SIZE = 16;

/** `decode`: one new token per sequence; `prefill`: a chunk of new tokens. */
export type KernelMode = "decode" | "prefill";

/**
 * The layer a shape becomes with a KV dtype (int8: per-token-head scales,
 * which need no calibration).
 *
 * @example Usage
 * ```ts
 * import { layerFor, SHAPES } from "./shapes.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = layerFor(SHAPES.llama, "int8");
 * assert.equal(layer.int8Scheme, "per_token_head");
 * assert.equal(layer.scale, 128 ** -0.5);
 * ```
 */
export function layerFor(
  shape: KernelShape,
  kvDtype: KvCacheDtype,
): LayerConfig {
  return {
    index: 0,
    kind: "full",
    numQHeads: shape.numQHeads,
    numKvHeads: shape.numKvHeads,
    headDim: shape.headDim,
    scale: shape.headDim ** -0.5,
    ...(shape.softCap !== undefined ? { softCap: shape.softCap } : {}),
    kvDtype,
    ...(kvDtype === "int8" ? { int8Scheme: "per_token_head" as const } : {}),
    blockSize: BLOCK_SIZE,
  };
}

/**
 * KV bytes one attention call reads at the least: every cached token's K
 * and V rows once per sequence, in the stored dtype, plus the per-token
 * scales of int8 per_token_head (one float32 per token, kv head and side).
 *
 * @example Usage
 * ```ts
 * import { kvBytesRead, layerFor, SHAPES } from "./shapes.ts";
 * import assert from "node:assert/strict";
 *
 * // 1024 tokens x 8 kv heads x 128 x (K and V) x 2 bytes
 * assert.equal(kvBytesRead(layerFor(SHAPES.llama, "bf16"), 1024, 1), 4 * 2 ** 20);
 * assert.equal(kvBytesRead(layerFor(SHAPES.llama, "int8"), 1024, 1), 2 * 2 ** 20 + 65536);
 * ```
 */
export function kvBytesRead(
  layer: LayerConfig,
  context: number,
  batch: number,
): number {
  const perToken = layer.numKvHeads *
    (layer.headDim * dtypeInfo(layer.kvDtype).bytes +
      (layer.kvDtype === "int8" && layer.int8Scheme === "per_token_head"
        ? 4
        : 0));
  return 2 * perToken * context * batch;
}

/**
 * Floating-point operations of one call: QK^T and PV, 2 flops per
 * multiply-add each, over the keys each query token sees (causal).
 *
 * @param queryLen New tokens per sequence (1 for decode), the last of its context.
 */
export function attentionFlops(
  layer: LayerConfig,
  context: number,
  batch: number,
  queryLen: number,
): number {
  // Query i of the chunk (0-based) sees context - queryLen + i + 1 keys.
  const keys = queryLen * (context - queryLen) + queryLen * (queryLen + 1) / 2;
  return 4 * layer.numQHeads * layer.headDim * keys * batch;
}
