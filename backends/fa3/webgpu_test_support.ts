/**
 * Test scaffolding for the fa3 WebGPU target: the shared harness's device
 * check (webgpu/test_support.ts), fa3's default layer, and a decode
 * scenario with estimated scales that writes K/V through shuffled blocks
 * over a poisoned cache, attends into a NaN-filled output, and runs the
 * fp64 oracle on the cache as read back. Nothing here compares with
 * another backend.
 *
 * @module
 */

import { planBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { estimateScales, type LayerKvScales } from "../../core/scales.ts";
import {
  layerOf as sharedLayerOf,
  maxAbsError,
  oracleOnReadback,
  poisonCache,
  shuffledBlockIds,
} from "../../webgpu/test_support.ts";
import type { Fa3WebGpuBackend } from "./webgpu_backend.ts";

export { named, SKIP_REASON } from "../../webgpu/test_support.ts";

/**
 * A layer with every field a test does not care about filled in: fa3's
 * usual shape, 8 query heads over 2 KV heads, head dim 128, fp8_e4m3.
 */
export function layerOf(overrides: Partial<LayerConfig>): LayerConfig {
  return sharedLayerOf({
    numQHeads: 8,
    headDim: 128,
    kvDtype: "fp8_e4m3",
    ...overrides,
  });
}

/** One decode scenario's data and answers. */
export interface DecodeRun {
  /** shape [queryLen, numQHeads, headDim], float32 */
  readonly query: Float32Array;
  /** shape [seqLen, numKvHeads, headDim], float32, as written */
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly scales: LayerKvScales;
  /** The backend's output, same shape as query. */
  readonly out: Float32Array;
  /** The fp64 oracle on the cache as read back (kernel error only). */
  readonly expected: Float64Array;
  /** max |out - expected| (Infinity if out has NaN). */
  readonly maxAbsError: number;
}

/** Options for {@linkcode runDecode}. */
export interface DecodeOptions {
  readonly seqLen: number;
  /** @default 1 */
  readonly seed?: number;
  /** Queries are uniform in [-gain, gain]; smaller is flatter. @default 3 */
  readonly queryGain?: number;
  /** Asymmetric data and a zero point (int8 per tensor). @default false */
  readonly zeroPoint?: boolean;
  /** Query tokens: the sequence's last ones (> 1: a chunked prefill). @default 1 */
  readonly queryLen?: number;
}

/** One sequence of `seqLen` keys in shuffled blocks, its last `queryLen` tokens attending. */
export async function runDecode(
  backend: Fa3WebGpuBackend,
  config: LayerConfig,
  options: DecodeOptions,
): Promise<DecodeRun> {
  const { seqLen } = options;
  const rand = mulberry32(options.seed ?? 1);
  const { blockSize, numKvHeads, numQHeads, headDim } = config;
  const row = numKvHeads * headDim;
  const [lo, hi] = options.zeroPoint ? [-0.5, 1.5] : [-1, 1];
  const uniform = (n: number, a: number, b: number) =>
    Float32Array.from({ length: n }, () => a + (b - a) * rand());
  const keys = uniform(seqLen * row, lo, hi);
  const values = uniform(seqLen * row, lo, hi);
  const gain = options.queryGain ?? 3;
  const queryLen = options.queryLen ?? 1;
  const query = uniform(queryLen * numQHeads * headDim, -gain, gain);
  const scales = estimateScales(keys, values, config.kvDtype, {
    zeroPoint: options.zeroPoint ?? false,
  });
  const need = Math.ceil(seqLen / blockSize);
  const numBlocks = need + 2; // spare blocks stay poisoned and unowned
  const ids = shuffledBlockIds(rand, numBlocks);
  const cache = await backend.createCache(config, { numBlocks, scales });
  try {
    await poisonCache(backend, cache);
    const tables = Int32Array.from(ids.slice(0, need));
    const slots = Int32Array.from(
      { length: seqLen },
      (_, j) => tables[Math.floor(j / blockSize)] * blockSize + j % blockSize,
    );
    backend.write(cache, { keys, values, slotMapping: slots });
    const batch = planBatch({
      queryStartLoc: Int32Array.of(0, queryLen),
      seqLens: Int32Array.of(seqLen),
      blockTables: tables,
      maxBlocksPerSeq: need,
      blockSize,
    });
    const out = new Float32Array(query.length).fill(NaN);
    await backend.attend(cache, backend.plan(batch), { query, out });
    const expected = await oracleOnReadback(backend, cache, batch, query, [
      slots,
    ]);
    return {
      query,
      keys,
      values,
      scales,
      out,
      expected,
      maxAbsError: maxAbsError(out, expected),
    };
  } finally {
    backend.disposeCache(cache);
  }
}
