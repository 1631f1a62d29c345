/**
 * Cache-write cases: K/V scattered through a random slot mapping with
 * padding, read back through the backend's dequantized view, compared with
 * the format's rounding bound; slots not written must not change.
 *
 * @module
 */

import {
  type BackendCapabilities,
  unsupportedReasons,
} from "../core/capabilities.ts";
import { dtypeInfo } from "../core/dtype.ts";
import type { LayerConfig } from "../core/layer.ts";
import { estimateScales, type LayerKvScales } from "../core/scales.ts";
import type { CaseContext, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { CACHE_KINDS, type CacheKind, cacheKindInfo } from "./cache_kinds.ts";
import { compareArrays } from "./compare.ts";
import { BLOCK_SIZES, caseDefaults, HEAD_DIMS } from "./defaults.ts";
import { caseAddress, params } from "./params.ts";
import { expectedDequantized, poisonValue } from "./scenario.ts";
import { writeErrorBound } from "./tolerances.ts";

/** Scale choices: 1.0, amax-based, 16x smaller (saturates), 64x larger (tiny codes). */
const SCALE_KINDS = ["one", "amax", "small", "large"] as const;
type ScaleKind = typeof SCALE_KINDS[number];

interface WriteParams {
  cache: CacheKind;
  scale: ScaleKind;
  headDim: number;
  blockSize: number;
  numKvHeads: number;
}

/** The write cases for one target's capabilities. */
export function writeCases(caps: BackendCapabilities): ConformanceCase[] {
  const d = caseDefaults(caps);
  const base = { headDim: d.headDim, blockSize: d.blockSize, numKvHeads: 2 };
  const rows: WriteParams[] = [
    ...params().combine("cache", CACHE_KINDS).combine("scale", SCALE_KINDS)
      .filter((r) =>
        dtypeInfo(cacheKindInfo(r.cache).dtype).quantized &&
          r.cache !== "int8_pth" || r.scale === "amax"
      ).rows.map((r) => ({ ...r, ...base })),
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
    const reasons = unsupportedReasons(caps, layer);
    return [{
      address,
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
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

function scalesFor(
  p: WriteParams,
  keys: Float32Array,
  values: Float32Array,
  layer: LayerConfig,
): LayerKvScales {
  const info = cacheKindInfo(p.cache);
  const est = estimateScales(keys, values, layer.kvDtype, {
    zeroPoint: info.zeroPoint,
  });
  const factor = { one: 0, amax: 1, small: 1 / 16, large: 64 }[p.scale];
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

async function runWrite(ctx: CaseContext, layer: LayerConfig, p: WriteParams) {
  const { backend, rand } = ctx;
  if (!backend.readCache) {
    return skipNoRead();
  }
  const row = layer.numKvHeads * layer.headDim;
  const numBlocks = 6;
  const numSlots = numBlocks * layer.blockSize;
  const [lo, hi] = cacheKindInfo(p.cache).zeroPoint ? [-0.5, 1.5] : [-1, 1];
  const gen = (n: number) =>
    Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
  const n = Math.min(numSlots - 2, 2 * layer.blockSize + 3);
  const keys = gen(n * row), values = gen(n * row);
  const scales = scalesFor(p, keys, values, layer);
  const cache = await backend.createCache(layer, { numBlocks, scales });
  try {
    // Background: every slot holds valid data first, so a write that lands
    // in the wrong slot, or a padding row that gets written, shows.
    const all = Int32Array.from({ length: numSlots }, (_, i) => i);
    const bg = gen(numSlots * row).map((x) => x / 2);
    await backend.write(cache, { keys: bg, values: bg, slotMapping: all });
    const before = await backend.readCache(cache, all);

    const slots = shuffled(rand, numSlots).slice(0, n);
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

    let maxErr = 0;
    const quantized = dtypeInfo(layer.kvDtype).quantized;
    for (
      const [which, data, read, scale, zp] of [
        ["keys", keys, after.keys, scales.kScale, scales.kZeroPoint],
        ["values", values, after.values, scales.vScale, scales.vZeroPoint],
      ] as const
    ) {
      const expected = new Float32Array(numSlots * row);
      expected.set(which === "keys" ? before.keys : before.values);
      const input = new Float32Array(numSlots * row);
      const exact = new Set<number>();
      for (let t = 0; t < n; t++) {
        const at = slots[t] * row;
        input.set(data.subarray(t * row, (t + 1) * row), at);
        // 16/32-bit: the exact codec result; 8-bit: the original, within
        // the format's rounding.
        expected.set(
          quantized
            ? data.subarray(t * row, (t + 1) * row)
            : expectedDequantized(
              layer,
              data.subarray(t * row, (t + 1) * row),
              scale,
              zp,
            ),
          at,
        );
        exact.add(slots[t]);
      }
      const bound = boundFor(layer, input, scale, zp, exact, row);
      const c = compareArrays(
        read,
        expected,
        bound,
        (i) =>
          `${which} slot ${Math.floor(i / row)} element ${i % row}${
            exact.has(Math.floor(i / row))
              ? ""
              : " (not written: must be unchanged)"
          }`,
      );
      maxErr = Math.max(maxErr, c.maxAbsError);
      if (!c.ok) {
        throw new ConformanceFailure(
          `${c.mismatches} ${which} elements read back wrong (bound: ${
            describeBound(layer)
          }):\n${c.table}`,
        );
      }
    }
    return { maxAbsError: maxErr };
  } finally {
    await backend.disposeCache?.(cache);
  }
}

/**
 * Exact for 16/32-bit caches and for slots that were not written; for 8-bit,
 * the format's rounding of the original value.
 */
function boundFor(
  layer: LayerConfig,
  input: Float32Array,
  scale: number,
  zp: number,
  written: ReadonlySet<number>,
  row: number,
): (i: number) => number {
  if (!dtypeInfo(layer.kvDtype).quantized) return () => 0;
  const perTokenHead = layer.int8Scheme === "per_token_head";
  return (i) => {
    const slot = Math.floor(i / row);
    if (!written.has(slot)) return 0;
    if (perTokenHead) {
      const h = Math.floor((i % row) / layer.headDim);
      let amax = 0;
      for (let d = 0; d < layer.headDim; d++) {
        amax = Math.max(
          amax,
          Math.abs(input[slot * row + h * layer.headDim + d]),
        );
      }
      // Half a step of the head's own scale, amax / 127, plus fp32 slack.
      return (0.5 * amax / 127) * (1 + 2 ** -20);
    }
    return writeErrorBound(layer.kvDtype, input[i], scale, zp);
  };
}

function describeBound(layer: LayerConfig): string {
  if (!dtypeInfo(layer.kvDtype).quantized) return "bit-exact";
  return layer.int8Scheme === "per_token_head"
    ? "half an int8 step of amax/127 per token and head"
    : `half a ${layer.kvDtype} unit in the last place at x/scale, times scale`;
}

function shuffled(rand: () => number, n: number): number[] {
  const a = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Marker error: the case needs readCache and the backend has none. */
export class NeedsReadCache extends Error {
  constructor() {
    super(
      "the backend has no readCache: cache writes are checked through the attention cases only",
    );
    this.name = "NeedsReadCache";
  }
}

function skipNoRead(): never {
  throw new NeedsReadCache();
}
