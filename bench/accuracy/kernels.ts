/**
 * Section `kernels`: per backend target and cache variant, the attention
 * output error against the fp64 oracle (a) on the backend's own dequantized
 * cache (kernel error) and (b) on the original K/V (quantization error), on
 * K/V with realistic structure (kv_data.ts), for each scale source.
 *
 * @module
 */

import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import { unsupportedReasons } from "../../core/capabilities.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import {
  DEFAULT_SCALES,
  estimateScales,
  type LayerKvScales,
} from "../../core/scales.ts";
import { attendThrough } from "./drive_backend.ts";
import { kvDistribution, sampleKv, sampleQueries } from "./kv_data.ts";
import { type ErrorStats, errorStats, rms } from "./metrics.ts";
import type { LiveTarget } from "./targets.ts";

/** Where a layer's scales come from. */
export type ScaleSource =
  | "n/a"
  | "default 1.0"
  | "dynamic"
  | "calibrated"
  | "per token";

/** One cache variant and the scale sources it is measured with. */
export interface CacheVariant {
  readonly label: string;
  readonly kvDtype: KvCacheDtype;
  readonly int8Scheme?: Int8Scheme;
  readonly zeroPoint?: boolean;
  readonly sources: readonly ScaleSource[];
}

/** fp32 .. int8 per-token-head; int8 per tensor has no 1.0 default (core refuses it). */
export const CACHE_VARIANTS: readonly CacheVariant[] = [
  { label: "fp32", kvDtype: "fp32", sources: ["n/a"] },
  { label: "fp16", kvDtype: "fp16", sources: ["n/a"] },
  { label: "bf16", kvDtype: "bf16", sources: ["n/a"] },
  ...(["fp8_e4m3", "fp8_e5m2"] as const).map((kvDtype) => ({
    label: kvDtype,
    kvDtype,
    sources: ["default 1.0", "dynamic", "calibrated"] as const,
  })),
  { label: "int8", kvDtype: "int8", sources: ["dynamic", "calibrated"] },
  {
    label: "int8 zero point",
    kvDtype: "int8",
    zeroPoint: true,
    sources: ["dynamic", "calibrated"],
  },
  {
    label: "int8 per-token-head",
    kvDtype: "int8",
    int8Scheme: "per_token_head",
    sources: ["per token"],
  },
];

/** Options for {@linkcode runKernels}. */
export interface KernelsOptions {
  readonly targets: readonly LiveTarget[];
  /** Context lengths; queries are the last `qLen` positions. */
  readonly lengths: readonly number[];
  readonly seed: number;
  /** @default 128 */
  readonly headDim?: number;
  /** @default 8 (GQA 32/8 scaled down to 8/2) */
  readonly numQHeads?: number;
  /** @default 2 */
  readonly numKvHeads?: number;
  /** @default 8 */
  readonly qLen?: number;
  /** Tokens of the separate sample that calibrated scales come from. @default 512 */
  readonly calibrationTokens?: number;
  /** @default CACHE_VARIANTS */
  readonly variants?: readonly CacheVariant[];
}

/** One measured (or skipped) case. */
export interface KernelRow {
  readonly target: string;
  readonly variant: string;
  readonly source: ScaleSource;
  readonly len: number;
  /** Output vs oracle on the backend's own dequantized cache. */
  readonly kernel?: ErrorStats;
  /** Output vs oracle on the original K/V. */
  readonly quant?: ErrorStats;
  /** RMS of the oracle's output, for scale. */
  readonly refRms: number;
  readonly skip?: string;
}

/** Runs every target x variant x scale source x length. */
export async function runKernels(opts: KernelsOptions): Promise<KernelRow[]> {
  const { headDim = 128, numQHeads = 8, numKvHeads = 2, qLen = 8 } = opts;
  const dist = kvDistribution(mulberry32(opts.seed), { numKvHeads, headDim });
  // Calibration: the same layer, a different sample (another seed).
  const cal = sampleKv(
    dist,
    opts.calibrationTokens ?? 512,
    mulberry32(opts.seed + 7919),
  );
  const rows: KernelRow[] = [];
  for (const len of opts.lengths) {
    const rand = mulberry32(opts.seed * 100003 + len);
    const { keys, values } = sampleKv(dist, len, rand);
    const query = sampleQueries(dist, qLen, numQHeads, rand);
    const spec = {
      index: 0,
      kind: "full",
      numQHeads,
      numKvHeads,
      headDim,
      scale: headDim ** -0.5,
      blockSize: 16,
    } as const;
    let refOriginal: Float64Array | undefined;
    for (const target of opts.targets) {
      for (const v of opts.variants ?? CACHE_VARIANTS) {
        const layer: LayerConfig = {
          ...spec,
          kvDtype: v.kvDtype,
          ...(v.int8Scheme ? { int8Scheme: v.int8Scheme } : {}),
        };
        const reasons = unsupportedReasons(target.backend.capabilities, layer);
        for (const source of v.sources) {
          const base = { target: target.label, variant: v.label, source, len };
          if (reasons.length > 0) {
            rows.push({ ...base, refRms: NaN, skip: reasons.join("; ") });
            continue;
          }
          const scales = scalesFor(source, v, { keys, values }, cal);
          const run = await attendThrough(target.backend, layer, {
            keys,
            values,
            query,
            scales,
            rand,
          });
          const oracle = (k: Float32Array, val: Float32Array) =>
            referenceAttention(layer, {
              batch: run.plan,
              query,
              keys: [k],
              values: [val],
            }).out;
          refOriginal ??= oracle(keys, values);
          rows.push({
            ...base,
            kernel: errorStats(run.out, oracle(run.keys, run.values)),
            quant: errorStats(run.out, refOriginal),
            refRms: rms(refOriginal),
          });
        }
      }
    }
  }
  return rows;
}

function scalesFor(
  source: ScaleSource,
  v: CacheVariant,
  data: { keys: Float32Array; values: Float32Array },
  cal: { keys: Float32Array; values: Float32Array },
): LayerKvScales {
  if (source !== "dynamic" && source !== "calibrated") return DEFAULT_SCALES;
  const from = source === "dynamic" ? data : cal;
  return estimateScales(from.keys, from.values, v.kvDtype, {
    zeroPoint: v.zeroPoint ?? false,
  });
}
