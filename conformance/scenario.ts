/**
 * One attention scenario, end to end through the public contract: build
 * data, scatter it over shuffled blocks, poison what no sequence owns, write,
 * plan, attend into a NaN-filled output, and compute the two oracle answers
 * (on the backend's dequantized cache, and on the original K/V).
 *
 * @module
 */

import type { AttentionBackend, LayerCache } from "../core/backend.ts";
import { planBatch, type PlannedBatch } from "../core/batch.ts";
import { codecFor } from "../core/codec.ts";
import {
  dequantizeInt8PerTokenHead,
  quantizeInt8PerTokenHead,
} from "../core/int8.ts";
import type { LayerConfig } from "../core/layer.ts";
import { referenceAttention } from "../core/reference_attention.ts";
import { estimateScales, type LayerKvScales } from "../core/scales.ts";

/** One sequence: its new query tokens and its total length after the write. */
export interface SeqShape {
  readonly qLen: number;
  readonly seqLen: number;
}

/** Options for {@linkcode runScenario}. */
export interface ScenarioOptions {
  /** Blocks beyond those the sequences own. @default owned blocks + 4 */
  readonly numBlocks?: number;
  /** Poison every unowned slot (true) or only the blocks next to owned ones. @default true */
  readonly poisonAll?: boolean;
  /** Asymmetric data and zero-point scales (int8 per tensor). @default false */
  readonly zeroPoint?: boolean;
  /** Multiplies the queries: larger means peakier softmax. @default 3 */
  readonly queryGain?: number;
  /** Plants one key per sequence that every query of its last token matches strongly. */
  readonly needle?: boolean;
  /**
   * Reuse an earlier run's block ids and plan objects (same sequences): a
   * second layer attends with the very plan the first one used.
   */
  readonly reuse?: Pick<ScenarioRun, "blockIds" | "plan" | "backendPlan">;
}

/** Everything a scenario produced, for checks to compare. */
export interface ScenarioRun {
  readonly plan: PlannedBatch;
  /** What backend.plan() returned (or the core plan), passed to attend. */
  readonly backendPlan: PlannedBatch;
  /** Owned block ids, in table order. */
  readonly blockIds: readonly number[];
  readonly cache: LayerCache;
  readonly query: Float32Array;
  readonly out: Float32Array;
  /** Oracle on the backend's own dequantized cache (kernel error only). */
  readonly refDequantized: Float64Array;
  /** Oracle on the original K/V (kernel plus quantization error). */
  readonly refOriginal: Float64Array;
  readonly scales: LayerKvScales;
  /** Slots of each sequence, positions 0..seqLen-1. */
  readonly slots: readonly Int32Array[];
  /** Attends again with a fresh NaN-filled output (determinism checks). */
  attendAgain(): Promise<Float32Array>;
}

function uniform(rand: () => number, n: number, lo: number, hi: number) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

function shuffle<T>(rand: () => number, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * A value that ruins any output it reaches: NaN where the format keeps NaN,
 * the largest magnitude for int8 (which has no NaN code).
 */
export function poisonValue(layer: LayerConfig): number {
  return layer.kvDtype === "int8" ? 1e30 : NaN;
}

/** The dequantized view core's codecs give for K/V written with these scales. */
export function expectedDequantized(
  layer: LayerConfig,
  data: Float32Array,
  scale: number,
  zeroPoint: number,
): Float32Array {
  const out = new Float32Array(data.length);
  if (layer.kvDtype === "int8" && layer.int8Scheme === "per_token_head") {
    const tokens = data.length / (layer.numKvHeads * layer.headDim);
    const q = quantizeInt8PerTokenHead(
      data,
      tokens,
      layer.numKvHeads,
      layer.headDim,
    );
    return dequantizeInt8PerTokenHead(
      q.codes,
      q.scales,
      tokens,
      layer.numKvHeads,
      layer.headDim,
      out,
    );
  }
  const codec = codecFor(layer.kvDtype);
  const codes = codec.allocate(data.length);
  codec.encodeArray(data, codes, scale, zeroPoint);
  codec.decodeArray(codes, out, scale, zeroPoint);
  return out;
}

/** Runs one scenario through the backend. */
export async function runScenario(
  backend: AttentionBackend,
  layer: LayerConfig,
  seqs: readonly SeqShape[],
  rand: () => number,
  options: ScenarioOptions = {},
): Promise<ScenarioRun> {
  const { blockSize, numKvHeads, numQHeads, headDim } = layer;
  const row = numKvHeads * headDim;
  const blocksPer = seqs.map((s) => Math.ceil(s.seqLen / blockSize));
  const owned = blocksPer.reduce((a, b) => a + b, 0);
  const numBlocks = options.numBlocks ?? owned + 4;
  // Owned blocks are drawn at random from the whole pool, in shuffled order,
  // so tables are non-contiguous and may use the highest block ids.
  const ids = options.reuse
    ? [...options.reuse.blockIds]
    : options.numBlocks !== undefined && options.numBlocks > 4 * owned
    ? pickDistinct(rand, numBlocks, owned)
    : shuffle(rand, [...Array(numBlocks).keys()]).slice(0, owned);
  const tables: number[][] = [];
  let next = 0;
  for (const n of blocksPer) tables.push(ids.slice(next, next += n));
  const slots = seqs.map((s, i) =>
    Int32Array.from(
      { length: s.seqLen },
      (_, j) =>
        tables[i][Math.floor(j / blockSize)] * blockSize + (j % blockSize),
    )
  );

  const [lo, hi] = options.zeroPoint ? [-0.5, 1.5] : [-1, 1];
  const keys = seqs.map((s) => uniform(rand, s.seqLen * row, lo, hi));
  const values = seqs.map((s) => uniform(rand, s.seqLen * row, lo, hi));
  const gain = options.queryGain ?? 3;
  const numTokens = seqs.reduce((a, s) => a + s.qLen, 0);
  const query = uniform(rand, numTokens * numQHeads * headDim, -gain, gain);
  if (options.needle) plantNeedles(layer, seqs, keys, query, rand);

  const scales = estimateScales(
    concat(keys),
    concat(values),
    layer.kvDtype,
    { zeroPoint: options.zeroPoint ?? false },
  );
  const cache = await backend.createCache(layer, { numBlocks, scales });

  await poison(
    backend,
    cache,
    layer,
    numBlocks,
    new Set(ids),
    slots,
    options.poisonAll ?? true,
  );

  // Context first (as earlier steps would have), then this step's tokens,
  // each with padding rows (slot -1, poisoned data) mixed in.
  for (const phase of ["context", "new"] as const) {
    const parts = seqs.map((s, i) => {
      const from = phase === "context" ? 0 : s.seqLen - s.qLen;
      const to = phase === "context" ? s.seqLen - s.qLen : s.seqLen;
      return { i, from, to };
    });
    const rows: { key: Float32Array; value: Float32Array; slot: number }[] = [];
    for (const { i, from, to } of parts) {
      for (let j = from; j < to; j++) {
        rows.push({
          key: keys[i].subarray(j * row, (j + 1) * row),
          value: values[i].subarray(j * row, (j + 1) * row),
          slot: slots[i][j],
        });
        if (rand() < 0.1) rows.push(paddingRow(layer, row));
      }
    }
    if (rows.length > 0) await writeRows(backend, cache, rows, row);
  }

  const starts = [0];
  for (const s of seqs) starts.push(starts.at(-1)! + s.qLen);
  const width = Math.max(...blocksPer);
  const blockTables = new Int32Array(seqs.length * width).fill(-1);
  tables.forEach((t, i) => blockTables.set(t, i * width));
  const core = options.reuse?.plan ?? planBatch({
    queryStartLoc: Int32Array.from(starts),
    seqLens: Int32Array.from(seqs, (s) => s.seqLen),
    blockTables,
    maxBlocksPerSeq: width,
    blockSize,
  });
  const plan = options.reuse?.backendPlan ??
    (backend.plan ? backend.plan(core) : core);
  const attendOnce = async () => {
    const out = new Float32Array(numTokens * numQHeads * headDim).fill(NaN);
    await backend.attend(cache, plan, { query, out });
    return out;
  };
  const out = await attendOnce();

  const dequantized = await Promise.all(slots.map(async (s, i) => {
    if (backend.readCache) {
      const r = await backend.readCache(cache, s);
      return { keys: r.keys, values: r.values };
    }
    return {
      keys: expectedDequantized(
        layer,
        keys[i],
        scales.kScale,
        scales.kZeroPoint,
      ),
      values: expectedDequantized(
        layer,
        values[i],
        scales.vScale,
        scales.vZeroPoint,
      ),
    };
  }));
  const refDequantized = referenceAttention(layer, {
    batch: core,
    query,
    keys: dequantized.map((d) => d.keys),
    values: dequantized.map((d) => d.values),
  }).out;
  const refOriginal =
    referenceAttention(layer, { batch: core, query, keys, values }).out;
  return {
    plan: core,
    backendPlan: plan,
    blockIds: ids,
    cache,
    query,
    out,
    refDequantized,
    refOriginal,
    scales,
    slots,
    attendAgain: attendOnce,
  };
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

function pickDistinct(rand: () => number, n: number, k: number): number[] {
  const picked = new Set<number>();
  // Always include the highest ids: that is where index overflow shows.
  for (let b = n - 1; picked.size < Math.min(k, 2); b--) picked.add(b);
  while (picked.size < k) picked.add(Math.floor(rand() * n));
  return shuffle(rand, [...picked]);
}

function paddingRow(layer: LayerConfig, row: number) {
  const p = new Float32Array(row).fill(poisonValue(layer));
  return { key: p, value: p, slot: -1 };
}

async function writeRows(
  backend: AttentionBackend,
  cache: LayerCache,
  rows: readonly { key: Float32Array; value: Float32Array; slot: number }[],
  row: number,
): Promise<void> {
  const keys = new Float32Array(rows.length * row);
  const values = new Float32Array(rows.length * row);
  const slotMapping = new Int32Array(rows.length);
  rows.forEach((r, t) => {
    keys.set(r.key, t * row);
    values.set(r.value, t * row);
    slotMapping[t] = r.slot;
  });
  await backend.write(cache, { keys, values, slotMapping });
}

/** Fills unowned slots (and the unused tail of each owned block) with poison. */
async function poison(
  backend: AttentionBackend,
  cache: LayerCache,
  layer: LayerConfig,
  numBlocks: number,
  ownedBlocks: ReadonlySet<number>,
  slots: readonly Int32Array[],
  all: boolean,
): Promise<void> {
  const { blockSize } = layer;
  const row = layer.numKvHeads * layer.headDim;
  const used = new Set<number>();
  for (const s of slots) for (const x of s) used.add(x);
  const blocks = all ? [...Array(numBlocks).keys()] : [
    ...new Set(
      [...ownedBlocks].flatMap((b) => [b - 1, b, b + 1]),
    ),
  ].filter((b) => b >= 0 && b < numBlocks);
  const targets: number[] = [];
  for (const b of blocks) {
    for (let o = 0; o < blockSize; o++) {
      const slot = b * blockSize + o;
      if (!used.has(slot)) targets.push(slot);
    }
  }
  const chunk = 4096;
  for (let i = 0; i < targets.length; i += chunk) {
    const part = targets.slice(i, i + chunk);
    const p = new Float32Array(part.length * row).fill(poisonValue(layer));
    await backend.write(cache, {
      keys: p,
      values: p,
      slotMapping: Int32Array.from(part),
    });
  }
}

/**
 * Makes one key per sequence match its last query token strongly (all
 * heads), as a retrieval needle: the output should then be that key's value.
 */
function plantNeedles(
  layer: LayerConfig,
  seqs: readonly SeqShape[],
  keys: Float32Array[],
  query: Float32Array,
  rand: () => number,
): void {
  const { numQHeads, numKvHeads, headDim } = layer;
  const group = numQHeads / numKvHeads;
  let tokenEnd = 0;
  seqs.forEach((s, i) => {
    tokenEnd += s.qLen;
    const t = tokenEnd - 1;
    const pos = Math.floor(rand() * s.seqLen * 0.9);
    for (let kh = 0; kh < numKvHeads; kh++) {
      const q = query.subarray(
        (t * numQHeads + kh * group) * headDim,
        (t * numQHeads + kh * group + 1) * headDim,
      );
      // Scale the key so its logit is 14: e^14 outweighs 32k keys of logit
      // ~N(0, 1) about 20 to 1, so the output is mostly the needle's value.
      const norm2 = q.reduce((a, x) => a + x * x, 0) || 1;
      const k = keys[i].subarray(
        (pos * numKvHeads + kh) * headDim,
        (pos * numKvHeads + kh + 1) * headDim,
      );
      for (let d = 0; d < headDim; d++) {
        k[d] = q[d] * 14 / (norm2 * layer.scale);
      }
      // Every query head of the group points at the same needle.
      for (let g = 1; g < group; g++) {
        query.copyWithin(
          (t * numQHeads + kh * group + g) * headDim,
          (t * numQHeads + kh * group) * headDim,
          (t * numQHeads + kh * group + 1) * headDim,
        );
      }
    }
  });
}
