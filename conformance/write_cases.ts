/**
 * Cache-write cases: K/V scattered through a random slot mapping with
 * padding, read back through the backend's dequantized view and compared
 * EXACTLY with the core codec's own encode-then-decode of the input; slots
 * not written must not change. Two kinds of input: random data (K and V from
 * different ranges, with their own scales and zero points) and crafted
 * values (conformance/special_values.ts: every tie, the inputs beside each,
 * ±0, subnormals, values past the max, ±inf, NaN).
 *
 * @module
 */

import { codecFor } from "../core/codec.ts";
import { dtypeInfo } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import { estimateScales, type LayerKvScales } from "../core/scales.ts";
import { type CaseTarget, reasonsFor } from "./reasons.ts";
import type { CaseContext, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { CACHE_KINDS, type CacheKind, cacheKindInfo } from "./cache_kinds.ts";
import { BLOCK_SIZES, caseDefaults, HEAD_DIMS } from "./defaults.ts";
import { caseAddress, params } from "./params.ts";
import { expectedDequantized, poisonValue, shuffle } from "./scenario.ts";
import {
  CRAFTED_SCALES,
  craftedFor,
  type CraftedScale,
  type CraftedValues,
} from "./special_values.ts";

/** Scale choices: 1.0, amax-based, 16x smaller (saturates), 64x larger (tiny codes). */
const SCALE_KINDS = ["one", "amax", "small", "large"] as const;
type ScaleKind = typeof SCALE_KINDS[number];

interface WriteParams {
  cache: CacheKind;
  /** Crafted values at fixed scales instead of random data. */
  input?: "crafted";
  scale: ScaleKind | CraftedScale;
  headDim: number;
  blockSize: number;
  numKvHeads: number;
}

/**
 * The rule every write case checks, for failure and skip messages.
 */
export const EXACT_RULE =
  "the readout must equal, element by element with Object.is (NaN equals NaN, +0 and -0 differ), the core codec's encode-then-decode of the input (core/codec.ts; int8 per_token_head: core/int8.ts); decoding is fp32(code * scale) (int8: fp32((q - zeroPoint) * scale)), so at these scales equal decoded values mean equal codes";

/** The write cases for one target's capabilities. */
export function writeCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
  const d = caseDefaults(caps);
  const base = { headDim: d.headDim, blockSize: d.blockSize, numKvHeads: 2 };
  const quantized = (c: CacheKind) =>
    dtypeInfo(cacheKindInfo(c).dtype).quantized;
  const rows: WriteParams[] = [
    ...params().combine("cache", CACHE_KINDS).combine("scale", SCALE_KINDS)
      .filter((r) =>
        quantized(r.cache) && r.cache !== "int8_pth" || r.scale === "amax"
      )
      .rows.map((r) => ({ ...r, ...base })),
    // Crafted inputs: 8-bit formats at a power-of-two and an odd scale,
    // 16/32-bit formats (which ignore scales) once.
    ...CACHE_KINDS.flatMap((cache) =>
      (quantized(cache) ? (["pow2", "odd"] as const) : (["one"] as const)).map((
        scale,
      ) => ({ cache, input: "crafted" as const, scale, ...base }))
    ),
    ...HEAD_DIMS.map((headDim) => ({
      cache: "fp8_e4m3" as CacheKind,
      scale: "amax" as ScaleKind,
      ...base,
      headDim,
    })),
    ...BLOCK_SIZES.map((blockSize) => ({
      cache: "int8_pth" as CacheKind,
      scale: "amax" as ScaleKind,
      ...base,
      blockSize,
    })),
    ...[1, 8].map((numKvHeads) => ({
      cache: d.kvDtype as CacheKind,
      scale: "amax" as ScaleKind,
      ...base,
      numKvHeads,
    })),
  ];
  const seen = new Set<string>();
  return rows.flatMap((p) => {
    const address = caseAddress("write", { ...p });
    if (seen.has(address)) return [];
    seen.add(address);
    const layer = layerFor(p);
    const reasons = reasonsFor(target, layer);
    return [{
      address,
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      needsReadCache: true,
      run: (ctx: CaseContext) => runWrite(ctx, layer, p),
    }];
  });
}

function layerFor(p: WriteParams): LayerConfig {
  const info = cacheKindInfo(p.cache);
  return {
    index: 0,
    kind: "full",
    numQHeads: p.numKvHeads,
    numKvHeads: p.numKvHeads,
    headDim: p.headDim,
    scale: p.headDim ** -0.5,
    kvDtype: info.dtype,
    blockSize: p.blockSize,
    ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
  };
}

/** K in [-1, 1] (zero point: [-0.5, 1.5]), V in [-0.3, 2.5]: different scales and zero points. */
const K_RANGE = { plain: [-1, 1], zeroPoint: [-0.5, 1.5] } as const;
const V_RANGE = [-0.3, 2.5] as const;

function randomScales(
  p: WriteParams,
  keys: Float32Array,
  values: Float32Array,
  layer: LayerConfig,
): LayerKvScales {
  const info = cacheKindInfo(p.cache);
  const est = estimateScales(keys, values, layer.kvDtype, {
    zeroPoint: info.zeroPoint,
  });
  const factor = { one: 0, amax: 1, small: 1 / 16, large: 64 }[
    p.scale as ScaleKind
  ];
  if (factor === 0) {
    return { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };
  }
  return {
    kScale: Math.fround(est.kScale * factor),
    vScale: Math.fround(est.vScale * factor),
    kZeroPoint: est.kZeroPoint,
    vZeroPoint: est.vZeroPoint,
  };
}

/** The crafted scales of a case: 16/32-bit caches ignore them; zero points only with int8_zp. */
export function craftedScales(
  cache: CacheKind,
  scale: CraftedScale | "one",
): LayerKvScales {
  if (scale === "one") {
    return { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 };
  }
  const s = CRAFTED_SCALES[scale];
  const zp = cacheKindInfo(cache).zeroPoint;
  return {
    kScale: s.kScale,
    vScale: s.vScale,
    kZeroPoint: zp ? s.kZeroPoint : 0,
    vZeroPoint: zp ? s.vZeroPoint : 0,
  };
}

/** Crafted K and V for a layer, cycled to whole tokens of numKvHeads * headDim. */
export function craftedKv(
  layer: LayerConfig,
  scales: LayerKvScales,
): {
  keys: CraftedValues;
  values: CraftedValues;
  tokens: number;
} {
  const side = (scale: number, zeroPoint: number) =>
    craftedFor({
      kvDtype: layer.kvDtype,
      perTokenHead: layer.int8Scheme === "per_token_head",
      scale,
      zeroPoint,
      headDim: layer.headDim,
    });
  const k = side(scales.kScale, scales.kZeroPoint);
  const v = side(scales.vScale, scales.vZeroPoint);
  const row = layer.numKvHeads * layer.headDim;
  const tokens = Math.ceil(Math.max(k.x.length, v.x.length) / row);
  return {
    keys: cycle(k, tokens * row),
    values: cycle(v, tokens * row),
    tokens,
  };
}

function cycle(c: CraftedValues, n: number): CraftedValues {
  const bits = new Uint32Array(c.x.buffer, c.x.byteOffset, c.x.length);
  const out = new Uint32Array(n);
  const why: string[] = [];
  for (let i = 0; i < n; i++) {
    out[i] = bits[i % bits.length];
    why.push(c.why[i % c.why.length]);
  }
  return { x: new Float32Array(out.buffer), why };
}

async function runWrite(ctx: CaseContext, layer: LayerConfig, p: WriteParams) {
  const { backend, rand } = ctx;
  if (!backend.readCache) {
    return skipNoRead();
  }
  const row = layer.numKvHeads * layer.headDim;
  const uniform = (n: number, [lo, hi]: readonly [number, number]) =>
    Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
  const kRange = cacheKindInfo(p.cache).zeroPoint
    ? K_RANGE.zeroPoint
    : K_RANGE.plain;
  let keys: Float32Array, values: Float32Array, scales: LayerKvScales;
  let whyK: readonly string[] | undefined, whyV: readonly string[] | undefined;
  let n: number, numBlocks: number;
  if (p.input === "crafted") {
    scales = craftedScales(p.cache, p.scale as CraftedScale | "one");
    const c = craftedKv(layer, scales);
    (keys = c.keys.x, values = c.values.x, n = c.tokens);
    (whyK = c.keys.why, whyV = c.values.why);
    numBlocks = Math.max(6, Math.ceil((n * 3) / 2 / layer.blockSize));
  } else {
    numBlocks = 6;
    n = Math.min(numBlocks * layer.blockSize - 2, 2 * layer.blockSize + 3);
    keys = uniform(n * row, kRange);
    values = uniform(n * row, V_RANGE);
    scales = randomScales(p, keys, values, layer);
  }
  const numSlots = numBlocks * layer.blockSize;
  const cache = await backend.createCache(layer, { numBlocks, scales });
  try {
    // Background: every slot holds valid data first, so a write that lands
    // in the wrong slot, or a padding row that gets written, shows.
    const all = Int32Array.from({ length: numSlots }, (_, i) => i);
    const half = (r: readonly [number, number]) =>
      uniform(numSlots * row, r).map((x) => x / 2);
    await backend.write(cache, {
      keys: half(kRange),
      values: half(V_RANGE),
      slotMapping: all,
    });
    const before = await backend.readCache(cache, all);

    const slots = shuffle(rand, [...Array(numSlots).keys()]).slice(0, n);
    const mapping: number[] = [];
    const rowsK: Float32Array[] = [], rowsV: Float32Array[] = [];
    const poison = new Float32Array(row).fill(poisonValue(layer));
    for (let t = 0; t < n; t++) {
      if (rand() < 0.25) {
        (mapping.push(-1), rowsK.push(poison), rowsV.push(poison));
      }
      mapping.push(slots[t]);
      rowsK.push(keys.subarray(t * row, (t + 1) * row));
      rowsV.push(values.subarray(t * row, (t + 1) * row));
    }
    const flat = (rs: Float32Array[]) => {
      const out = new Float32Array(rs.length * row);
      rs.forEach((r, i) => out.set(r, i * row));
      return out;
    };
    await backend.write(cache, {
      keys: flat(rowsK),
      values: flat(rowsV),
      slotMapping: Int32Array.from(mapping),
    });
    const after = await backend.readCache(cache, all);

    for (
      const [which, data, read, scale, zp, why] of [
        ["keys", keys, after.keys, scales.kScale, scales.kZeroPoint, whyK],
        [
          "values",
          values,
          after.values,
          scales.vScale,
          scales.vZeroPoint,
          whyV,
        ],
      ] as const
    ) {
      const expected = new Float32Array(
        which === "keys" ? before.keys : before.values,
      );
      const rounded = expectedDequantized(layer, data, scale, zp);
      const tokenOf = new Map<number, number>();
      for (let t = 0; t < n; t++) {
        expected.set(rounded.subarray(t * row, (t + 1) * row), slots[t] * row);
        tokenOf.set(slots[t], t);
      }
      const describe = (i: number) => {
        const slot = Math.floor(i / row), e = i % row;
        const where = `${which} slot ${slot} head ${
          Math.floor(e / layer.headDim)
        } dim ${e % layer.headDim}`;
        const t = tokenOf.get(slot);
        if (t === undefined) return `${where} (not written: must be unchanged)`;
        const at = t * row + e;
        return `${where}: input ${show(data[at])}${why ? ` [${why[at]}]` : ""}`;
      };
      const codes = codeNamer(layer, scale, zp);
      const c = compareExact(read, expected, describe, codes);
      if (c.mismatches > 0) {
        throw new ConformanceFailure(
          `${c.mismatches} ${which} elements read back wrong (${
            which === "keys" ? "K" : "V"
          } scale ${scale}, zero point ${zp}; labels in [] are in units of x / scale):\n${c.table}\n  exact rule: ${EXACT_RULE}`,
        );
      }
    }
    return { tokens: n };
  } finally {
    await backend.disposeCache?.(cache);
  }
}

/** For per-tensor 8-bit caches, names the code a decoded value comes from. */
function codeNamer(
  layer: LayerConfig,
  scale: number,
  zp: number,
): (v: number) => string {
  if (
    !dtypeInfo(layer.kvDtype).quantized || layer.int8Scheme === "per_token_head"
  ) {
    return () => "";
  }
  const codec = codecFor(layer.kvDtype);
  const byValue: [number, number][] = [];
  const lo = layer.kvDtype === "int8" ? -128 : 0, hi = lo + 255;
  for (let c = lo; c <= hi; c++) byValue.push([codec.decode(c, scale, zp), c]);
  return (v) => {
    const hit = byValue.find(([x]) => Object.is(x, v) || (v !== v && x !== x));
    if (!hit) return " (no code decodes to this)";
    const c = hit[1];
    return layer.kvDtype === "int8"
      ? ` (code ${c})`
      : ` (code 0x${c.toString(16).padStart(2, "0")})`;
  };
}

/** Object.is element by element (NaN equals NaN; +0 and -0 differ). */
function compareExact(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  describe: (i: number) => string,
  code: (v: number) => string,
): { mismatches: number; table: string } {
  if (actual.length !== expected.length) {
    return {
      mismatches: Math.max(actual.length, expected.length),
      table: `  length: actual ${actual.length} expected ${expected.length}`,
    };
  }
  let mismatches = 0;
  const rows: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Object.is(a, e)) continue;
    mismatches++;
    if (rows.length < 8) {
      rows.push(
        `  ${describe(i)} -> actual ${show(a)}${code(a)} expected ${show(e)}${
          code(e)
        }`,
      );
    }
  }
  if (mismatches > rows.length) {
    rows.push(`  ... and ${mismatches - rows.length} more`);
  }
  return { mismatches, table: rows.join("\n") };
}

const show = (v: number) => Object.is(v, -0) ? "-0" : String(v);

/**
 * Marker error: the case needs readCache and the backend has none (the
 * runner skips such cases before they run; this guards direct callers).
 */
export class NeedsReadCache extends Error {
  constructor() {
    super(NO_READ_CACHE);
    this.name = "NeedsReadCache";
  }
}

/** What is lost without readCache; kept beside the onehot: cases' bounds it describes. */
const NO_READ_CACHE =
  "the backend has no readCache, so stored codes cannot be checked exactly; the onehot: cases check the same crafted 8-bit inputs through attention instead, which is weaker: a value must only land within a quarter of the gap to its neighbouring codes (K recovered from a softmax ratio, V read through a one-key softmax), +0 and -0 cannot be told apart, infinite keys cannot be probed, 16/32-bit caches get no crafted check, and slots outside the attended sequences are not checked";

function skipNoRead(): never {
  throw new NeedsReadCache();
}
