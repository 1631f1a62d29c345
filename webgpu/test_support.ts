/**
 * The device-test harness every backend's WebGPU tests share: whether a
 * device is here (tests are ignored with the reason when not), layers and
 * scales that exercise real arithmetic, and a paged scenario that writes
 * K/V through shuffled non-contiguous blocks over a poisoned cache, attends
 * into a NaN-filled output, and runs the fp64 oracle on the cache as read
 * back. Nothing here compares one backend with another; a backend's tests
 * pass their own backend in ({@linkcode webGpuScenarios}).
 *
 * @example A backend's scenario on the shared device
 * ```ts
 * import { layerOf, webGpuScenarios, SKIP_REASON } from "./test_support.ts";
 * import { createXformersWebGpuBackend } from "../backends/xformers/webgpu_backend.ts";
 * import assert from "node:assert/strict";
 *
 * if (!SKIP_REASON) {
 *   const { runScenario } = webGpuScenarios(createXformersWebGpuBackend);
 *   const r = await runScenario(layerOf({ headDim: 64 }), {
 *     seqLens: [5],
 *     queryLens: [1],
 *   });
 *   assert.ok(r.maxAbsError < 1e-3, r.report(1e-3));
 * }
 * ```
 *
 * @module
 */

import type {
  AttentionBackend,
  CacheReadout,
  LayerCache,
} from "../core/backend.ts";
import { planBatch, type PlannedBatch } from "../core/batch.ts";
import type { LayerConfig } from "../core/layer.ts";
import { mulberry32 } from "../core/prng.ts";
import { withPlan } from "../core/plan_fallback.ts";
import { referenceAttention } from "../core/reference_attention.ts";
import type { LayerKvScales } from "../core/scales.ts";
import { probeWebGpu } from "./probe.ts";

const probe = await probeWebGpu();

/** Why WebGPU tests are ignored here, or undefined when they run. */
export const SKIP_REASON: string | undefined = probe.available
  ? undefined
  : probe.reason;

/** A test name with the skip reason appended when there is no device. */
export function named(name: string): string {
  return SKIP_REASON ? `${name} (skipped: ${SKIP_REASON})` : name;
}

/**
 * A layer with every field a test does not care about filled in: 4 query
 * heads over 2 KV heads, head dim 64, fp32, blocks of 16, scale
 * 1/sqrt(headDim) unless given.
 */
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

/** Block ids 0..numBlocks-1 in a random order (Fisher-Yates on `rand`). */
export function shuffledBlockIds(
  rand: () => number,
  numBlocks: number,
): number[] {
  const ids = Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  return ids;
}

/** What a scenario needs of a backend: the contract with readCache. */
export type ScenarioBackend<
  C extends LayerCache = LayerCache,
  P extends PlannedBatch = PlannedBatch,
> =
  & Pick<
    AttentionBackend<C, P>,
    "createCache" | "write" | "plan" | "attend" | "disposeCache"
  >
  & Required<Pick<AttentionBackend<C, P>, "readCache">>;

/**
 * Writes a value no test data holds into every slot of the cache (NaN;
 * 1e30 for int8, whose NaN would encode harmlessly), so that a read of a
 * slot the test did not write shows in the output.
 */
export async function poisonCache<C extends LayerCache>(
  backend: Pick<ScenarioBackend<C, PlannedBatch>, "write">,
  cache: C,
): Promise<void> {
  const { blockSize, numKvHeads, headDim, kvDtype } = cache.config;
  const slots = Int32Array.from(
    { length: cache.numBlocks * blockSize },
    (_, i) => i,
  );
  const poison = new Float32Array(slots.length * numKvHeads * headDim).fill(
    kvDtype === "int8" ? 1e30 : NaN,
  );
  await backend.write(cache, {
    keys: poison,
    values: poison,
    slotMapping: slots,
  });
}

/**
 * The fp64 oracle's output on the cache as readCache() returns it: each
 * sequence's keys and values read back from `seqSlots[s]`, so the
 * comparison measures the kernel's error only, not the format's.
 */
export async function oracleOnReadback<C extends LayerCache>(
  backend: Pick<ScenarioBackend<C, PlannedBatch>, "readCache">,
  cache: C,
  batch: PlannedBatch,
  query: Float32Array,
  seqSlots: readonly Int32Array[],
): Promise<Float64Array> {
  const read: CacheReadout[] = await Promise.all(
    seqSlots.map((slots) => backend.readCache(cache, slots)),
  );
  return referenceAttention(cache.config, {
    batch,
    query,
    keys: read.map((r) => r.keys),
    values: read.map((r) => r.values),
  }).out;
}

/** max |out - expected|, Infinity when any output is NaN. */
export function maxAbsError(
  out: Float32Array,
  expected: Float64Array,
): number {
  let max = 0;
  for (let i = 0; i < out.length; i++) {
    const err = Math.abs(out[i] - expected[i]);
    max = Math.max(max, Number.isNaN(err) ? Infinity : err);
  }
  return max;
}

/** A batch: per sequence, its cache length and its query length. */
export interface ScenarioSpec<O = never> {
  readonly seqLens: readonly number[];
  readonly queryLens: readonly number[];
  readonly seed?: number;
  /** A backend of its own, made with these options. @default the shared one */
  readonly backendOptions?: O;
}

/** What a scenario measured. */
export interface ScenarioResult<P extends PlannedBatch = PlannedBatch> {
  readonly out: Float32Array;
  readonly expected: Float64Array;
  /** The batch as attend() received it (the backend's own plan, if any). */
  readonly plan: P;
  readonly maxAbsError: number;
  /** The first mismatches, one line each, for assertion messages. */
  readonly report: (tolerance: number) => string;
}

/**
 * Writes each sequence into shuffled blocks of a cache whose every slot was
 * first poisoned ({@linkcode poisonCache}), with a padding slot (-1) that
 * the write must skip before each sequence, attends with a NaN-filled
 * output (through the backend's plan() when it has one), and runs the fp64
 * oracle on the cache as readCache() returns it.
 */
export async function runScenarioOn<
  C extends LayerCache,
  P extends PlannedBatch,
>(
  backend: ScenarioBackend<C, P>,
  config: LayerConfig,
  spec: Omit<ScenarioSpec, "backendOptions">,
): Promise<ScenarioResult<P>> {
  const rand = mulberry32(spec.seed ?? 7);
  const { blockSize, numKvHeads, headDim, numQHeads } = config;
  const row = numKvHeads * headDim;
  const need = spec.seqLens.map((n) => Math.ceil(n / blockSize));
  const total = need.reduce((a, n) => a + n, 0);
  const numBlocks = total + 3; // spare blocks stay poisoned and unowned
  const ids = shuffledBlockIds(rand, numBlocks);
  const cache = await backend.createCache(config, {
    numBlocks,
    scales: scalesFor(config),
  });
  try {
    await poisonCache(backend, cache);
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
      await backend.write(cache, {
        keys: kv(),
        values: kv(),
        slotMapping: padded,
      });
    }
    const queryStartLoc = Int32Array.from([0, ...spec.queryLens]);
    for (let s = 1; s < queryStartLoc.length; s++) {
      queryStartLoc[s] += queryStartLoc[s - 1];
    }
    const batch = planBatch({
      queryStartLoc,
      seqLens: Int32Array.from(spec.seqLens),
      blockTables: tables,
      maxBlocksPerSeq: maxBlocks,
      blockSize,
    });
    // Without plan() the core's identity fallback plans (core/plan_fallback.ts).
    const plan = withPlan(backend).plan(batch);
    const query = randomArray(rand, batch.numTokens * numQHeads * headDim);
    const out = new Float32Array(query.length).fill(NaN);
    await backend.attend(cache, plan, { query, out });
    const expected = await oracleOnReadback(
      backend,
      cache,
      batch,
      query,
      seqSlots,
    );
    return summarize(out, expected, plan, config);
  } finally {
    await backend.disposeCache?.(cache);
  }
}

/** A backend's scenario runner and its per-file shared instance. */
export interface WebGpuScenarios<
  B extends ScenarioBackend<C, P>,
  O,
  C extends LayerCache = LayerCache,
  P extends PlannedBatch = PlannedBatch,
> {
  /** One backend on the shared device for the whole test file. */
  sharedBackend(): Promise<B>;
  /**
   * {@linkcode runScenarioOn} on the shared backend, or on a fresh one made
   * with `spec.backendOptions`.
   */
  runScenario(
    config: LayerConfig,
    spec: ScenarioSpec<O>,
  ): Promise<ScenarioResult<P>>;
}

/**
 * Binds the scenario harness to one backend's create function.
 *
 * @param create The backend's WebGPU create function (e.g.
 *   createXformersWebGpuBackend), called with no options for the shared
 *   instance and with `spec.backendOptions` for a scenario's own.
 */
export function webGpuScenarios<
  C extends LayerCache,
  P extends PlannedBatch,
  B extends ScenarioBackend<C, P>,
  O,
>(
  create: (options?: O) => Promise<B>,
): WebGpuScenarios<B, O, C, P> {
  let shared: Promise<B> | undefined;
  const sharedBackend = () => shared ??= create();
  return {
    sharedBackend,
    runScenario: async (config, spec) =>
      runScenarioOn<C, P>(
        spec.backendOptions !== undefined
          ? await create(spec.backendOptions)
          : await sharedBackend(),
        config,
        spec,
      ),
  };
}

function summarize<P extends PlannedBatch>(
  out: Float32Array,
  expected: Float64Array,
  plan: P,
  config: LayerConfig,
): ScenarioResult<P> {
  const max = maxAbsError(out, expected);
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
    return `max |diff| ${max} > ${tolerance}:\n${rows.join("\n")}`;
  };
  return { out, expected, plan, maxAbsError: max, report };
}
