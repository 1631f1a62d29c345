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
import { withPlan } from "../core/plan_fallback.ts";
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
   * Where V is drawn from when it should differ from K (so that per-tensor
   * caches get different k/v scales and zero points). @default K's range
   */
  readonly valueRange?: readonly [number, number];
  /**
   * Adds this constant to every logit: key dim 0 is 1 for every key and
   * query dim 0 is shift / scale. Softmax ignores the shift, a softmax that
   * does not subtract the max overflows.
   */
  readonly logitShift?: number;
  /**
   * Keys are ±keyMax * 2^-j (j in 0..7): exactly representable in fp32,
   * fp16 and bf16 when keyMax is, so K has no rounding error. Queries are
   * then ±queryGain * [0.25, 1] (never subnormal, whatever the gain).
   */
  readonly keyMax?: number;
  /**
   * Block tables wider than the longest sequence needs (maxBlocksPerSeq =
   * needed + 3): the extra entries are -1 ("padded") or ids of poisoned
   * blocks no sequence owns ("stale"; they must be ignored as well).
   */
  readonly tablePadding?: "padded" | "stale";
  /**
   * After the writes, poison the blocks that 32-bit-wrapped element offsets
   * of the owned slots would alias onto ({@linkcode aliasBlocks}), and put
   * each needle (with `needle`) of the sequence owning the highest block in
   * that block.
   */
  readonly aliasPoison?: boolean;
  /** Also compute the oracle on the codec's values of the original K/V. */
  readonly codecOracle?: boolean;
  /**
   * Reuse an earlier run's block ids and plan objects (same sequences): a
   * second layer attends with the very plan the first one used.
   */
  readonly reuse?: Pick<ScenarioRun, "blockIds" | "plan" | "backendPlan">;
}

/** Everything a scenario produced, for checks to compare. */
export interface ScenarioRun {
  readonly plan: PlannedBatch;
  /** What backend.plan() returned, passed to attend. */
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
  /**
   * Oracle on what core's codecs make of the original K/V (with
   * `codecOracle`): what a correct cache holds, whatever readCache says.
   */
  readonly refCodec?: Float64Array;
  /** Blocks poisoned after the writes as 32-bit offset alias targets. */
  readonly aliasTargets: readonly number[];
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

/**
 * Shuffles `items` in place (Fisher-Yates) with the case's generator, so a
 * case rerun alone draws the same order.
 *
 * @example Usage
 * ```ts
 * import { shuffle } from "./scenario.ts";
 * import { mulberry32 } from "../core/prng.ts";
 * import assert from "node:assert/strict";
 *
 * const order = shuffle(mulberry32(1), [0, 1, 2, 3]);
 * assert.deepEqual([...order].sort(), [0, 1, 2, 3]);
 * ```
 */
export function shuffle<T>(rand: () => number, items: T[]): T[] {
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
  const [vLo, vHi] = options.valueRange ?? [lo, hi];
  const keys = seqs.map((s) =>
    options.keyMax === undefined
      ? uniform(rand, s.seqLen * row, lo, hi)
      : exactKeys(rand, s.seqLen * row, options.keyMax)
  );
  const values = seqs.map((s) => uniform(rand, s.seqLen * row, vLo, vHi));
  const gain = options.queryGain ?? 3;
  const numTokens = seqs.reduce((a, s) => a + s.qLen, 0);
  const query = options.keyMax === undefined
    ? uniform(rand, numTokens * numQHeads * headDim, -gain, gain)
    : awayFromZero(rand, numTokens * numQHeads * headDim, gain);
  if (options.logitShift !== undefined) {
    shiftLogits(layer, keys, query, options.logitShift);
  }
  if (options.needle) {
    // With aliasPoison, the sequence owning the highest block keeps its
    // needle there: a wrapped offset then loses the key that matters most.
    const top = Math.max(...ids);
    const at = options.aliasPoison
      ? tables.map((t) => {
        const b = t.indexOf(top);
        return b < 0 ? undefined : b * blockSize;
      })
      : [];
    plantNeedles(layer, seqs, keys, query, rand, at);
  }

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
  // Poisoned after the data: a backend whose writes wrap onto these blocks
  // loses its data to the poison, one whose reads wrap reads the poison.
  const aliasTargets = options.aliasPoison
    ? aliasBlocks(layer, numBlocks, new Set(ids), codecFor(layer.kvDtype).bytes)
    : [];
  if (aliasTargets.length > 0) {
    await poisonSlots(
      backend,
      cache,
      layer,
      aliasTargets.flatMap((b) =>
        Array.from({ length: blockSize }, (_, o) => b * blockSize + o)
      ),
    );
  }

  const starts = [0];
  for (const s of seqs) starts.push(starts.at(-1)! + s.qLen);
  const width = Math.max(...blocksPer) + (options.tablePadding ? 3 : 0);
  const blockTables = new Int32Array(seqs.length * width).fill(-1);
  if (options.tablePadding === "stale") {
    const owned = new Set(ids);
    const unowned = [...Array(numBlocks).keys()].filter((b) => !owned.has(b));
    for (let i = 0; i < blockTables.length; i++) {
      blockTables[i] = unowned[Math.floor(rand() * unowned.length)] ?? -1;
    }
  }
  tables.forEach((t, i) => blockTables.set(t, i * width));
  const core = options.reuse?.plan ?? planBatch({
    queryStartLoc: Int32Array.from(starts),
    seqLens: Int32Array.from(seqs, (s) => s.seqLen),
    blockTables,
    maxBlocksPerSeq: width,
    blockSize,
  });
  const plan = options.reuse?.backendPlan ??
    withPlan(backend).plan(core);
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
  const refCodec = options.codecOracle
    ? referenceAttention(layer, {
      batch: core,
      query,
      keys: keys.map((k) =>
        expectedDequantized(layer, k, scales.kScale, scales.kZeroPoint)
      ),
      values: values.map((v) =>
        expectedDequantized(layer, v, scales.vScale, scales.vZeroPoint)
      ),
    }).out
    : undefined;
  return {
    plan: core,
    backendPlan: plan,
    blockIds: ids,
    cache,
    query,
    out,
    refDequantized,
    refOriginal,
    ...(refCodec ? { refCodec } : {}),
    aliasTargets,
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
  await poisonSlots(backend, cache, layer, targets);
}

async function poisonSlots(
  backend: AttentionBackend,
  cache: LayerCache,
  layer: LayerConfig,
  targets: readonly number[],
): Promise<void> {
  const row = layer.numKvHeads * layer.headDim;
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
 * The blocks that element (or byte) offsets of the owned slots would land in
 * if a kernel computed them in 32 bits: `slot * numKvHeads * headDim` (times
 * the element size for byte offsets) taken mod 2^32, mod 2^31 (sign bit
 * lost), and as a negative int32 counted back from the end of the buffer (as
 * JS typed arrays and Python do). Only blocks in range and not owned.
 *
 * @example Usage
 * ```ts
 * import { aliasBlocks } from "./scenario.ts";
 * import assert from "node:assert/strict";
 *
 * // 2^31 / (4 * 256) / 16 + 1 blocks: only the last block's offsets pass
 * // 2^31; mod 2^31 they land in block 0, counted from the end in block 1.
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 4, numKvHeads: 4, headDim: 256,
 *   scale: 1 / 16, kvDtype: "fp8_e4m3", blockSize: 16,
 * } as const;
 * assert.deepEqual(aliasBlocks(layer, 131073, new Set([131072, 7]), 1), [0, 1]);
 * ```
 */
export function aliasBlocks(
  layer: LayerConfig,
  numBlocks: number,
  owned: ReadonlySet<number>,
  bytesPerElement: number,
): number[] {
  const row = layer.numKvHeads * layer.headDim;
  const blockElems = row * layer.blockSize;
  const total = numBlocks * blockElems;
  const found = new Set<number>();
  const add = (elementOffset: number) => {
    const b = Math.floor(elementOffset / blockElems);
    if (b >= 0 && b < numBlocks && !owned.has(b)) found.add(b);
  };
  for (const block of owned) {
    for (let o = 0; o < layer.blockSize; o++) {
      const x = (block * layer.blockSize + o) * row;
      for (const bytes of new Set([1, bytesPerElement])) {
        const wrapped = (x * bytes) % 2 ** 32;
        add(Math.floor(wrapped / bytes));
        add(Math.floor(((x * bytes) % 2 ** 31) / bytes));
        if (wrapped >= 2 ** 31) {
          add(total + Math.floor((wrapped - 2 ** 32) / bytes));
        }
      }
    }
  }
  return [...found].sort((a, b) => a - b);
}

/** ±max * 2^-j, j uniform in 0..7: exact in any float format holding max. */
function exactKeys(rand: () => number, n: number, max: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rand() < 0.5 ? -1 : 1;
    a[i] = sign * max * 2 ** -Math.floor(rand() * 8);
  }
  return a;
}

/** ±gain * [0.25, 1]: no value near zero, so none is subnormal. */
function awayFromZero(
  rand: () => number,
  n: number,
  gain: number,
): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = (rand() < 0.5 ? -1 : 1) * gain * (0.25 + 0.75 * rand());
  }
  return a;
}

/** Key dim 0 := 1 and query dim 0 := shift / scale: every logit gains shift. */
function shiftLogits(
  layer: LayerConfig,
  keys: Float32Array[],
  query: Float32Array,
  shift: number,
): void {
  for (const k of keys) {
    for (let i = 0; i < k.length; i += layer.headDim) k[i] = 1;
  }
  for (let i = 0; i < query.length; i += layer.headDim) {
    query[i] = shift / layer.scale;
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
  blockStarts: readonly (number | undefined)[] = [],
): void {
  const { numQHeads, numKvHeads, headDim } = layer;
  const group = numQHeads / numKvHeads;
  let tokenEnd = 0;
  seqs.forEach((s, i) => {
    tokenEnd += s.qLen;
    const t = tokenEnd - 1;
    const start = blockStarts[i];
    // In the given block when one is given, else anywhere but the last 10%.
    const pos = start === undefined
      ? Math.floor(rand() * s.seqLen * 0.9)
      : start +
        Math.floor(rand() * Math.min(layer.blockSize, s.seqLen - start));
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
