/**
 * `deno task bench serve` flags: the selection flags (with a list of KV
 * dtypes, one configuration each), the workload and the engine limits,
 * with defaults and a clear error per bad value.
 *
 * @module
 */

import type { SelectOptions } from "../core/selector.ts";
import {
  parseSchedulingPolicy,
  type SchedulingPolicy,
} from "../engine/scheduler.ts";
import { parseBytes } from "../server/serve_options.ts";
import {
  parseSelectionArgs,
  selectOptionsFromFlags,
  UsageError,
} from "../tools/cli_options.ts";
import { DEFAULT_MODEL_DIR } from "../server/plan_model.ts";
import {
  DATASET_NAMES,
  type DatasetName,
  type DatasetShape,
  QUICK_REQUESTS,
  SCALED_DATASETS,
} from "./datasets.ts";

/** The dtypes compared when --kv-cache-dtype is not given. */
export const DEFAULT_DTYPES = "auto,bf16,fp8_e4m3,fp8_e5m2,int8";

/** One configuration: a --kv-cache-dtype value and its selector options. */
export interface BenchConfig {
  readonly label: string;
  readonly select: SelectOptions;
}

/** Engine options passed to every configuration's engine as they are. */
export interface BenchEngineOptions {
  readonly schedulingPolicy: SchedulingPolicy;
  /** A calibration file: used by configurations with per-layer scales. */
  readonly kvQuantParamsPath?: string;
  /** Measure scales on the first prefill, in configurations with per-layer scales. */
  readonly calculateKvScales: boolean;
}

/** Parsed `bench serve` options. */
export interface ServeBenchOptions {
  readonly help: boolean;
  readonly datasets: readonly DatasetName[];
  readonly modelDir: string;
  readonly configs: readonly BenchConfig[];
  /** Absent: each dataset's default (see defaultKvMemory). */
  readonly kvCacheMemory?: number;
  readonly numRequests?: number;
  readonly maxNumSeqs?: number;
  readonly maxNumBatchedTokens: number;
  readonly engine: BenchEngineOptions;
  readonly seed: number;
  readonly quick: boolean;
  readonly outDir: string;
}

const FLAGS = {
  dataset: { type: "string", default: "both" },
  "kv-cache-dtype": { type: "string", default: DEFAULT_DTYPES },
  "int8-scheme": { type: "string", default: "per_token_head" },
  "kv-cache-memory": { type: "string" },
  "num-requests": { type: "string" },
  "max-num-seqs": { type: "string" },
  "max-num-batched-tokens": { type: "string", default: "2048" },
  "scheduling-policy": { type: "string", default: "max_utilization" },
  "kv-quant-params-path": { type: "string" },
  "calculate-kv-scales": { type: "boolean", default: false },
  seed: { type: "string", default: "0" },
  quick: { type: "boolean", default: false },
  "out-dir": { type: "string", default: "bench/results" },
} as const;

/** Help lines for the flags of `bench serve`. */
export const SERVE_BENCH_HELP =
  `  --dataset prefill-heavy|decode-heavy|both   (default: both)
  --model PATH                      model directory (default: models/demo-gemma2)
  --backend NAME|./module.ts        pin one backend for every layer (default: chosen per layer)
  --target auto|native|webgpu|reference   (default: auto)
  --kv-cache-dtype LIST             comma list, one configuration each (default: ${DEFAULT_DTYPES})
  --kv-cache-dtype-skip-layers LIST layer indices and/or sliding_window, kept in the model dtype
  --int8-scheme per_tensor|per_token_head   (default: per_token_head: no calibration needed)
  --block-size N                    tokens per KV block (default: 16)
  --backend-setting NAME=VALUE      a backend setting, e.g. accumulationPromotion=false (repeatable), for every
                                    configuration; it goes to each backend in use that declares it
  --kv-cache-memory SIZE            KV budget, e.g. 2MiB (default: 16 full-length sequences in bf16, 4 with --quick)
  --num-requests N                  (default: 64, ${QUICK_REQUESTS} with --quick)
  --max-num-seqs N                  sequences per step (default: 64)
  --max-num-batched-tokens N        tokens per step (default: 2048)
  --scheduling-policy max_utilization|guaranteed_no_evict   (default: max_utilization)
  --kv-quant-params-path FILE       per-layer k/v scales, for the configurations whose cache has them (fp8, int8 per_tensor)
  --calculate-kv-scales             measure those scales on the first prefill instead (fp8 otherwise uses 1.0)
  --seed N                          prompt seed (default: 0)
  --quick                           ${QUICK_REQUESTS} requests and a 4x smaller KV budget (same pressure, 4x shorter)
  --out-dir DIR                     where serve-<dataset>.md and the SVG plots go (default: bench/results)
  -h, --help                        this text`;

/** Parses argv; throws UsageError naming the flag. */
export function parseServeBenchArgs(args: string[]): ServeBenchOptions {
  const { values } = parseSelectionArgs(args, FLAGS);
  const dataset = values.dataset;
  if (dataset !== "both" && !DATASET_NAMES.includes(dataset as DatasetName)) {
    throw new UsageError(
      `--dataset: "${dataset}" is not a dataset: use ${
        DATASET_NAMES.join(", ")
      } or both`,
    );
  }
  // parseSelectionArgs intersects the two declarations' types, so the
  // overridden defaults read as never: go through String().
  const labels = String(values["kv-cache-dtype"]).split(",").map((s) =>
    s.trim()
  )
    .filter((s) => s !== "");
  if (labels.length === 0) {
    throw new UsageError("--kv-cache-dtype: give at least one dtype");
  }
  const configs = labels.map((label) => ({
    label,
    select: selectOptionsFromFlags({ ...values, "kv-cache-dtype": label }),
  }));
  const int = (flag: string, text: string | undefined, min: number) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) {
      throw new UsageError(`--${flag}: "${text}" must be an integer >= ${min}`);
    }
    return n;
  };
  let kvCacheMemory: number | undefined;
  if (values["kv-cache-memory"] !== undefined) {
    try {
      kvCacheMemory = parseBytes(values["kv-cache-memory"]);
    } catch (e) {
      throw new UsageError(`--kv-cache-memory: ${(e as Error).message}`);
    }
  }
  let schedulingPolicy: SchedulingPolicy;
  try {
    schedulingPolicy = parseSchedulingPolicy(
      String(values["scheduling-policy"]),
    );
  } catch (e) {
    throw new UsageError(`--scheduling-policy: ${(e as Error).message}`);
  }
  const kvQuantParamsPath = values["kv-quant-params-path"];
  const calculateKvScales = values["calculate-kv-scales"] === true;
  if (kvQuantParamsPath !== undefined && calculateKvScales) {
    throw new UsageError(
      `--kv-quant-params-path "${kvQuantParamsPath}" and --calculate-kv-scales were both given: the scales come from one source; drop one`,
    );
  }
  return {
    help: values.help,
    datasets: dataset === "both" ? DATASET_NAMES : [dataset as DatasetName],
    modelDir: values.model ?? DEFAULT_MODEL_DIR,
    configs,
    kvCacheMemory,
    numRequests: int("num-requests", values["num-requests"], 1),
    maxNumSeqs: int("max-num-seqs", values["max-num-seqs"], 1),
    maxNumBatchedTokens: int(
      "max-num-batched-tokens",
      values["max-num-batched-tokens"],
      1,
    )!,
    engine: {
      schedulingPolicy,
      ...(kvQuantParamsPath !== undefined ? { kvQuantParamsPath } : {}),
      calculateKvScales,
    },
    seed: int("seed", values.seed, 0)!,
    quick: values.quick,
    outDir: values["out-dir"],
  };
}

/** The dataset's scaled shape with the options' overrides applied. */
export function shapeFor(
  name: DatasetName,
  o: ServeBenchOptions,
): DatasetShape {
  const base = SCALED_DATASETS[name];
  return {
    ...base,
    numRequests: o.numRequests ?? (o.quick ? QUICK_REQUESTS : base.numRequests),
    maxBatch: o.maxNumSeqs ?? base.maxBatch,
  };
}
