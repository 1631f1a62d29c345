/**
 * Test scaffolding for the xformers WebGPU target: whether a device is here
 * (tests skip with the reason when not), a paged scenario that writes K/V
 * through shuffled non-contiguous blocks over a poisoned cache, and the fp64
 * oracle run on the cache as read back. Nothing here compares with another
 * backend.
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { planBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import { probeWebGpu } from "../../webgpu/mod.ts";
import type { WebGpuCache } from "./webgpu_cache.ts";
import {
  createXformersWebGpuBackend,
  type XformersWebGpuBackend,
  type XformersWebGpuOptions,
} from "./webgpu_backend.ts";

const probe = await probeWebGpu();

/** Why WebGPU tests are skipped here, or undefined when they run. */
export const SKIP_REASON: string | undefined = probe.available
  ? undefined
  : probe.reason;

/** A test name with the skip reason appended when there is no device. */
export function named(name: string): string {
  return SKIP_REASON ? `${name} (skipped: ${SKIP_REASON})` : name;
}

let backend: Promise<XformersWebGpuBackend> | undefined;

/** One backend on the shared device for the whole test file. */
export function sharedBackend(): Promise<XformersWebGpuBackend> {
  return backend ??= createXformersWebGpuBackend();
}

/** A layer with every field a test does not care about filled in. */
export function layerOf(overrides: Partial<LayerConfig>): LayerConfig {
  const headDim = overrides.headDim ?? 64;
  return {
    index: 0,
    kind: "full",
    numQHeads: 4,
    numKvHeads: 2,
    headDim,
    scale: 1 / Math.sqrt(headDim),
    kvDtype: "fp32",
    blockSize: 16,
    ...overrides,
  };
}

/** Scales that exercise real divisions (not powers of two) for 8-bit dtypes. */
export function scalesFor(config: LayerConfig): LayerKvScales {
  switch (config.kvDtype) {
    case "fp8_e4m3":
      return { kScale: 0.0031, vScale: 0.0027, kZeroPoint: 0, vZeroPoint: 0 };
    case "fp8_e5m2":
      return { kScale: 0.0013, vScale: 0.0007, kZeroPoint: 0, vZeroPoint: 0 };
    case "int8":
      return { kScale: 0.0093, vScale: 0.0081, kZeroPoint: 3, vZeroPoint: -2 };
    default:
      return { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };
  }
}

/** Uniform values in [-1, 1). */
export function randomArray(rand: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

/** A batch: per sequence, its cache length and its query length. */
export interface ScenarioSpec {
  readonly seqLens: readonly number[];
  readonly queryLens: readonly number[];
  readonly seed?: number;
  /** A backend of its own, made with these options. @default the shared one */
  readonly backendOptions?: XformersWebGpuOptions;
}

/** What {@linkcode runScenario} measured. */
export interface ScenarioResult {
  readonly out: Float32Array;
  readonly expected: Float64Array;
  readonly plan: PlannedBatch;
  readonly maxAbsError: number;
  /** The first mismatches, one line each, for assertion messages. */
  readonly report: (tolerance: number) => string;
}

/**
 * Writes each sequence into shuffled blocks of a cache whose every slot was
 * first poisoned (NaN, or 1e30 for int8, whose NaN would encode harmlessly),
 * attends with a NaN-filled output, and runs the fp64 oracle on the cache
 * as readCache() returns it.
 */
export async function runScenario(
  config: LayerConfig,
  spec: ScenarioSpec,
): Promise<ScenarioResult> {
  const b = spec.backendOptions
    ? await createXformersWebGpuBackend(spec.backendOptions)
    : await sharedBackend();
  const rand = mulberry32(spec.seed ?? 7);
  const { blockSize, numKvHeads, headDim, numQHeads } = config;
  const row = numKvHeads * headDim;
  const need = spec.seqLens.map((n) => Math.ceil(n / blockSize));
  const total = need.reduce((a, n) => a + n, 0);
  const numBlocks = total + 3; // spare blocks stay poisoned and unowned
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const cache = await b.createCache(config, {
    numBlocks,
    scales: scalesFor(config),
  });
  try {
    const slots = Int32Array.from(
      { length: numBlocks * blockSize },
      (_, i) => i,
    );
    const poison = new Float32Array(slots.length * row).fill(
      config.kvDtype === "int8" ? 1e30 : NaN,
    );
    b.write(cache, { keys: poison, values: poison, slotMapping: slots });
    const maxBlocks = Math.max(...need);
    const tables = new Int32Array(spec.seqLens.length * maxBlocks).fill(-1);
    let next = 0;
    const seqSlots = spec.seqLens.map((n, s) => {
      for (let k = 0; k < need[s]; k++) tables[s * maxBlocks + k] = ids[next++];
      return Int32Array.from(
        { length: n },
        (_, j) =>
          tables[s * maxBlocks + Math.floor(j / blockSize)] * blockSize +
          j % blockSize,
      );
    });
    // Padding (-1) rows between sequences must be skipped by the write.
    for (const sl of seqSlots) {
      const padded = Int32Array.from([-1, ...sl]);
      const kv = () => randomArray(rand, padded.length * row);
      b.write(cache, { keys: kv(), values: kv(), slotMapping: padded });
    }
    const queryStartLoc = Int32Array.from([0, ...spec.queryLens]);
    for (let s = 1; s < queryStartLoc.length; s++) {
      queryStartLoc[s] += queryStartLoc[s - 1];
    }
    const plan = planBatch({
      queryStartLoc,
      seqLens: Int32Array.from(spec.seqLens),
      blockTables: tables,
      maxBlocksPerSeq: maxBlocks,
      blockSize,
    });
    const query = randomArray(rand, plan.numTokens * numQHeads * headDim);
    const out = new Float32Array(query.length).fill(NaN);
    await b.attend(cache, plan, { query, out });
    const read = await Promise.all(
      seqSlots.map((sl) => b.readCache(cache, sl)),
    );
    const expected = referenceAttention(config, {
      batch: plan,
      query,
      keys: read.map((r) => r.keys),
      values: read.map((r) => r.values),
    }).out;
    return summarize(out, expected, plan, config);
  } finally {
    b.disposeCache(cache);
  }
}

function summarize(
  out: Float32Array,
  expected: Float64Array,
  plan: PlannedBatch,
  config: LayerConfig,
): ScenarioResult {
  let maxAbsError = 0;
  for (let i = 0; i < out.length; i++) {
    const err = Math.abs(out[i] - expected[i]);
    maxAbsError = Math.max(maxAbsError, Number.isNaN(err) ? Infinity : err);
  }
  const report = (tolerance: number) => {
    const rows: string[] = [];
    const per = config.numQHeads * config.headDim;
    for (let i = 0; i < out.length && rows.length < 8; i++) {
      if (!(Math.abs(out[i] - expected[i]) <= tolerance)) {
        const t = Math.floor(i / per);
        rows.push(
          `  token ${t} (seq ${plan.tokenSeq[t]} pos ${
            plan.tokenPos[t]
          }) head ${Math.floor((i % per) / config.headDim)} dim ${
            i % config.headDim
          }: actual ${out[i]} expected ${expected[i]}`,
        );
      }
    }
    return `max |diff| ${maxAbsError} > ${tolerance}:\n${rows.join("\n")}`;
  };
  return { out, expected, plan, maxAbsError, report };
}

/** The cache a test made, for readCodes-based assertions. */
export type { WebGpuCache };
