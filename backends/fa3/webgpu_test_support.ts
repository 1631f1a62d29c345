/**
 * Test scaffolding for the fa3 WebGPU target: whether a device is here
 * (tests are ignored with the reason when not), and a decode scenario that
 * writes K/V through shuffled blocks over a poisoned cache, attends into a
 * NaN-filled output, and runs the fp64 oracle on the cache as read back.
 * Nothing here compares with another backend.
 *
 * @module
 */

import { planBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import { estimateScales, type LayerKvScales } from "../../core/scales.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import type { Fa3WebGpuBackend } from "./webgpu_backend.ts";

const probe = await probeWebGpu();

/** Why WebGPU tests are ignored here, or undefined when they run. */
export const SKIP_REASON: string | undefined = probe.available
  ? undefined
  : probe.reason;

/** A test name with the skip reason appended when there is no device. */
export function named(name: string): string {
  return SKIP_REASON ? `${name} (skipped: ${SKIP_REASON})` : name;
}

/** A layer with every field a test does not care about filled in. */
export function layerOf(overrides: Partial<LayerConfig>): LayerConfig {
  const headDim = overrides.headDim ?? 128;
  return {
    index: 0,
    kind: "full",
    numQHeads: 8,
    numKvHeads: 2,
    headDim,
    scale: 1 / Math.sqrt(headDim),
    kvDtype: "fp8_e4m3",
    blockSize: 16,
    ...overrides,
  };
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
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const cache = await backend.createCache(config, { numBlocks, scales });
  try {
    const all = Int32Array.from({ length: numBlocks * blockSize }, (_, i) => i);
    const poison = new Float32Array(all.length * row).fill(
      config.kvDtype === "int8" ? 1e30 : NaN,
    );
    backend.write(cache, { keys: poison, values: poison, slotMapping: all });
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
    const read = await backend.readCache(cache, slots);
    const expected = referenceAttention(config, {
      batch,
      query,
      keys: [read.keys],
      values: [read.values],
    }).out;
    let maxAbsError = 0;
    for (let i = 0; i < out.length; i++) {
      const e = Math.abs(out[i] - expected[i]);
      maxAbsError = Math.max(maxAbsError, Number.isNaN(e) ? Infinity : e);
    }
    return { query, keys, values, scales, out, expected, maxAbsError };
  } finally {
    backend.disposeCache(cache);
  }
}
