/**
 * `deno task serve` flags: the selection flags plus the engine's and the
 * socket's, with defaults and a clear error per bad value.
 *
 * @module
 */

import {
  MODEL_OPS_TARGETS,
  type ModelOpsTarget,
} from "../engine/model_loader.ts";
import {
  parseSchedulingPolicy,
  type SchedulingPolicy,
} from "../engine/scheduler.ts";

/** Engine and socket options parsed from flags. */
export interface ServeOptions {
  /** The interface to listen on (`--host`). @default "127.0.0.1" */
  readonly host: string;
  /** The TCP port (`--port`); 0 picks a free one. @default 8000 */
  readonly port: number;
  /** Bytes of KV cache for all layers together; the block pool is sized from it. */
  readonly kvCacheMemory: number;
  /** Most sequences in one engine step. @default 64 */
  readonly maxNumSeqs: number;
  /** Most tokens (prompt and generated) in one engine step. @default 2048 */
  readonly maxNumBatchedTokens: number;
  /** Longest prompt plus output in tokens; absent: the model's max_position_embeddings. */
  readonly maxModelLen?: number;
  /** How requests are admitted (engine/scheduler.ts). */
  readonly schedulingPolicy: SchedulingPolicy;
  /** A calibration file with per-layer K/V scales (docs/CALIBRATION.md). */
  readonly kvQuantParamsPath?: string;
  /** Measure per-layer K/V scales on the first prefill. */
  readonly calculateKvScales: boolean;
  /** The name clients pass as `model`; absent: the model directory's name. */
  readonly servedModelName?: string;
  /** Seconds in-flight requests get to finish after SIGINT/SIGTERM. */
  readonly shutdownTimeout: number;
  /** Where the non-attention ops run; absent: native when the addon loads, else typescript. */
  readonly opsTarget?: ModelOpsTarget;
}

/** parseArgs declarations for the serve-only flags. */
export const SERVE_FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "8000" },
  "kv-cache-memory": { type: "string", default: "64MiB" },
  "max-num-seqs": { type: "string", default: "64" },
  "max-num-batched-tokens": { type: "string", default: "2048" },
  "max-model-len": { type: "string" },
  "scheduling-policy": { type: "string", default: "max_utilization" },
  "kv-quant-params-path": { type: "string" },
  calibration: { type: "string" },
  "calculate-kv-scales": { type: "boolean", default: false },
  "served-model-name": { type: "string" },
  "shutdown-timeout": { type: "string", default: "10" },
  "ops-target": { type: "string", default: "auto" },
} as const;

/** Help lines for the serve-only flags. */
export const SERVE_HELP =
  `  --host HOST                       (default: 127.0.0.1)
  --port PORT                       (default: 8000; 0 picks a free port)
  --kv-cache-memory SIZE            KV cache for all layers, e.g. 64MiB, 1GiB, 268435456 (default: 64MiB)
  --kv-quant-params-path FILE       per-layer k/v scales for fp8 / int8 per_tensor caches (docs/CALIBRATION.md; alias --calibration)
  --calculate-kv-scales             measure per-layer k/v scales on the first prefill, then keep them (docs/CALIBRATION.md)
                                    (neither: fp8 uses scale 1.0 with a warning; int8 per_tensor needs one of the two)
  --scheduling-policy max_utilization|guaranteed_no_evict
                                    max_utilization admits greedily and preempts the newest request by recompute when
                                    blocks run out; guaranteed_no_evict reserves prompt + max_tokens per request and
                                    never preempts (default: max_utilization)
  --max-num-seqs N                  sequences per step (default: 64)
  --max-num-batched-tokens N        tokens per step (default: 2048)
  --max-model-len N                 prompt + output limit (default: the model's max_position_embeddings)
  --served-model-name NAME          the name clients pass as "model" (default: the model directory's name)
  --shutdown-timeout SECONDS        how long SIGINT/SIGTERM waits for in-flight requests (default: 10)
  --ops-target auto|native|typescript|webgpu
                                    where matmuls and the other non-attention ops run; auto: native when the addon
                                    loads, else typescript, with the reason printed; webgpu keeps the whole decode
                                    step on the GPU and puts attention on --target webgpu too (default: auto)`;

/**
 * Parses "64MiB", "1GiB", "512MB", "1000000".
 *
 * @example Usage
 * ```ts
 * import { parseBytes } from "./serve_options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseBytes("64MiB"), 64 * 2 ** 20);
 * assert.equal(parseBytes("2GB"), 2e9);
 * ```
 */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(|B|KB|MB|GB|KiB|MiB|GiB)$/i.exec(text.trim());
  if (!m) {
    throw new Error(
      `"${text}" is not a size: use e.g. 64MiB, 1GiB or a byte count`,
    );
  }
  const unit = m[2].toLowerCase();
  const scale: Record<string, number> = {
    "": 1,
    b: 1,
    kb: 1e3,
    mb: 1e6,
    gb: 1e9,
    kib: 2 ** 10,
    mib: 2 ** 20,
    gib: 2 ** 30,
  };
  return Math.floor(Number(m[1]) * scale[unit]);
}

/** Turns flag values into options, naming the flag on any error. */
export function serveOptionsFromFlags(
  v: Record<string, string | boolean | string[] | undefined>,
): ServeOptions {
  const int = (flag: string, min: number) => {
    const n = Number(v[flag]);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${flag}: "${v[flag]}" must be an integer >= ${min}`);
    }
    return n;
  };
  let kvCacheMemory: number;
  try {
    kvCacheMemory = parseBytes(String(v["kv-cache-memory"]));
  } catch (e) {
    throw new Error(`--kv-cache-memory: ${(e as Error).message}`);
  }
  const port = int("port", 0);
  let schedulingPolicy: SchedulingPolicy;
  try {
    schedulingPolicy = parseSchedulingPolicy(String(v["scheduling-policy"]));
  } catch (e) {
    throw new Error(`--scheduling-policy: ${(e as Error).message}`);
  }
  const kvQuantParamsPath = scaleFlags(v);
  if (port > 65535) throw new Error(`--port: ${port} is not a port (0..65535)`);
  const opsFlag = String(v["ops-target"] ?? "auto");
  if (
    opsFlag !== "auto" &&
    !(MODEL_OPS_TARGETS as readonly string[]).includes(opsFlag)
  ) {
    throw new Error(
      `--ops-target: "${opsFlag}" is not an ops target: use auto, ${
        MODEL_OPS_TARGETS.join(", ")
      }`,
    );
  }
  return {
    host: String(v.host),
    port,
    kvCacheMemory,
    maxNumSeqs: int("max-num-seqs", 1),
    maxNumBatchedTokens: int("max-num-batched-tokens", 1),
    ...(v["max-model-len"] !== undefined
      ? { maxModelLen: int("max-model-len", 2) }
      : {}),
    schedulingPolicy,
    ...(kvQuantParamsPath !== undefined ? { kvQuantParamsPath } : {}),
    calculateKvScales: v["calculate-kv-scales"] === true,
    ...(typeof v["served-model-name"] === "string"
      ? { servedModelName: v["served-model-name"] }
      : {}),
    shutdownTimeout: int("shutdown-timeout", 0),
    ...(opsFlag !== "auto" ? { opsTarget: opsFlag as ModelOpsTarget } : {}),
  };
}

/**
 * The calibration path from --kv-quant-params-path (or its alias
 * --calibration), refusing both spellings at once and a path together with
 * --calculate-kv-scales: the scales come from one source.
 */
function scaleFlags(
  v: Record<string, string | boolean | string[] | undefined>,
): string | undefined {
  const path = v["kv-quant-params-path"], alias = v.calibration;
  if (typeof path === "string" && typeof alias === "string") {
    throw new Error(
      "--kv-quant-params-path and --calibration are the same flag: give it once",
    );
  }
  const file = typeof path === "string"
    ? path
    : typeof alias === "string"
    ? alias
    : undefined;
  if (file !== undefined && v["calculate-kv-scales"] === true) {
    throw new Error(
      `--kv-quant-params-path "${file}" and --calculate-kv-scales were both given: the scales come from one source; keep the file for fixed, known scales or the flag to measure them on the first prefill`,
    );
  }
  return file;
}
