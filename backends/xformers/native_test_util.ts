/**
 * Shared by the native xformers tests: the native test gate
 * (native/test_support.ts), which builds the addon first and ignores the
 * tests with the reason when it cannot run them, and runs one attention
 * scenario against the fp64 oracle, computed from the cache's own codes
 * decoded by core's codecs (never from another backend).
 *
 * @module
 */

import assert from "node:assert/strict";
import { planBatch, type PlannedBatch } from "../../core/batch.ts";
import { codecFor } from "../../core/codec.ts";
import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import { sequenceSlots } from "../../core/sequence_slots.ts";
import { type KernelPathName, loadNativeAddon } from "../../native/mod.ts";
import { nativeTestGate } from "../../native/test_support.ts";
import { createXformersNativeBackend } from "./native_backend.ts";
import { perTokenHead, type XformersNativeCache } from "./native_cache.ts";

const gate = await nativeTestGate("xformers", "xformersAttend");

/** Why the native tests cannot run here, or undefined when they can. */
export const SKIP_REASON: string | undefined = gate.skipReason;

/** `Deno.test`, ignored (with the reason in its name) when the addon is absent. */
export const nativeTest: typeof gate.test = gate.test;

/**
 * A backend over the loaded addon (call only inside a native test). A
 * kernel path is passed explicitly, never through `KVPLUG_NATIVE_PATH`:
 * test files run in parallel in one process and share its environment.
 */
export const backend = (kernelPath?: KernelPathName) =>
  createXformersNativeBackend(loadNativeAddon(), { kernelPath });

/** Scales that exercise each format: int8 per_tensor gets zero points. */
export function scalesFor(dtype: KvCacheDtype): LayerKvScales {
  if (dtype === "fp8_e4m3") {
    return { kScale: 1 / 400, vScale: 1 / 300, kZeroPoint: 0, vZeroPoint: 0 };
  }
  if (dtype === "fp8_e5m2") {
    return { kScale: 1 / 8, vScale: 1 / 16, kZeroPoint: 0, vZeroPoint: 0 };
  }
  if (dtype === "int8") {
    // Codes stay within about ±25 of the zero point, so a poisoned code of
    // 127 read by mistake is far outside the data and shows in the output.
    return { kScale: 0.04, vScale: 0.05, kZeroPoint: 3, vZeroPoint: -7 };
  }
  return { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };
}

/** The layer a scenario uses. */
export function layerFor(o: {
  dtype: KvCacheDtype;
  int8Scheme?: Int8Scheme;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  window?: number;
}): LayerConfig {
  return {
    index: 0,
    kind: o.window === undefined ? "full" : "sliding_window",
    slidingWindow: o.window,
    numQHeads: o.numQHeads,
    numKvHeads: o.numKvHeads,
    headDim: o.headDim,
    scale: 1 / Math.sqrt(o.headDim),
    kvDtype: o.dtype,
    int8Scheme: o.int8Scheme,
    blockSize: o.blockSize,
  };
}

/** Reads K and V of `slots` from the cache's codes with core's codecs. */
export function decodeWithCore(cache: XformersNativeCache, slots: Int32Array) {
  const { blockSize: bs, numKvHeads: h, headDim: d, kvDtype } = cache.config;
  const codec = codecFor(kvDtype);
  const { keys, values, keyScales, valueScales } = cache.native;
  const s = cache.scales;
  const k = new Float32Array(slots.length * h * d);
  const v = new Float32Array(slots.length * h * d);
  slots.forEach((slot, i) => {
    const block = Math.floor(slot / bs), offset = slot % bs;
    for (let head = 0; head < h; head++) {
      const tile = (block * h + head) * bs; // row of offset 0
      const row = tile + offset;
      const [ks, kz] = keyScales
        ? [keyScales[row], 0]
        : [s.kScale, s.kZeroPoint];
      const [vs, vz] = valueScales
        ? [valueScales[row], 0]
        : [s.vScale, s.vZeroPoint];
      for (let e = 0; e < d; e++) {
        const out = (i * h + head) * d + e;
        k[out] = codec.decode(keys[(tile * d) + e * bs + offset], ks, kz);
        v[out] = codec.decode(values[row * d + e], vs, vz);
      }
    }
  });
  return { keys: k, values: v };
}

/**
 * Fills the whole cache with a code no write of the test data produces
 * (NaN; int8: 127, far outside the data, with NaN per-row scales), so that
 * a read of any slot the test did not write shows in the output.
 */
export function poison(cache: XformersNativeCache): void {
  const code = {
    fp32: NaN,
    fp16: 0x7e00,
    bf16: 0x7fc0,
    fp8_e4m3: 0x7f,
    fp8_e5m2: 0x7e,
    int8: 127,
  }[cache.config.kvDtype];
  const { keys, values, keyScales, valueScales } = cache.native;
  keys.fill(code);
  values.fill(code);
  keyScales?.fill(NaN);
  valueScales?.fill(NaN);
}

/** What a scenario describes: the layer, its sequences, options. */
export interface Scenario {
  readonly layer: LayerConfig;
  /** The kernel path to run. @default the environment's */
  readonly kernelPath?: KernelPathName;
  /** Per sequence: tokens in the cache after this step, and new query tokens. */
  readonly seqs: readonly { readonly len: number; readonly queryLen: number }[];
  readonly seed: number;
}

/** The kernel's output, the oracle's, and the worst difference. */
export interface ScenarioResult {
  readonly out: Float32Array;
  readonly want: Float64Array;
  readonly maxError: number;
  readonly plan: PlannedBatch;
}

/**
 * Writes random K/V for every sequence into shuffled, non-contiguous blocks,
 * poisons every slot no sequence owns (unowned blocks and the tails of the
 * last blocks) with NaN codes (int8: code 127, scales NaN), attends with an
 * output pre-filled with NaN, and compares with the fp64 oracle on the
 * cache's codes decoded by core.
 */
export function runScenario(s: Scenario): ScenarioResult {
  const { layer, seqs } = s;
  const { blockSize: bs, numKvHeads: h, headDim: d, numQHeads } = layer;
  const rand = mulberry32(s.seed);
  const random = (n: number) =>
    Float32Array.from({ length: n }, () => rand() * 2 - 1);
  const needed = seqs.map((q) => Math.ceil(q.len / bs));
  const numBlocks = needed.reduce((a, b) => a + b, 0) + 3;
  const ids = Int32Array.from({ length: numBlocks }, (_, i) => i);
  for (let i = numBlocks - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const width = Math.max(...needed) + 1;
  const tables = new Int32Array(seqs.length * width).fill(-1);
  let next = 0;
  seqs.forEach((_, q) => {
    for (let b = 0; b < needed[q]; b++) tables[q * width + b] = ids[next++];
  });
  const be = backend(s.kernelPath);
  const scales = perTokenHead(layer)
    ? scalesFor("fp32")
    : scalesFor(layer.kvDtype);
  const cache = be.createCache(layer, { numBlocks, scales });
  poison(cache);
  const plan = planBatch({
    queryStartLoc: Int32Array.from(
      { length: seqs.length + 1 },
      (_, i) => seqs.slice(0, i).reduce((a, q) => a + q.queryLen, 0),
    ),
    seqLens: Int32Array.from(seqs, (q) => q.len),
    blockTables: tables,
    maxBlocksPerSeq: width,
    blockSize: bs,
  });
  // One write for the whole batch, tokens in shuffled order, with padding
  // slots (-1, NaN data) mixed in.
  const slots = seqs.flatMap((_, i) => [...sequenceSlots(plan, i)])
    .flatMap((slot) => rand() < 0.1 ? [-1, slot] : [slot]);
  for (let i = slots.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [slots[i], slots[j]] = [slots[j], slots[i]];
  }
  const keys = random(slots.length * h * d);
  const values = random(slots.length * h * d);
  slots.forEach((slot, t) =>
    slot === -1 && keys.fill(NaN, t * h * d, (t + 1) * h * d)
  );
  be.write(cache, { keys, values, slotMapping: Int32Array.from(slots) });
  const query = random(plan.numTokens * numQHeads * d);
  const out = new Float32Array(query.length).fill(NaN);
  be.attend(cache, plan, { query, out });
  if (s.kernelPath) assert.equal(be.lastKernelPath, s.kernelPath);
  const read = seqs.map((_, i) =>
    decodeWithCore(cache, sequenceSlots(plan, i))
  );
  const { out: want } = referenceAttention(layer, {
    batch: plan,
    query,
    keys: read.map((r) => r.keys),
    values: read.map((r) => r.values),
  });
  let maxError = 0;
  for (let i = 0; i < out.length; i++) {
    const e = Math.abs(out[i] - want[i]);
    if (!(e <= maxError)) maxError = Number.isNaN(e) ? NaN : e;
    if (Number.isNaN(maxError)) {
      assert.fail(
        `out[${i}] is ${out[i]}, the oracle says ${
          want[i]
        }: an element was not written, or a poisoned slot was read`,
      );
    }
  }
  return { out, want, maxError, plan };
}
