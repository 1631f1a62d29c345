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
  REFERENCE_CAPABILITIES,
  type WriteInput,
} from "../../mod.ts";

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
  // ---- Contract and runner faults (stream H3) ----
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
  | "ignoresExtraReasons";

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
  // ---- Contract and runner faults (stream H3): their state ----
  const memos = new WeakMap<Cache, Map<string, Float32Array[]>>();
  const firstBlocks = new WeakMap<Cache, number[]>();
  /** get() as attend sees it: through the stale memo under cachesDequantized. */
  const read = (
    cache: Cache,
    which: "k" | "v",
    slot: number,
  ): Float32Array => {
    if (fault !== "cachesDequantized") return get(cache, which, slot);
    const bs = cache.config.blockSize, block = Math.floor(slot / bs);
    const memo = memos.get(cache) ?? new Map<string, Float32Array[]>();
    memos.set(cache, memo);
    let rows = memo.get(`${which}${block}`);
    if (!rows) {
      rows = Array.from(
        { length: bs },
        (_, o) => get(cache, which, block * bs + o),
      );
      memo.set(`${which}${block}`, rows);
    }
    return rows[slot % bs];
  };
  // ---- end of H3 state ----
  const pth = (c: LayerConfig) =>
    c.kvDtype === "int8" && c.int8Scheme === "per_token_head";
  const row = (c: LayerConfig) => c.numKvHeads * c.headDim;
  const put = (
    cache: Cache,
    which: "k" | "v",
    slot: number,
    x: Float32Array,
  ) => {
    const c = cache.config, r = row(c);
    const codes = (which === "k" ? cache.keys : cache.values).subarray(
      slot * r,
      (slot + 1) * r,
    );
    if (pth(c)) {
      const s = (which === "k" ? cache.kHeadScales : cache.vHeadScales)
        .subarray(slot * c.numKvHeads, (slot + 1) * c.numKvHeads);
      quantizeInt8PerTokenHead(x, 1, c.numKvHeads, c.headDim, {
        codes: codes as Int8Array,
        scales: s,
      });
    } else {
      const sc = which === "k" ? cache.scales.kScale : cache.scales.vScale;
      const zp = which === "k"
        ? cache.scales.kZeroPoint
        : cache.scales.vZeroPoint;
      cache.codec.encodeArray(x, codes, sc, zp);
    }
  };
  const get = (cache: Cache, which: "k" | "v", slot: number): Float32Array => {
    const c = cache.config, r = row(c);
    const codes = (which === "k" ? cache.keys : cache.values).subarray(
      slot * r,
      (slot + 1) * r,
    );
    const out = new Float32Array(r);
    if (pth(c)) {
      const s = (which === "k" ? cache.kHeadScales : cache.vHeadScales)
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
    const sc = which === "k" ? cache.scales.kScale : cache.scales.vScale;
    const zp = which === "k"
      ? cache.scales.kZeroPoint
      : cache.scales.vZeroPoint;
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
        ? c.slidingWindow!
        : Infinity;
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
        const table = s * plan.maxBlocksPerSeq;
        const slotOf = (j: number) =>
          plan.blockTables[table + Math.floor(j / c.blockSize)] * c.blockSize +
          (j % c.blockSize);
        const ks: Float32Array[] = [], vs: Float32Array[] = [];
        for (let j = first; j <= end; j++) {
          if (
            fault === "firstCallState" &&
            Math.floor(j / c.blockSize) >= blocksRead[s]
          ) continue;
          (ks.push(read(cache, "k", slotOf(j))),
            vs.push(read(cache, "v", slotOf(j))));
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
            : Math.floor(h / group);
          const q = input.query.subarray(
            (t * c.numQHeads + h) * c.headDim,
            (t * c.numQHeads + h + 1) * c.headDim,
          );
          const logits = ks.map((k) => {
            let dot = 0;
            for (let d = 0; d < c.headDim; d++) {
              dot += q[d] * k[kvh * c.headDim + d];
            }
            const x = dot * c.scale;
            return cap === undefined ? x : cap * Math.tanh(x / cap);
          });
          const max = Math.max(...logits);
          const w = logits.map((x) => Math.exp(x - max));
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
    targets: [{
      target: "reference",
      capabilities,
      ...(extraReasons ? { extraReasons } : {}),
      probe: () => ({ available: true }),
      create: () => createFaulty(fault, capabilities, extraReasons),
    }],
  });
}
