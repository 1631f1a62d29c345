/**
 * Attention cases: decode, prefill and mixed batches over shuffled blocks
 * with poisoned neighbours, checked against the fp64 oracle on the
 * backend's own dequantized cache (kernel error), and against the oracle on
 * the original K/V (quantization error, looser).
 *
 * @module
 */

import {
  type BackendCapabilities,
  unsupportedReasons,
} from "../core/capabilities.ts";
import type { LayerConfig } from "../core/layer.ts";
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
import { LOW_PRECISION_KERNEL, toleranceFor } from "./tolerances.ts";

/** One attention case's parameters (all appear in its address). */
export interface AttendParams {
  readonly mode: "decode" | "prefill" | "mixed";
  /** Sequence length class: a number, or block / block+1 / long. */
  readonly len: "1" | "37" | "block" | "block+1" | "3000" | "32768";
  readonly cache: CacheKind;
  readonly headDim: number;
  /** Query heads per kv head; "mqa" is one kv head for 8 query heads. */
  readonly gqa: "1" | "4" | "8" | "mqa";
  readonly blockSize: number;
  /** none, or smaller / larger than the sequence. */
  readonly window: "none" | "smaller" | "larger";
  /** A cap of 2 bends logits of our data (std ~1) enough to see. */
  readonly softCap: "none" | "2";
  /** A cache with enough blocks that 32-bit element offsets overflow. */
  readonly bigCache?: boolean;
  /** Plant a strongly attended key (long-context retrieval). */
  readonly needle?: boolean;
}

const HEADS = {
  "1": [4, 4],
  "4": [8, 2],
  "8": [16, 2],
  mqa: [8, 1],
} as const;

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
    : L * 4;
  return {
    index: 0,
    kind: p.window === "none" ? "full" : "sliding_window",
    numQHeads,
    numKvHeads,
    headDim: p.headDim,
    scale: p.headDim ** -0.5,
    kvDtype: info.dtype,
    blockSize: p.blockSize,
    ...(info.int8Scheme ? { int8Scheme: info.int8Scheme } : {}),
    ...(p.window === "none" ? {} : { slidingWindow: window }),
    ...(p.softCap === "none" ? {} : { softCap: Number(p.softCap) }),
  };
}

/** The attention cases for one target's capabilities. */
export function attendCases(caps: BackendCapabilities): ConformanceCase[] {
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
    const reasons = unsupportedReasons(caps, layer);
    const mode = modeReason(caps, p.mode);
    if (mode) reasons.push(mode);
    return [{
      address,
      ...(long ? { long } : {}),
      ...(reasons.length > 0 ? { skip: reasons.join("; ") } : {}),
      run: (ctx: CaseContext) => runAttend(ctx, caps, layer, p),
    }];
  });
}

function modeReason(
  caps: BackendCapabilities,
  mode: AttendParams["mode"],
): string | undefined {
  if (mode !== "decode" && !caps.prefill) return "prefill is not supported";
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
  const options: ScenarioOptions = {
    zeroPoint: cacheKindInfo(p.cache).zeroPoint,
    needle: p.needle ?? false,
    ...(p.bigCache
      ? {
        // 2^31 elements / (heads * headDim) slots, rounded up to whole blocks, plus one.
        numBlocks: Math.ceil(
          2 ** 31 / (layer.numKvHeads * layer.headDim) / layer.blockSize,
        ) + 1,
        poisonAll: false,
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
    const tol = toleranceFor(layer.kvDtype);
    const kernelTol = caps.lowPrecisionCompute
      ? LOW_PRECISION_KERNEL
      : tol.kernel;
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
    // A backend that computes in 8 bits also rounds Q and P, so its error
    // against the original K/V is bounded by its kernel bound, not only by
    // the cache's rounding.
    const quantBound = caps.lowPrecisionCompute
      ? Math.max(tol.quantized, LOW_PRECISION_KERNEL.atol)
      : tol.quantized;
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
