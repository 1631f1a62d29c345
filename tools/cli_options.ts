/**
 * The command-line options that select, serve and conformance share, parsed
 * with node:util's parseArgs (JSR's @std/cli is unreachable here).
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { type Target, TARGETS } from "../core/backend.ts";
import {
  type Int8Scheme,
  type KvCacheDtype,
  parseKvCacheDtype,
} from "../core/dtype.ts";
import type { SelectOptions, SkipLayer } from "../core/selector.ts";

/** parseArgs option declarations for selection. */
export const SELECTION_OPTIONS = {
  model: { type: "string" },
  backend: { type: "string" },
  target: { type: "string", default: "auto" },
  "kv-cache-dtype": { type: "string", default: "auto" },
  "kv-cache-dtype-skip-layers": { type: "string", default: "" },
  "int8-scheme": { type: "string", default: "per_tensor" },
  "block-size": { type: "string", default: "16" },
  "backend-setting": { type: "string", multiple: true },
  help: { type: "boolean", short: "h", default: false },
} as const;

/** Help text lines for the selection options. */
export const SELECTION_HELP =
  `  --model PATH                      config.json or model directory
  --backend NAME|./module.ts        pin one backend for every layer (default: chosen per layer)
  --target auto|native|webgpu|reference   (default: auto = native, webgpu, reference in that order)
  --kv-cache-dtype auto|fp32|fp16|bf16|fp8|fp8_e4m3|fp8_e5m2|int8   (default: auto = model dtype)
  --kv-cache-dtype-skip-layers LIST comma list of layer indices and/or sliding_window, kept in the model dtype
  --int8-scheme per_tensor|per_token_head   (default: per_tensor)
  --block-size N                    tokens per KV block (default: 16)
  --backend-setting NAME=VALUE      a backend setting, e.g. accumulationPromotion=false (repeatable); it goes to
                                    each backend in use that declares it, and select prints those in force
  -h, --help                        this text`;

/** A command-line problem; the message names the flag. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Turns parsed flag values into selector options, with a clear error per flag.
 *
 * @example Usage
 * ```ts
 * import { selectOptionsFromFlags } from "./cli_options.ts";
 * import assert from "node:assert/strict";
 *
 * const opts = selectOptionsFromFlags({
 *   "kv-cache-dtype": "fp8", "kv-cache-dtype-skip-layers": "sliding_window,3",
 *   target: "auto", "int8-scheme": "per_tensor", "block-size": "16",
 * });
 * assert.equal(opts.kvCacheDtype, "fp8_e4m3");
 * assert.deepEqual(opts.skipLayers, ["sliding_window", 3]);
 * ```
 */
export function selectOptionsFromFlags(
  values: Record<string, string | boolean | string[] | undefined>,
): SelectOptions {
  const backendSettings = parseBackendSettings(values["backend-setting"]);
  const dtype = String(values["kv-cache-dtype"] ?? "auto");
  let kvCacheDtype: KvCacheDtype | "auto" = "auto";
  if (dtype !== "auto") {
    try {
      kvCacheDtype = parseKvCacheDtype(dtype);
    } catch (e) {
      throw new UsageError(`--kv-cache-dtype: ${(e as Error).message}`);
    }
  }
  const skipLayers: SkipLayer[] = String(
    values["kv-cache-dtype-skip-layers"] ?? "",
  ).split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    if (s === "sliding_window") return s;
    if (/^\d+$/.test(s)) return Number(s);
    throw new UsageError(
      `--kv-cache-dtype-skip-layers: "${s}" is neither a layer index nor sliding_window`,
    );
  });
  const target = String(values.target ?? "auto");
  if (target !== "auto" && !TARGETS.includes(target as Target)) {
    throw new UsageError(
      `--target: "${target}" is not a target: use auto, ${TARGETS.join(", ")}`,
    );
  }
  const scheme = String(values["int8-scheme"] ?? "per_tensor");
  if (scheme !== "per_tensor" && scheme !== "per_token_head") {
    throw new UsageError(
      `--int8-scheme: "${scheme}" is not a scheme: use per_tensor or per_token_head`,
    );
  }
  const blockSize = Number(values["block-size"] ?? 16);
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new UsageError(
      `--block-size: "${values["block-size"]}" is not a positive integer`,
    );
  }
  return {
    kvCacheDtype,
    skipLayers,
    target: target as Target | "auto",
    int8Scheme: scheme as Int8Scheme,
    blockSize,
    ...(typeof values.backend === "string" ? { backend: values.backend } : {}),
    ...(Object.keys(backendSettings).length > 0 ? { backendSettings } : {}),
  };
}

/**
 * `--backend-setting NAME=VALUE` flags as a record of texts; each setting's
 * type reads its text later (core/settings.ts), once the backends are known.
 *
 * @example Usage
 * ```ts
 * import { parseBackendSettings } from "./cli_options.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(
 *   parseBackendSettings(["accumulationPromotion=false", "promoteEveryBlocks=4"]),
 *   { accumulationPromotion: "false", promoteEveryBlocks: "4" },
 * );
 * assert.throws(() => parseBackendSettings(["promotion"]), /--backend-setting: "promotion" is not NAME=VALUE/);
 * ```
 */
export function parseBackendSettings(
  flags: string | boolean | string[] | undefined,
): Record<string, string> {
  const list = Array.isArray(flags)
    ? flags
    : typeof flags === "string"
    ? [flags]
    : [];
  const out: Record<string, string> = {};
  for (const flag of list) {
    const eq = flag.indexOf("=");
    const name = flag.slice(0, eq).trim();
    if (eq < 1 || name === "") {
      throw new UsageError(
        `--backend-setting: "${flag}" is not NAME=VALUE: write e.g. --backend-setting accumulationPromotion=false`,
      );
    }
    if (name in out) {
      throw new UsageError(
        `--backend-setting: ${name} is given twice (${out[name]} and ${
          flag.slice(eq + 1)
        }): give it once`,
      );
    }
    out[name] = flag.slice(eq + 1).trim();
  }
  return out;
}

/** Parses argv with the selection options plus extra ones. */
export function parseSelectionArgs<const E extends ParseArgsOptionsConfig>(
  args: string[],
  extra: E,
) {
  const options = { ...SELECTION_OPTIONS, ...extra } as
    & typeof SELECTION_OPTIONS
    & E;
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
