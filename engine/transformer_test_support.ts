/**
 * Helpers for the engine's tests: per-layer reference caches, forward
 * batches built the way the scheduler builds them (KvCacheManager, then
 * planBatch), and small models with seeded random weights.
 *
 * @module
 */

import type { AttentionBackend } from "../core/backend.ts";
import { planBatch } from "../core/batch.ts";
import type { KvCacheDtype } from "../core/dtype.ts";
import { KvCacheManager, type SeqId } from "../core/kv_cache_manager.ts";
import { mulberry32 } from "../core/prng.ts";
import { DEFAULT_SCALES } from "../core/scales.ts";
import { createReferenceBackend } from "../backends/reference/mod.ts";
import type { ForwardBatch, LayerAttention } from "./forward_batch.ts";
import { parseModelParams } from "./model_params.ts";
import type { Tensor } from "./safetensors.ts";
import { Transformer } from "./transformer.ts";
import { weightShapes } from "./weights.ts";

/** A KV cache manager plus one reference-backend cache per layer. */
export interface TestCaches {
  readonly manager: KvCacheManager;
  readonly attention: LayerAttention[];
}

/** Reference-backend caches for every layer of a model. */
export function referenceCaches(
  model: Transformer,
  options: { numBlocks?: number; blockSize?: number; kvDtype?: KvCacheDtype } =
    {},
): TestCaches {
  const { numBlocks = 64, blockSize = 16, kvDtype = "fp32" } = options;
  const backend = createReferenceBackend();
  const attention = model.modelSpec.layers.map((spec) => ({
    backend,
    cache: backend.createCache({ ...spec, kvDtype, blockSize }, {
      numBlocks,
      scales: DEFAULT_SCALES,
    }),
  }));
  return {
    manager: new KvCacheManager({ numBlocks, blockSize }),
    attention,
  };
}

/** One cache per layer of a model, all served by `backend` (any target). */
export async function backendCaches(
  model: Transformer,
  backend: AttentionBackend,
  options: { numBlocks?: number; blockSize?: number; kvDtype?: KvCacheDtype } =
    {},
): Promise<TestCaches> {
  const { numBlocks = 64, blockSize = 16, kvDtype = "fp32" } = options;
  const attention = await Promise.all(
    model.modelSpec.layers.map(async (spec) => ({
      backend,
      cache: await backend.createCache({ ...spec, kvDtype, blockSize }, {
        numBlocks,
        scales: DEFAULT_SCALES,
      }),
    })),
  );
  return {
    manager: new KvCacheManager({ numBlocks, blockSize }),
    attention,
  };
}

/**
 * One step's batch: appends each sequence's new tokens to the cache manager
 * (adding the sequence on first use) and plans the page tables. Logits are
 * asked for at every row when `allRows`, else at each sequence's last token.
 */
export function stepBatch(
  manager: KvCacheManager,
  steps: readonly { seq: SeqId; tokens: readonly number[] }[],
  options: { allRows?: boolean } = {},
): ForwardBatch {
  const tokens: number[] = [], positions: number[] = [], slots: number[] = [];
  const queryStartLoc = [0], seqLens: number[] = [], lastRows: number[] = [];
  for (const { seq, tokens: ids } of steps) {
    if (!manager.hasSequence(seq)) manager.addSequence(seq);
    const start = manager.numTokens(seq);
    slots.push(...manager.append(seq, ids.length).slots);
    ids.forEach((id, i) => {
      tokens.push(id);
      positions.push(start + i);
    });
    queryStartLoc.push(tokens.length);
    seqLens.push(start + ids.length);
    lastRows.push(tokens.length - 1);
  }
  const { blockTables, width } = manager.buildBlockTables(
    steps.map((s) => s.seq),
  );
  return {
    tokens: Int32Array.from(tokens),
    positions: Int32Array.from(positions),
    slotMapping: Int32Array.from(slots),
    plan: planBatch({
      queryStartLoc: Int32Array.from(queryStartLoc),
      seqLens: Int32Array.from(seqLens),
      blockTables,
      maxBlocksPerSeq: width,
      blockSize: manager.blockSize,
    }),
    logitRows: options.allRows
      ? Int32Array.from(tokens, (_, i) => i)
      : Int32Array.from(lastRows),
  };
}

/** A Gemma-2-style config as tools/train_tiny_model.py writes it, shrunk. */
export const TINY_GEMMA2 = {
  model_type: "gemma2",
  vocab_size: 37,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 8,
  sliding_window: 4,
  query_pre_attn_scalar: 8,
  attn_logit_softcapping: 50,
  final_logit_softcapping: 30,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  hidden_activation: "gelu_pytorch_tanh",
  torch_dtype: "float32",
} as const;

/** A model with seeded random weights (N(0, ~0.3)-ish) for any supported config. */
export function randomModel(
  config: Record<string, unknown>,
  seed = 1,
): Transformer {
  const rand = mulberry32(seed);
  const tensors = new Map<string, Tensor>();
  for (const [name, shape] of weightShapes(parseModelParams(config))) {
    const dims = shape.map(([d]) => d);
    const data = new Float32Array(dims.reduce((a, d) => a * d, 1));
    for (let i = 0; i < data.length; i++) {
      data[i] = (rand() + rand() + rand() - 1.5) * 0.6;
    }
    tensors.set(name, { dtype: "F32", shape: dims, data });
  }
  return new Transformer({ config, tensors });
}

/** max |a - b| / max |b| over each row, the largest over all rows. */
export function maxRowRelativeError(
  actual: Float32Array,
  expected: ArrayLike<number>,
  rowSize: number,
): number {
  let worst = 0;
  for (let r = 0; r < expected.length; r += rowSize) {
    let diff = 0, scale = 0;
    for (let i = r; i < r + rowSize; i++) {
      diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
      scale = Math.max(scale, Math.abs(expected[i]));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}
