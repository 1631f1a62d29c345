/**
 * `deno task bench kernels` flags (node:util parseArgs), with defaults, the
 * `--quick` grid and a clear error per bad value.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Target } from "../../core/backend.ts";
import { type KvCacheDtype, parseKvCacheDtype } from "../../core/dtype.ts";
import { parseBytes } from "../../server/serve_options.ts";
import { parseBackendSettings, UsageError } from "../../tools/cli_options.ts";
import { type KernelMode, type KernelShape, SHAPES } from "./shapes.ts";

/** Parsed options. */
export interface KernelBenchOptions {
  readonly help: boolean;
  readonly target: Target;
  /** Backend names or module paths; empty: every built-in. */
  readonly backends: readonly string[];
  /**
   * `--backend-setting NAME=VALUE` texts, for every measured backend that
   * takes each (read by its schema when the backends are known).
   */
  readonly backendSettings: Readonly<Record<string, string>>;
  readonly dtypes: readonly KvCacheDtype[];
  readonly contexts: readonly number[];
  readonly batches: readonly number[];
  readonly shapes: readonly KernelShape[];
  readonly modes: readonly KernelMode[];
  /** New tokens per sequence in prefill mode. */
  readonly prefillTokens: number;
  /** Largest KV cache (K and V, scales included) one combination may use. */
  readonly maxKvBytes: number;
  /** Least timed calls per combination (after one warm-up). */
  readonly repeat: number;
  /** Least timed milliseconds per combination. */
  readonly minTimeMs: number;
  /** Bytes the bandwidth measurement streams (native) or copies (webgpu). */
  readonly bandwidthBytes: number;
  readonly torch: "auto" | "yes" | "no";
  readonly seed: number;
  readonly quick: boolean;
  readonly outDir: string;
}

const FLAGS = {
  target: { type: "string", default: "native" },
  backend: { type: "string", default: "" },
  "backend-setting": { type: "string", multiple: true },
  "kv-cache-dtype": { type: "string", default: "fp16,bf16,fp8_e4m3,int8" },
  context: { type: "string", default: "1024,4096,8192,16384,32768" },
  batch: { type: "string", default: "1,4,16,64" },
  shape: { type: "string", default: "llama,gemma" },
  mode: { type: "string", default: "decode,prefill" },
  "prefill-tokens": { type: "string", default: "128" },
  "max-kv-bytes": { type: "string", default: "4GiB" },
  repeat: { type: "string", default: "5" },
  "min-time-ms": { type: "string", default: "200" },
  "bandwidth-bytes": { type: "string", default: "1GiB" },
  torch: { type: "string", default: "auto" },
  seed: { type: "string", default: "0" },
  quick: { type: "boolean", default: false },
  out: { type: "string", default: "bench/results" },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** The --quick grid: seconds, not minutes; every code path still runs. */
export const QUICK = {
  "kv-cache-dtype": "bf16,int8",
  context: "64,256",
  batch: "1,2",
  shape: "llama,gemma",
  "prefill-tokens": "16",
  repeat: "2",
  "min-time-ms": "0",
  "bandwidth-bytes": "64MiB",
} as const;

/** Help lines for the flags. */
export const KERNELS_HELP =
  `  --target native|webgpu|reference  (default: native)
  --backend LIST                    comma list of names or ./module.ts (default: every built-in whose target is available)
  --backend-setting NAME=VALUE      a backend setting, e.g. accumulationPromotion=false (repeatable); it goes to
                                    each measured backend that declares it, and the report's command keeps it
  --kv-cache-dtype LIST             (default: fp16,bf16,fp8_e4m3,int8; int8 uses per-token-head scales)
  --context LIST                    tokens in the cache per sequence (default: 1024,4096,8192,16384,32768)
  --batch LIST                      sequences per call (default: 1,4,16,64)
  --shape LIST                      ${
    Object.values(SHAPES).map((s) => `${s.name} (${s.describe})`).join("; ")
  } (default: llama,gemma)
  --mode LIST                       decode (1 new token per sequence), prefill (a chunk of new tokens) (default: decode,prefill)
  --prefill-tokens N                new tokens per sequence in prefill mode (default: 128)
  --max-kv-bytes SIZE               skip combinations whose cache is larger, saying so (default: 4GiB)
  --repeat N                        least timed calls per combination, after a warm-up (default: 5)
  --min-time-ms N                   least timed milliseconds per combination (default: 200)
  --bandwidth-bytes SIZE            buffer the bandwidth measurement reads or copies (default: 1GiB)
  --torch auto|yes|no               time torch SDPA (bf16, CUDA) on the decode shapes (default: auto = with --target webgpu)
  --seed N                          random K, V and Q (default: 0)
  --quick                           a tiny grid (${
    Object.entries(QUICK).map(([k, v]) => `--${k} ${v}`).join(" ")
  })
  --out DIR                         where kernels-<target>[-<adapter>].md and .svg go (default: bench/results)
  -h, --help                        this text`;

function list(flag: string, text: string): string[] {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (items.length === 0) {
    throw new UsageError(`--${flag}: give at least one value`);
  }
  return items;
}

function int(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${flag}: "${text}" must be an integer >= ${min}`);
  }
  return n;
}

function bytes(flag: string, text: string): number {
  try {
    return parseBytes(text);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

function oneOf<T extends string>(
  flag: string,
  text: string,
  valid: readonly T[],
): T {
  if (!valid.includes(text as T)) {
    throw new UsageError(
      `--${flag}: "${text}" is not one of ${valid.join(", ")}`,
    );
  }
  return text as T;
}

/**
 * Parses argv; throws UsageError naming the flag.
 *
 * @example Usage
 * ```ts
 * import { parseKernelArgs } from "./options.ts";
 * import assert from "node:assert/strict";
 *
 * const o = parseKernelArgs(["--context", "1024,8192", "--shape", "llama"]);
 * assert.deepEqual(o.contexts, [1024, 8192]);
 * assert.equal(o.shapes[0].headDim, 128);
 * assert.throws(() => parseKernelArgs(["--mode", "train"]), /--mode: "train"/);
 * ```
 */
export function parseKernelArgs(args: string[]): KernelBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const quick = values.quick;
  // --quick replaces the defaults only: flags given explicitly still win.
  const given = (flag: keyof typeof FLAGS) =>
    args.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  const v = (flag: keyof typeof FLAGS): string =>
    quick && flag in QUICK && !given(flag)
      ? QUICK[flag as keyof typeof QUICK]
      : String(values[flag]);
  const dtypes = list("kv-cache-dtype", v("kv-cache-dtype")).map((d) => {
    try {
      return parseKvCacheDtype(d);
    } catch (e) {
      throw new UsageError(`--kv-cache-dtype: ${(e as Error).message}`);
    }
  });
  const shapes = list("shape", v("shape")).map((s) => {
    if (!Object.hasOwn(SHAPES, s)) {
      throw new UsageError(
        `--shape: "${s}" is not a shape: use ${Object.keys(SHAPES).join(", ")}`,
      );
    }
    return SHAPES[s];
  });
  const prefillTokens = int("prefill-tokens", v("prefill-tokens"), 2);
  const contexts = list("context", v("context")).map((c) =>
    int("context", c, 1)
  );
  return {
    help: values.help,
    target: oneOf("target", v("target"), ["native", "webgpu", "reference"]),
    backends: v("backend") === "" ? [] : list("backend", v("backend")),
    backendSettings: parseBackendSettings(values["backend-setting"]),
    dtypes: [...new Set(dtypes)],
    contexts,
    batches: list("batch", v("batch")).map((b) => int("batch", b, 1)),
    shapes,
    modes: list("mode", v("mode")).map((m) =>
      oneOf("mode", m, ["decode", "prefill"] as const)
    ),
    prefillTokens,
    maxKvBytes: bytes("max-kv-bytes", v("max-kv-bytes")),
    repeat: int("repeat", v("repeat"), 1),
    minTimeMs: int("min-time-ms", v("min-time-ms"), 0),
    bandwidthBytes: bytes("bandwidth-bytes", v("bandwidth-bytes")),
    torch: oneOf("torch", v("torch"), ["auto", "yes", "no"] as const),
    seed: int("seed", v("seed"), 0),
    quick,
    outDir: v("out"),
  };
}
