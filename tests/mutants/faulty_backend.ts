/**
 * A small, correct backend with switches that plant one bug each. The
 * mutation tests run the conformance suite on every variant and require it
 * to fail: each variant proves that some check can fail.
 *
 * @module
 */

import {
  assertBatchSupported,
  assertSupported,
  type AttendInput,
  type AttentionBackend,
  BACKEND_API_VERSION,
  type BackendCapabilities,
  type BackendDefinition,
  type CacheReadout,
  type CodeArray,
  type Codec,
  codecFor,
  type CreateCacheOptions,
  defineBackend,
  dequantizeInt8PerTokenHead,
  type LayerCache,
  type LayerConfig,
  type LayerKvScales,
  type PlannedBatch,
  quantizeInt8PerTokenHead,
  type WriteInput,
} from "../../mod.ts";
import { REFERENCE_CAPABILITIES } from "../../backends/reference/mod.ts";
import { unguardedForTests } from "../../core/backend_guard.ts";

/** The planted bugs. */
export type Fault =
  | "none"
  /** Query head h reads kv head h % numKvHeads instead of h / group. */
  | "gqaMapping"
  /** Each query also sees the next position (j <= p + 1). */
  | "causalOffByOne"
  /** Dequantization multiplies by the scale twice. */
  | "scaleTwice"
  /** Decode reads one block past the sequence's table. */
  | "tableOverread"
  /** A padding row (slot -1) is written to the last slot. */
  | "writesPadding"
  /** The sliding window is ignored. */
  | "ignoresWindow"
  /** The soft-cap is ignored. */
  | "ignoresSoftCap"
  /** The last output row is never written. */
  | "skipsLastRow"
  /** Accepts any layer, declared or not. */
  | "noSupportCheck"
  /** copyBlocks copies codes but not the per-token-head scales. */
  | "copyDropsScales"
  /** The first cache attended with a plan sticks to that plan object. */
  | "planHoldsLayer"
  // ---- Attention numerics and addressing faults ----
  /** attend uses headDim^-0.5 instead of the layer's scale. */
  | "ignoresScale"
  /** Softmax as exp(x) / sum(exp(x)), without subtracting the max. */
  | "noMaxSubtraction"
  /** The same in fp32, as a GPU kernel computes exp: overflows past 88.7. */
  | "noMaxSubtractionF32"
  /** attend dequantizes V with K's scale and zero point (readCache is right). */
  | "attendVUsesKScale"
  /** The block-table row stride is ceil(maxSeqLen / blockSize), not maxBlocksPerSeq. */
  | "strideFromSeqLen"
  /** Element offsets slot * numKvHeads * headDim wrap as int32 (Math.imul). */
  | "int32Offsets"
  /** Declares head dims up to 512, but the dot product stops at dim 256. */
  | "truncatesHeadDim"
  /** Declares block size 64, but addresses its blocks as if they were 32. */
  | "blockSize64As32"
  /** Query head h reads kv head h >> floor(log2(group)): right for power-of-two groups only. */
  | "pow2Group"
  /** The window keeps one key too many (p - W <= j instead of p - W < j). */
  | "windowOffByOne"
  // ---- Contract and runner faults ----
  /** attend memoizes each block's dequantized K/V by block id; write never invalidates it. */
  | "cachesDequantized"
  /** attend remembers each sequence's block count from its first call on a cache. */
  | "firstCallState"
  /** cacheBytesPerBlock counts the codes but not int8 per-token-head scales. */
  | "bytesWithoutScales"
  /** attend does not check that the instance is live: it works after dispose(). */
  | "attendAfterDispose"
  /** copyBlocks copies the first pair only. */
  | "copyOnlyFirstPair"
  /** copyBlocks reads every source before writing any destination (breaks chains). */
  | "copySnapshot"
  /** attend returns a promise that never settles. */
  | "hangsInAttend"
  /** attend spins in a synchronous loop that never ends. */
  | "spinsInAttend"
  /** write crashes (TypeError) on a padding row. */
  | "crashesOnPadding"
  /** createCache ignores the target's extraReasons (serves layers it refuses). */
  | "ignoresExtraReasons"
  // ---- Cache-write encoder faults, see WriteFault ----
  | WriteFault;

/**
 * Encoder bugs a backend author makes in a cache write (write cases). Each is
 * one realistic single bug, planted after the correct codec so that
 * core/codec.ts stays untouched.
 */
export type WriteFault =
  /** fp8 and int8 ties round away from zero instead of to even. */
  | "roundHalfAway"
  /** fp8 and int8 round toward zero. */
  | "truncates"
  /** e4m3: ±inf encodes as NaN instead of saturating to ±448. */
  | "e4m3InfToNan"
  /** e5m2: ±inf saturates to ±57344 instead of staying inf. */
  | "e5m2SaturatesInf"
  /** int8: NaN encodes as -128 instead of the zero point. */
  | "int8NanToMin"
  /** fp8: subnormal results are flushed to (signed) zero. */
  | "flushSubnormals"
  /** -0 is stored as +0 (fp8, fp16, bf16). */
  | "negZeroLost"
  /** V is dequantized with K's scale and zero point. */
  | "vUsesKScale"
  /** roundHalfAway in a backend without readCache: only onehot: cases see it. */
  | "hiddenRoundHalfAway";

/**
 * Capabilities for the capability-edge faults: what they declare beyond
 * what {@linkcode CAPABILITIES} does (head dims to 512, block size 64).
 */
export const EDGE_CAPABILITIES: BackendCapabilities = {
  ...REFERENCE_CAPABILITIES,
  headDims: { multipleOf: 8, min: 8, max: 512 },
  blockSizes: [8, 16, 32, 64],
};

/** Narrower than the reference's, so that undeclared combinations exist. */
export const CAPABILITIES: BackendCapabilities = {
  ...REFERENCE_CAPABILITIES,
  headDims: { multipleOf: 8, min: 8, max: 256 },
  blockSizes: [8, 16, 32],
};

class Cache implements LayerCache {
  readonly codec: Codec;
  readonly keys: CodeArray;
  readonly values: CodeArray;
  readonly kHeadScales: Float32Array;
  readonly vHeadScales: Float32Array;
  constructor(
    readonly config: LayerConfig,
    readonly numBlocks: number,
    readonly scales: LayerKvScales,
  ) {
    this.codec = codecFor(config.kvDtype);
    const n = numBlocks * config.blockSize * config.numKvHeads;
    this.keys = this.codec.allocate(n * config.headDim);
    this.values = this.codec.allocate(n * config.headDim);
    this.kHeadScales = new Float32Array(n);
    this.vHeadScales = new Float32Array(n);
  }
}

function createFaulty(
  fault: Fault,
  CAPABILITIES: BackendCapabilities,
  extraReasons?: (layer: LayerConfig) => readonly string[],
): AttentionBackend<Cache> {
  let disposed = false;
  // ---- Contract and runner faults: their state ----
  const memos = new WeakMap<Cache, Map<string, Float32Array[]>>();
  const firstBlocks = new WeakMap<Cache, number[]>();
  /** get() as attend sees it: through the stale memo under cachesDequantized. */
  const read = (
    cache: Cache,
    which: "k" | "v",
    slot: number,
    inAttend = false,
  ): Float32Array => {
    if (fault !== "cachesDequantized") {
      return get(cache, which, slot, inAttend);
    }
    const bs = cache.config.blockSize, block = Math.floor(slot / bs);
    const memo = memos.get(cache) ?? new Map<string, Float32Array[]>();
    memos.set(cache, memo);
    let rows = memo.get(`${which}${block}`);
    if (!rows) {
      rows = Array.from(
        { length: bs },
        (_, o) => get(cache, which, block * bs + o, inAttend),
      );
      memo.set(`${which}${block}`, rows);
    }
    return rows[slot % bs];
  };
  // ---- end of the contract faults' state ----
  const pth = (c: LayerConfig) =>
    c.kvDtype === "int8" && c.int8Scheme === "per_token_head";
  const row = (c: LayerConfig) => c.numKvHeads * c.headDim;
  // The int32Offsets bug: C's `int offset = slot * row`, which wraps.
  const offset = (slot: number, r: number) =>
    fault === "int32Offsets" ? Math.imul(slot, r) : slot * r;
  const put = (
    cache: Cache,
    which: "k" | "v",
    slot: number,
    x: Float32Array,
  ) => {
    const c = cache.config, r = row(c);
    const codes = (which === "k" ? cache.keys : cache.values).subarray(
      offset(slot, r),
      offset(slot, r) + r,
    );
    if (pth(c)) {
      const s = (which === "k" ? cache.kHeadScales : cache.vHeadScales)
        .subarray(slot * c.numKvHeads, (slot + 1) * c.numKvHeads);
      quantizeInt8PerTokenHead(x, 1, c.numKvHeads, c.headDim, {
        codes: codes as Int8Array,
        scales: s,
      });
      plantWriteFault(
        fault,
        c,
        x,
        codes,
        (i) => s[Math.floor(i / c.headDim)],
        0,
      );
    } else {
      const sc = which === "k" ? cache.scales.kScale : cache.scales.vScale;
      const zp = which === "k"
        ? cache.scales.kZeroPoint
        : cache.scales.vZeroPoint;
      cache.codec.encodeArray(x, codes, sc, zp);
      plantWriteFault(fault, c, x, codes, () => sc, zp);
    }
  };
  const get = (
    cache: Cache,
    which: "k" | "v",
    slot: number,
    inAttend = false,
  ): Float32Array => {
    const c = cache.config, r = row(c);
    const codes = (which === "k" ? cache.keys : cache.values).subarray(
      offset(slot, r),
      offset(slot, r) + r,
    );
    const out = new Float32Array(r);
    // The attendVUsesKScale bug: V's dequantization copied from K's.
    const kForV = fault === "attendVUsesKScale" && inAttend;
    const scaleOf = kForV ? "k" : which;
    if (pth(c)) {
      const s = (scaleOf === "k" ? cache.kHeadScales : cache.vHeadScales)
        .subarray(slot * c.numKvHeads, (slot + 1) * c.numKvHeads);
      return dequantizeInt8PerTokenHead(
        codes as Int8Array,
        s,
        1,
        c.numKvHeads,
        c.headDim,
        out,
      );
    }
    // vUsesKScale (write cases): V dequantized with K's scale and zero point,
    // everywhere; attendVUsesKScale (attention cases): only inside attend.
    const asK = scaleOf === "k" || fault === "vUsesKScale";
    const sc = asK ? cache.scales.kScale : cache.scales.vScale;
    const zp = asK ? cache.scales.kZeroPoint : cache.scales.vZeroPoint;
    cache.codec.decodeArray(codes, out, sc, zp);
    if (fault === "scaleTwice" && cache.codec.bytes === 1 && !pth(c)) {
      for (let i = 0; i < r; i++) out[i] = Math.fround(out[i] * sc);
    }
    return out;
  };
  const live = () => {
    if (disposed) throw new Error("Backend faulty was disposed");
  };
  return {
    name: "faulty",
    target: "reference",
    version: "0.0.0",
    capabilities: CAPABILITIES,
    cacheBytesPerBlock: (c) =>
      2 * c.blockSize * row(c) * codecFor(c.kvDtype).bytes +
      (fault === "bytesWithoutScales" ? 0 : 8 * c.blockSize * c.numKvHeads),
    createCache(config: LayerConfig, o: CreateCacheOptions) {
      live();
      if (fault !== "noSupportCheck") {
        assertSupported(
          "faulty",
          CAPABILITIES,
          config,
          fault === "ignoresExtraReasons" ? [] : extraReasons?.(config) ?? [],
        );
      }
      return new Cache(config, o.numBlocks, o.scales);
    },
    write(cache: Cache, input: WriteInput) {
      live();
      const r = row(cache.config);
      const last = cache.numBlocks * cache.config.blockSize - 1;
      input.slotMapping.forEach((slot, t) => {
        const target = slot === -1
          ? (fault === "writesPadding" ? last : -1)
          : slot;
        if (target === -1) {
          if (fault === "crashesOnPadding") {
            // The bug: a per-slot staging row looked up for slot -1.
            const staging: Float32Array[] = [];
            staging[slot].set(input.keys.subarray(t * r, (t + 1) * r));
          }
          return;
        }
        put(cache, "k", target, input.keys.subarray(t * r, (t + 1) * r));
        put(cache, "v", target, input.values.subarray(t * r, (t + 1) * r));
      });
    },
    attend(given: Cache, plan: PlannedBatch, input: AttendInput) {
      if (fault !== "attendAfterDispose") live();
      if (fault === "hangsInAttend") return new Promise<void>(() => {});
      if (fault === "spinsInAttend") {
        let spins = 0;
        while (spins >= 0) spins++;
      }
      // The planHoldsLayer bug: per-layer state cached on the shared plan.
      const held = plan as PlannedBatch & { held?: Cache };
      if (fault === "planHoldsLayer") held.held ??= given;
      const cache = fault === "planHoldsLayer" ? held.held! : given;
      assertBatchSupported("faulty", CAPABILITIES, plan);
      const c = cache.config;
      const group = c.numQHeads / c.numKvHeads;
      const window = c.kind === "sliding_window" && fault !== "ignoresWindow"
        ? c.slidingWindow! + (fault === "windowOffByOne" ? 1 : 0)
        : Infinity;
      const softmaxScale = fault === "ignoresScale"
        ? c.headDim ** -0.5
        : c.scale;
      const dims = fault === "truncatesHeadDim"
        ? Math.min(c.headDim, 256)
        : c.headDim;
      // blockSize64As32: a tile constant leaked into the addressing.
      const bs = fault === "blockSize64As32" && c.blockSize === 64
        ? 32
        : c.blockSize;
      const stride = fault === "strideFromSeqLen"
        ? Math.ceil(plan.maxSeqLen / c.blockSize)
        : plan.maxBlocksPerSeq;
      const cap = fault === "ignoresSoftCap" ? undefined : c.softCap;
      const rows = fault === "skipsLastRow"
        ? plan.numTokens - 1
        : plan.numTokens;
      // The firstCallState bug: block counts kept from the first call.
      const blocksRead = firstBlocks.get(cache) ??
        Array.from(plan.seqLens, (n) => Math.ceil(n / c.blockSize));
      if (fault === "firstCallState") firstBlocks.set(cache, blocksRead);
      for (let t = 0; t < rows; t++) {
        const s = plan.tokenSeq[t];
        const pos = plan.tokenPos[t];
        const seqLen = plan.seqLens[s];
        const end = fault === "causalOffByOne"
          ? Math.min(pos + 1, seqLen - 1)
          : pos;
        const first = Math.max(0, pos - window + 1);
        const table = s * stride;
        const slotOf = (j: number) =>
          plan.blockTables[table + Math.floor(j / bs)] * c.blockSize +
          (j % bs);
        const ks: Float32Array[] = [], vs: Float32Array[] = [];
        for (let j = first; j <= end; j++) {
          if (
            fault === "firstCallState" &&
            Math.floor(j / c.blockSize) >= blocksRead[s]
          ) continue;
          (ks.push(read(cache, "k", slotOf(j), true)),
            vs.push(read(cache, "v", slotOf(j), true)));
        }
        if (fault === "tableOverread" && seqLen - pos === 1) {
          // The bug: a decode also reads the table entry after its last block
          // (the next row's first entry, or -1 wrapped like an unsigned index).
          const past =
            plan.blockTables[table + Math.ceil(seqLen / c.blockSize)] ?? -1;
          const block = (past + cache.numBlocks) % cache.numBlocks;
          for (let o = 0; o < c.blockSize; o++) {
            ks.push(get(cache, "k", block * c.blockSize + o));
            vs.push(get(cache, "v", block * c.blockSize + o));
          }
        }
        for (let h = 0; h < c.numQHeads; h++) {
          const kvh = fault === "gqaMapping"
            ? h % c.numKvHeads
            : fault === "pow2Group"
            ? h >> Math.floor(Math.log2(group))
            : Math.floor(h / group);
          const q = input.query.subarray(
            (t * c.numQHeads + h) * c.headDim,
            (t * c.numQHeads + h + 1) * c.headDim,
          );
          const logits = ks.map((k) => {
            let dot = 0;
            for (let d = 0; d < dims; d++) {
              dot += q[d] * k[kvh * c.headDim + d];
            }
            const x = dot * softmaxScale;
            return cap === undefined ? x : cap * Math.tanh(x / cap);
          });
          const noMax = fault === "noMaxSubtraction" ||
            fault === "noMaxSubtractionF32";
          const max = noMax ? 0 : Math.max(...logits);
          const w = logits.map((x) =>
            fault === "noMaxSubtractionF32"
              ? Math.fround(Math.exp(Math.fround(x)))
              : Math.exp(x - max)
          );
          const z = w.reduce((a, b) => a + b, 0);
          for (let d = 0; d < c.headDim; d++) {
            let acc = 0;
            for (let j = 0; j < vs.length; j++) {
              acc += w[j] * vs[j][kvh * c.headDim + d];
            }
            input.out[(t * c.numQHeads + h) * c.headDim + d] = acc / z;
          }
        }
      }
    },
    copyBlocks(cache: Cache, pairs: Int32Array) {
      live();
      const c = cache.config,
        n = c.blockSize * row(c),
        m = c.blockSize * c.numKvHeads;
      // The copySnapshot bug: every source is read before any write.
      const snapshot = fault === "copySnapshot"
        ? { keys: cache.keys.slice(), values: cache.values.slice() }
        : undefined;
      const count = fault === "copyOnlyFirstPair"
        ? Math.min(2, pairs.length)
        : pairs.length;
      for (let i = 0; i < count; i += 2) {
        const [src, dst] = [pairs[i], pairs[i + 1]];
        if (snapshot) {
          cache.keys.set(
            snapshot.keys.subarray(src * n, (src + 1) * n),
            dst * n,
          );
          cache.values.set(
            snapshot.values.subarray(src * n, (src + 1) * n),
            dst * n,
          );
          continue;
        }
        cache.keys.copyWithin(dst * n, src * n, (src + 1) * n);
        cache.values.copyWithin(dst * n, src * n, (src + 1) * n);
        if (fault !== "copyDropsScales") {
          cache.kHeadScales.copyWithin(dst * m, src * m, (src + 1) * m);
          cache.vHeadScales.copyWithin(dst * m, src * m, (src + 1) * m);
        }
      }
    },
    readCache(cache: Cache, slots: Int32Array): CacheReadout {
      live();
      const r = row(cache.config);
      const keys = new Float32Array(slots.length * r),
        values = new Float32Array(slots.length * r);
      slots.forEach((
        slot,
        i,
      ) => (keys.set(get(cache, "k", slot), i * r),
        values.set(get(cache, "v", slot), i * r))
      );
      return { keys, values };
    },
    dispose() {
      disposed = true;
    },
  };
}

/**
 * A backend definition with one planted fault (or none), optionally with
 * a target `extraReasons` that createCache enforces, as the tutorial says.
 */
export function faultyBackend(
  fault: Fault,
  capabilities: BackendCapabilities = CAPABILITIES,
  extraReasons?: (layer: LayerConfig) => readonly string[],
): BackendDefinition {
  return defineBackend({
    apiVersion: BACKEND_API_VERSION,
    name: "faulty",
    version: "0.0.0",
    description: `conformance mutant: ${fault}`,
    // Unguarded: the core guard would supply the disposal, support and
    // extraReasons checks that noSupportCheck, attendAfterDispose and
    // ignoresExtraReasons leave out, and the mutants must show that the
    // suite fails a backend reached without the guard (a direct instance).
    // core/backend_guard_test.ts shows the guard catches these mutants.
    targets: [unguardedForTests({
      target: "reference",
      capabilities,
      ...(extraReasons ? { extraReasons } : {}),
      probe: () => ({ available: true }),
      create: () =>
        hideReadCache(fault, createFaulty(fault, capabilities, extraReasons)),
    })],
  });
}

// ---- Cache-write faults: the planted encoder bugs ----

/** hiddenRoundHalfAway: the same backend with readCache removed. */
function hideReadCache(
  fault: Fault,
  backend: AttentionBackend<Cache>,
): AttentionBackend<Cache> {
  if (fault !== "hiddenRoundHalfAway") return backend;
  const { readCache: _, ...rest } = backend;
  return rest;
}

const FP8_FAULTY = {
  fp8_e4m3: { last: 0x7e, expMask: 0x78 },
  fp8_e5m2: { last: 0x7b, expMask: 0x7c },
} as const;

/**
 * Rewrites the correct codes of one written row the way the planted encoder
 * bug would have produced them. scaleOf(i) is element i's scale.
 */
function plantWriteFault(
  fault: Fault,
  c: LayerConfig,
  x: Float32Array,
  codes: CodeArray,
  scaleOf: (i: number) => number,
  zp: number,
): void {
  const f = fault === "hiddenRoundHalfAway" ? "roundHalfAway" : fault;
  if (c.kvDtype === "fp16" || c.kvDtype === "bf16") {
    if (f !== "negZeroLost") return;
    for (let i = 0; i < x.length; i++) if (codes[i] === 0x8000) codes[i] = 0;
    return;
  }
  const codec = codecFor(c.kvDtype);
  for (let i = 0; i < x.length; i++) {
    const s = Math.fround(scaleOf(i));
    const y = Math.fround(x[i] / s);
    if (c.kvDtype === "int8") {
      codes[i] = faultyInt8(f, y, zp, codes[i]);
      continue;
    }
    if (c.kvDtype !== "fp8_e4m3" && c.kvDtype !== "fp8_e5m2") continue;
    const fmt = FP8_FAULTY[c.kvDtype];
    const code = codes[i], sign = code & 0x80, mag = code & 0x7f;
    const value = (m: number) => codec.decode(m, 1, 0);
    const a = Math.abs(y);
    if (f === "roundHalfAway" && mag < fmt.last) {
      // A tie that went to the even code below goes up instead.
      if (a === (value(mag) + value(mag + 1)) / 2) codes[i] = sign | (mag + 1);
    } else if (f === "truncates" && mag > 0 && mag <= fmt.last) {
      if (value(mag) > a) codes[i] = sign | (mag - 1);
    } else if (f === "e4m3InfToNan" && c.kvDtype === "fp8_e4m3") {
      if (a === Infinity) codes[i] = 0x7f;
    } else if (f === "e5m2SaturatesInf" && c.kvDtype === "fp8_e5m2") {
      if (a === Infinity) codes[i] = sign | 0x7b;
    } else if (f === "flushSubnormals") {
      if ((mag & fmt.expMask) === 0) codes[i] = sign;
    } else if (f === "negZeroLost") {
      if (code === 0x80) codes[i] = 0;
    }
  }
}

function faultyInt8(f: Fault, y: number, zp: number, code: number): number {
  const clamp = (q: number) => Math.max(-128, Math.min(127, q));
  if (f === "int8NanToMin" && y !== y) return -128;
  if (!isFinite(y)) return code;
  if (f === "roundHalfAway" && Math.abs(y % 1) === 0.5) {
    return clamp(Math.sign(y) * Math.ceil(Math.abs(y)) + zp);
  }
  if (f === "truncates") return clamp(Math.trunc(y) + zp);
  return code;
}
