/**
 * Attention cases: decode, prefill and mixed batches over shuffled blocks
 * with poisoned neighbours, checked against the fp64 oracle on the
 * backend's own dequantized cache (kernel error), and against the oracle on
 * the original K/V (quantization error, looser).
 *
 * @module
 */

import type { BackendCapabilities, SizeSet } from "../core/capabilities.ts";
import type { LayerConfig } from "../core/layer.ts";
import { type CaseTarget, reasonsFor } from "./reasons.ts";
import type { CaseContext, CaseMetrics, ConformanceCase } from "./case.ts";
import { ConformanceFailure } from "./case.ts";
import { CACHE_KINDS, type CacheKind, cacheKindInfo } from "./cache_kinds.ts";
import { compareArrays } from "./compare.ts";
import { caseDefaults, HEAD_DIMS } from "./defaults.ts";
import { caseAddress } from "./params.ts";
import {
  runScenario,
  type ScenarioOptions,
  type SeqShape,
} from "./scenario.ts";
import { kernelBound, quantizedBound } from "./tolerances.ts";

/** One attention case's parameters (all appear in its address). */
export interface AttendParams {
  /** chunked: prefill chunks longer than a block starting mid-block. */
  readonly mode: "decode" | "prefill" | "mixed" | "chunked";
  /** Sequence length class: a number, or block / block+1 / long. */
  readonly len: "1" | "37" | "block" | "block+1" | "3000" | "32768";
  readonly cache: CacheKind;
  readonly headDim: number;
  /**
   * Query heads per kv head; "mqa" is one kv head for 8 query heads, "3"
   * is 12 query heads over 4 kv heads (kv-head index bugs need more than 2).
   */
  readonly gqa: "1" | "3" | "4" | "8" | "mqa";
  readonly blockSize: number;
  /**
   * none, smaller / larger than the sequence, exactly its length, or 1
   * (each query sees only itself).
   */
  readonly window: "none" | "smaller" | "larger" | "equal" | "1";
  /** A cap of 2 bends logits of our data (std ~1) enough to see. */
  readonly softCap: "none" | "2";
  /**
   * The softmax scale when not headDim^-0.5: "gemma" is
   * (1.125 * headDim)^-0.5, which on head dim 128 is Gemma 2 27B's
   * query_pre_attn_scalar of 144 (hidden 4608 / 32 heads), 1/12; "double" is
   * 2 * headDim^-0.5.
   */
  readonly scale?: "gemma" | "double";
  /**
   * Large logits: "shifted" adds 1000 to every logit (exp overflows in fp32
   * and fp64 without max subtraction), "hundreds" gives logits a standard
   * deviation of 100.
   */
  readonly logits?: "shifted" | "hundreds";
  /**
   * Keys up to the largest finite fp16 (65504) or bf16 (about 3.39e38)
   * value, exactly representable, with queries scaled so that logits are
   * finite in fp32 with a standard deviation of 400.
   */
  readonly keys?: "fp16max" | "bf16max";
  /** V drawn from [-0.3, 2.5] while K stays in [-1, 1]: other k/v scales. */
  readonly values?: "offset";
  /** Block tables wider than needed, padded with -1 or stale block ids. */
  readonly table?: "padded" | "stale";
  /** A cache with enough blocks that 32-bit element offsets overflow. */
  readonly bigCache?: boolean;
  /** Plant a strongly attended key (long-context retrieval). */
  readonly needle?: boolean;
}

const HEADS = {
  "1": [4, 4],
  "3": [12, 4],
  "4": [8, 2],
  "8": [16, 2],
  mqa: [8, 1],
} as const;

/** The largest finite values of the 16-bit formats. */
const KEY_MAX = { fp16max: 65504, bf16max: 3.3895313892515355e38 } as const;

/** V's range for values=offset: shifted and wider than K's. */
const OFFSET_VALUES = [-0.3, 2.5] as const;

function lengthOf(p: AttendParams): number {
  if (p.len === "block") return p.blockSize;
  if (p.len === "block+1") return p.blockSize + 1;
  return Number(p.len);
}

/** The sequences of a batch of this mode, around length L. */
export function sequencesFor(
  mode: AttendParams["mode"],
  L: number,
): SeqShape[] {
  // Long prefills are chunked (a short query at the end of a long context):
  // a 3000-token fresh prefill is quadratic work for the oracle.
  const fresh = L <= 64 ? { qLen: L, seqLen: L } : { qLen: 32, seqLen: L };
  const chunk = { qLen: Math.min(L, 7), seqLen: L + 9 };
  const decodes = [{ qLen: 1, seqLen: L }, { qLen: 1, seqLen: L + 3 }];
  if (mode === "chunked") {
    // L + 3 query tokens starting at position L + 2: mid-block for the
    // usual block sizes, so the chunk crosses several block boundaries.
    return [{ qLen: L + 3, seqLen: 2 * L + 5 }, { qLen: 2, seqLen: L }];
  }
  if (mode === "decode") return [...decodes, { qLen: 1, seqLen: 2 * L + 1 }];
  if (mode === "prefill") return [fresh, chunk];
  return [decodes[0], fresh, decodes[1], chunk];
}

/** The layer an attention case runs. */
export function layerForAttend(p: AttendParams): LayerConfig {
  const [numQHeads, numKvHeads] = HEADS[p.gqa];
  const info = cacheKindInfo(p.cache);
  const L = lengthOf(p);
  const window = p.window === "smaller"
    ? Math.max(1, Math.floor(L / 3))
    : p.window === "equal"
    ? L
    : p.window === "1"
    ? 1
    : L * 4;
  const scale = p.scale === "gemma"
    ? (1.125 * p.headDim) ** -0.5
    : p.scale === "double"
    ? 2 * p.headDim ** -0.5
    : p.headDim ** -0.5;
  return {
    index: 0,
    kind: p.window === "none" ? "full" : "sliding_window",
    numQHeads,
    numKvHeads,
    headDim: p.headDim,
    scale,
    kvDtype: info.dtype,
    blockSize: p.blockSize,
    ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
    ...(p.window === "none" ? {} : { slidingWindow: window }),
    ...(p.softCap === "none" ? {} : { softCap: Number(p.softCap) }),
  };
}

/** The attention cases for one target's capabilities. */
export function attendCases(target: CaseTarget): ConformanceCase[] {
  const caps = target.capabilities;
  const d = caseDefaults(caps);
  const defaultCache = d.kvDtype as CacheKind;
  const base: AttendParams = {
    mode: "mixed",
    len: "37",
    cache: defaultCache,
    headDim: d.headDim,
    gqa: "4",
    blockSize: d.blockSize,
    window: "none",
    softCap: "none",
  };
  const modes = ["decode", "prefill", "mixed"] as const;
  const eightBit = CACHE_KINDS.filter((k) =>
    !["fp32", "fp16", "bf16"].includes(k)
  );
  const rows: (AttendParams & { long?: boolean })[] = [
    ...CACHE_KINDS.flatMap((cache) =>
      modes.map((mode) => ({ ...base, cache, mode }))
    ),
    ...(["1", "block", "block+1", "3000"] as const).flatMap((len) =>
      (["decode", "prefill"] as const).map((mode) => ({ ...base, len, mode }))
    ),
    ...eightBit.map((cache) => ({
      ...base,
      cache,
      len: "3000" as const,
      mode: "decode" as const,
    })),
    ...(["1", "4", "8", "mqa"] as const).map((gqa) => ({ ...base, gqa })),
    ...HEAD_DIMS.map((headDim) => ({ ...base, headDim })),
    ...[8, 16, 32].map((blockSize) => ({ ...base, blockSize })),
    // The edges of what the backend declares: a kernel specialised up to
    // some size but declared beyond it fails here.
    ...edgeSizes(caps.headDims).map((headDim) => ({ ...base, headDim })),
    ...edgeSizes(caps.blockSizes).map((blockSize) => ({
      ...base,
      blockSize,
    })),
    // Softmax scales other than headDim^-0.5 (a kernel must use layer.scale).
    { ...base, scale: "gemma" },
    { ...base, scale: "double", mode: "decode" },
    { ...base, scale: "gemma", cache: "fp8_e4m3" },
    { ...base, scale: "gemma", softCap: "2" },
    // Large logits: the softmax must subtract its (running) maximum.
    { ...base, logits: "shifted" },
    { ...base, logits: "shifted", mode: "decode", cache: "fp8_e4m3" },
    { ...base, logits: "shifted", mode: "decode", cache: "int8" },
    { ...base, logits: "hundreds" },
    { ...base, logits: "hundreds", mode: "prefill", len: "block+1" },
    { ...base, keys: "fp16max", cache: "fp16" },
    { ...base, keys: "bf16max", cache: "bf16" },
    { ...base, keys: "fp16max", cache: "fp8_e4m3", mode: "decode" },
    // K and V with different ranges: V must be dequantized with V's scale
    // and zero point.
    ...eightBit.map((cache) => ({ ...base, cache, values: "offset" as const })),
    // Tables wider than needed: the row stride is maxBlocksPerSeq.
    { ...base, table: "padded" },
    { ...base, table: "stale", mode: "decode" },
    { ...base, table: "padded", mode: "prefill", cache: "fp8_e4m3" },
    // More than 2 kv heads, chunks crossing blocks, window edges.
    { ...base, gqa: "3" },
    { ...base, gqa: "3", mode: "decode", cache: "int8_pth" },
    { ...base, mode: "chunked" },
    { ...base, mode: "chunked", window: "smaller" },
    { ...base, window: "equal" },
    { ...base, window: "1" },
    ...(["smaller", "larger"] as const).flatMap((window) =>
      modes.map((mode) => ({ ...base, window, mode }))
    ),
    ...eightBit.map((cache) => ({
      ...base,
      cache,
      window: "smaller" as const,
    })),
    { ...base, softCap: "2" },
    { ...base, softCap: "2", window: "smaller", cache: "fp8_e4m3" },
    // Long tier: 32k-token retrieval, and a cache big enough that element
    // offsets (slot * numKvHeads * headDim) pass 2^31.
    ...[defaultCache, "fp8_e4m3" as CacheKind].map((cache) => ({
      ...base,
      cache,
      mode: "decode" as const,
      len: "32768" as const,
      needle: true,
      long: true,
    })),
    {
      ...base,
      cache: "fp8_e4m3",
      mode: "decode",
      len: "block+1",
      gqa: "1",
      headDim: 256,
      bigCache: true,
      long: true,
    },
  ];
  const seen = new Set<string>();
  return rows.flatMap(({ long, ...p }) => {
    const address = caseAddress("attend", { ...p });
    if (seen.has(address)) return [];
    seen.add(address);
    const layer = layerForAttend(p);
    const reasons = reasonsFor(target, layer);
    const mode = modeReason(caps, p.mode);
    if (mode) reasons.push(mode);
    const numerics = lowPrecisionReason(caps, p);
    if (numerics) reasons.push(numerics);
    return [{
      address,
      ...(long ? { long } : {}),
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      run: (ctx: CaseContext) => runAttend(ctx, caps, layer, p),
    }];
  });
}

/**
 * The sizes of a declared set worth trying: every entry of a short list
 * (else its min and max), or a range's min, max and one multiple that is not
 * a power of two (the largest in the lower half, when there is one).
 *
 * @example Usage
 * ```ts
 * import { edgeSizes } from "./attend_cases.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(edgeSizes([16, 32, 64]), [16, 32, 64]);
 * assert.deepEqual(edgeSizes([8, 16, 32, 64, 128]), [8, 128]);
 * assert.deepEqual(edgeSizes({ multipleOf: 8, min: 8, max: 256 }), [8, 256, 120]);
 * assert.deepEqual(edgeSizes({ multipleOf: 1, min: 1, max: 1024 }), [1, 1024, 511]);
 * ```
 */
export function edgeSizes(set: SizeSet): number[] {
  if (Array.isArray(set)) {
    const sorted = [...set].sort((a, b) => a - b);
    return sorted.length <= 4 ? sorted : [sorted[0], sorted.at(-1)!];
  }
  const r = set as Exclude<SizeSet, readonly number[]>;
  const min = Math.ceil(r.min / r.multipleOf) * r.multipleOf;
  const max = Math.floor(r.max / r.multipleOf) * r.multipleOf;
  const sizes = [min, max];
  const pow2 = (x: number) => (x & (x - 1)) === 0;
  for (
    let m = Math.floor((min + max) / 2 / r.multipleOf) * r.multipleOf;
    m > min;
    m -= r.multipleOf
  ) {
    if (!pow2(m)) {
      sizes.push(m);
      break;
    }
  }
  return [...new Set(sizes)];
}

/**
 * 8-bit compute quantizes Q per row (2^-4 relative in e4m3, 1/254 of the
 * row's largest |q| in int8) and may sum QK^T in a 16-bit accumulator
 * (fa3's WebGPU kernel emulates one): both move a logit in proportion to
 * the size of its terms, and the 8-bit kernel bound (0.1) is derived for
 * logits of std ~1. Large-logit cases do not apply to such backends.
 */
function lowPrecisionReason(
  caps: BackendCapabilities,
  p: AttendParams,
): string | undefined {
  if (!caps.lowPrecisionCompute || !(p.logits || p.keys)) return undefined;
  return "8-bit compute rounds Q and may sum QK^T in 16 bits, which moves logits this large past its kernel bound (0.1, derived for logits of std ~1)";
}

function modeReason(
  caps: BackendCapabilities,
  mode: AttendParams["mode"],
): string | undefined {
  if (mode !== "decode" && !caps.prefill) return "prefill is not supported";
  if (mode === "chunked") return undefined;
  if (mode !== "prefill" && !caps.decode) return "decode is not supported";
  if (mode === "mixed" && !caps.mixedBatches) {
    return "mixed batches are not supported";
  }
  return undefined;
}

async function runAttend(
  ctx: CaseContext,
  caps: BackendCapabilities,
  layer: LayerConfig,
  p: AttendParams,
): Promise<CaseMetrics> {
  const seqs = sequencesFor(p.mode, lengthOf(p));
  // Queries for a target logit standard deviation over keys of standard
  // deviation 0.408 * keyMax (exactKeys) and queries of 0.661 * gain.
  const gainFor = (std: number, keyMax: number) =>
    std / (0.661 * 0.408 * keyMax * layer.scale * Math.sqrt(layer.headDim));
  const options: ScenarioOptions = {
    zeroPoint: cacheKindInfo(p.cache).zeroPoint,
    needle: p.needle ?? false,
    ...(p.values === "offset" ? { valueRange: OFFSET_VALUES } : {}),
    ...(p.logits === "shifted" ? { logitShift: 1000 } : {}),
    ...(p.logits === "hundreds"
      ? { keyMax: 1, queryGain: gainFor(100, 1) }
      : {}),
    ...(p.keys
      ? { keyMax: KEY_MAX[p.keys], queryGain: gainFor(400, KEY_MAX[p.keys]) }
      : {}),
    ...(p.table ? { tablePadding: p.table } : {}),
    ...(p.bigCache
      ? {
        // 2^31 elements / (heads * headDim) slots, rounded up to whole blocks, plus one.
        numBlocks: Math.ceil(
          2 ** 31 / (layer.numKvHeads * layer.headDim) / layer.blockSize,
        ) + 1,
        poisonAll: false,
        aliasPoison: true,
        codecOracle: true,
      }
      : {}),
  };
  const run = await runScenario(ctx.backend, layer, seqs, ctx.rand, options);
  try {
    const qRow = layer.numQHeads * layer.headDim;
    const describe = (i: number) => {
      const t = Math.floor(i / qRow);
      return `token ${t} (sequence ${run.plan.tokenSeq[t]}, position ${
        run.plan.tokenPos[t]
      }) head ${Math.floor((i % qRow) / layer.headDim)} dim ${
        i % layer.headDim
      }:`;
    };
    const kernelTol = kernelBound(caps, layer.kvDtype);
    const kernel = compareArrays(
      run.out,
      run.refDequantized,
      kernelTol,
      describe,
    );
    if (!kernel.ok) {
      throw new ConformanceFailure(
        `attention differs from the fp64 oracle on the backend's own dequantized cache at ${kernel.mismatches} of ${run.out.length} elements (max |diff| ${
          kernel.maxAbsError.toPrecision(3)
        }, tolerance atol ${kernelTol.atol} rtol ${kernelTol.rtol}):\n${kernel.table}`,
      );
    }
    if (run.refCodec) {
      // What a correct cache holds, not what readCache says it holds: a
      // backend whose writes and reads wrap the same way agrees with its
      // own readout, not with the codec.
      const codec = compareArrays(
        run.out,
        run.refCodec,
        kernelTol,
        describe,
      );
      if (!codec.ok) {
        throw new ConformanceFailure(
          `attention differs from the fp64 oracle on the codec's values of the written K/V at ${codec.mismatches} of ${run.out.length} elements (max |diff| ${
            codec.maxAbsError.toPrecision(3)
          }, tolerance atol ${kernelTol.atol} rtol ${kernelTol.rtol}; blocks ${
            run.aliasTargets.join(", ") || "none"
          } were poisoned as 32-bit offset alias targets):\n${codec.table}`,
        );
      }
    }
    // A backend that computes in 8 bits also rounds Q and P, so its error
    // against the original K/V is bounded by its kernel bound, not only by
    // the cache's rounding. V's rounding reaches the output relative to |v|:
    // the bound assumes |v| <= 1 and grows with V's range.
    const vAmp = p.values === "offset"
      ? Math.max(...OFFSET_VALUES.map(Math.abs))
      : 1;
    const quantBound = vAmp * quantizedBound(caps, layer.kvDtype);
    const quant = compareArrays(run.out, run.refOriginal, {
      atol: quantBound,
      rtol: 0,
    }, describe);
    if (!quant.ok) {
      throw new ConformanceFailure(
        `attention differs from the fp64 oracle on the original K/V by more than ${layer.kvDtype}'s quantization bound ${quantBound}${
          caps.lowPrecisionCompute ? " (8-bit compute)" : ""
        } at ${quant.mismatches} elements (max |diff| ${
          quant.maxAbsError.toPrecision(3)
        }):\n${quant.table}`,
      );
    }
    return {
      kernelMaxAbsError: kernel.maxAbsError,
      quantMaxAbsError: quant.maxAbsError,
      tokens: run.plan.numTokens,
      maxSeqLen: run.plan.maxSeqLen,
    };
  } finally {
    await ctx.backend.disposeCache?.(run.cache);
  }
}
