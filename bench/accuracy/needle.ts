/**
 * Section `needle`: synthetic long-context retrieval (needle_data.ts defines
 * the trial and "retrieved") for 16-bit and 8-bit KV storage through a real
 * backend, and for 8-bit compute through low_precision_emulation.ts with
 * two-level accumulation on and off, and through a real 8-bit-compute
 * backend (fa3, {@linkcode fa3NeedlePaths}) with each setting. Every path
 * sees the same trials.
 *
 * @module
 */

import type { AttentionBackend } from "../../core/backend.ts";
import type { Int8Scheme, KvCacheDtype } from "../../core/dtype.ts";
import type { LayerConfig, LayerSpec } from "../../core/layer.ts";
import { mulberry32 } from "../../core/prng.ts";
import { DEFAULT_SCALES, estimateScales } from "../../core/scales.ts";
import { attendThrough } from "./drive_backend.ts";
import { kvDistribution } from "./kv_data.ts";
import {
  emulateLowPrecisionDecode,
  type EmulationOptions,
} from "./low_precision_emulation.ts";
import { errorStats, rms } from "./metrics.ts";
import { needleTrial, needleWeight, retrieved } from "./needle_data.ts";
import type { LiveTarget } from "./targets.ts";

/** One way of computing the attention output. */
export type NeedlePath =
  | { readonly label: string; readonly kind: "oracle" }
  | {
    readonly label: string;
    readonly kind: "storage";
    readonly kvDtype: KvCacheDtype;
    readonly int8Scheme?: Int8Scheme;
  }
  | {
    readonly label: string;
    readonly kind: "emulation";
    readonly emulation: EmulationOptions;
  }
  | {
    readonly label: string;
    /** Like storage, through this backend instead of the section's. */
    readonly kind: "backend";
    readonly backend: AttentionBackend;
    readonly kvDtype: KvCacheDtype;
  };

/**
 * Paths through a live 8-bit-compute backend, one per cache dtype and
 * promotion setting: `on` and `off` were created with
 * `accumulationPromotion` true and false.
 */
export function fa3NeedlePaths(
  name: string,
  on: AttendBackendPair["on"],
  off: AttendBackendPair["off"],
): NeedlePath[] {
  return (["fp8_e4m3", "int8"] as const).flatMap((kvDtype) =>
    [
      {
        label: `${name} ${kvDtype}, promotion on`,
        kind: "backend",
        backend: on,
        kvDtype,
      },
      {
        label: `${name} ${kvDtype}, promotion off`,
        kind: "backend",
        backend: off,
        kvDtype,
      },
    ] as const
  );
}

/** The two backends {@linkcode fa3NeedlePaths} compares. */
export interface AttendBackendPair {
  readonly on: AttentionBackend;
  readonly off: AttentionBackend;
}

/** The default paths: the oracle, storage through the backend, emulated compute. */
export const NEEDLE_PATHS: readonly NeedlePath[] = [
  { label: "fp64 oracle", kind: "oracle" },
  { label: "bf16 cache", kind: "storage", kvDtype: "bf16" },
  { label: "fp16 cache", kind: "storage", kvDtype: "fp16" },
  { label: "fp8_e4m3 cache", kind: "storage", kvDtype: "fp8_e4m3" },
  { label: "int8 cache", kind: "storage", kvDtype: "int8" },
  {
    label: "int8 per-token-head cache",
    kind: "storage",
    kvDtype: "int8",
    int8Scheme: "per_token_head",
  },
  ...emulated("fp8_e4m3", true, [7, 13]),
  ...emulated("int8", true, [7]),
  ...emulated("fp8_e4m3", false, [7, 13]),
];

/** Promotion on, then off with each accumulator width (7 = bf16). */
function emulated(
  input: "fp8_e4m3" | "int8",
  quantizeP: boolean,
  offBits: readonly number[],
): NeedlePath[] {
  const name = `${input} compute${quantizeP ? "" : " (P kept fp32)"}`;
  return [
    {
      label: `${name}, promotion on`,
      kind: "emulation",
      emulation: { input, quantizeP, promotion: true },
    },
    ...offBits.map((bits): NeedlePath => ({
      label: `${name}, promotion off (${
        bits === 7 ? "bf16" : `${bits}-bit mantissa`
      } acc)`,
      kind: "emulation",
      emulation: { input, quantizeP, promotion: false, accumulatorBits: bits },
    })),
  ];
}

/** Options for {@linkcode runNeedle}. */
export interface NeedleOptions {
  /** Runs the storage paths. */
  readonly target: LiveTarget;
  readonly lengths: readonly number[];
  /** Trials per length; each gives numQHeads retrievals. */
  readonly trials: number;
  readonly seed: number;
  /** @default 128 */
  readonly headDim?: number;
  /** @default 8 */
  readonly numQHeads?: number;
  /** @default 2 */
  readonly numKvHeads?: number;
  /** Mean needle margin in nats (needle_data.ts). @default 2.5 */
  readonly marginMean?: number;
  /** Candidates per head, the needle included. @default 8 */
  readonly candidates?: number;
  /** @default NEEDLE_PATHS */
  readonly paths?: readonly NeedlePath[];
}

/** One path at one length. */
export interface NeedleCell {
  readonly path: string;
  readonly len: number;
  /** Fraction of (trial, query head) retrievals. */
  readonly accuracy: number;
  readonly samples: number;
  /** RMS of output minus the fp64 oracle over all trials. */
  readonly errorRms: number;
  /** RMS of the oracle's output, for scale. */
  readonly oracleRms: number;
  /** Mean effective needle weight (needle_data.ts needleWeight). */
  readonly needleWeight: number;
}

/** Runs every path on the same trials at every length. */
export async function runNeedle(opts: NeedleOptions): Promise<NeedleCell[]> {
  const { headDim = 128, numQHeads = 8, numKvHeads = 2 } = opts;
  const layer: LayerSpec = {
    index: 0,
    kind: "full",
    numQHeads,
    numKvHeads,
    headDim,
    scale: headDim ** -0.5,
  };
  const paths = opts.paths ?? NEEDLE_PATHS;
  const dist = kvDistribution(mulberry32(opts.seed), { numKvHeads, headDim });
  const cells: NeedleCell[] = [];
  for (const len of opts.lengths) {
    const hits = paths.map(() => 0), sq = paths.map(() => 0);
    const weight = paths.map(() => 0);
    let oracleSq = 0;
    for (let t = 0; t < opts.trials; t++) {
      const rand = mulberry32(opts.seed * 7919 + len * 31 + t);
      const trial = needleTrial(layer, dist, len, rand, {
        marginMean: opts.marginMean ?? 2.5,
        candidates: opts.candidates ?? 8,
      });
      oracleSq += rms(trial.oracle) ** 2;
      for (const [i, path] of paths.entries()) {
        let out: ArrayLike<number>;
        if (path.kind === "oracle") out = trial.oracle;
        else if (path.kind === "emulation") {
          out = emulateLowPrecisionDecode(
            layer,
            trial.query,
            trial.keys,
            trial.values,
            path.emulation,
          );
        } else {
          const config: LayerConfig = {
            ...layer,
            kvDtype: path.kvDtype,
            blockSize: 16,
            ...(path.kind === "storage" && path.int8Scheme
              ? { int8Scheme: path.int8Scheme }
              : {}),
          };
          const scales = path.kind === "storage" && path.int8Scheme
            ? DEFAULT_SCALES
            : estimateScales(trial.keys, trial.values, path.kvDtype);
          const backend = path.kind === "backend"
            ? path.backend
            : opts.target.backend;
          out = (await attendThrough(backend, config, {
            keys: trial.keys,
            values: trial.values,
            query: trial.query,
            scales,
            rand,
            readBack: false,
          })).out;
        }
        hits[i] += retrieved(layer, trial, out).reduce((a, b) => a + b, 0);
        weight[i] += needleWeight(layer, trial, out).reduce((a, b) => a + b, 0);
        sq[i] += errorStats(out, trial.oracle).rms ** 2;
      }
    }
    paths.forEach((p, i) =>
      cells.push({
        path: p.label,
        len,
        accuracy: hits[i] / (opts.trials * numQHeads),
        samples: opts.trials * numQHeads,
        errorRms: Math.sqrt(sq[i] / opts.trials),
        oracleRms: Math.sqrt(oracleSq / opts.trials),
        needleWeight: weight[i] / (opts.trials * numQHeads),
      })
    );
  }
  return cells;
}
