/**
 * The KV cache element types and their fixed facts (width, range, whether they
 * need scales). Codecs live one format per file beside this one.
 *
 * @module
 */

/** Every element type a KV cache can be stored in. */
export const KV_CACHE_DTYPES = [
  "fp32",
  "fp16",
  "bf16",
  "fp8_e4m3",
  "fp8_e5m2",
  "int8",
] as const;

/** A KV cache element type. `auto` (on the command line) means the model dtype. */
export type KvCacheDtype = typeof KV_CACHE_DTYPES[number];

/** The dtypes a model's weights and activations may use (the "model dtype"). */
export type ModelDtype = "fp32" | "fp16" | "bf16";

/**
 * How an int8 cache is scaled.
 * - `per_tensor`: one k_scale and one v_scale per layer, optional zero point.
 * - `per_token_head`: a scale per (token, kv head), computed when the token is
 *   written and stored beside the block; no calibration needed.
 */
export type Int8Scheme = "per_tensor" | "per_token_head";

/** Fixed facts about one dtype. */
export interface DtypeInfo {
  /** Bytes per stored element. */
  readonly bytes: 1 | 2 | 4;
  /** Largest finite magnitude the code space holds (before scaling). */
  readonly maxFinite: number;
  /** True for the 8-bit formats, which are stored as x/scale and need scales. */
  readonly quantized: boolean;
}

const INFO: Readonly<Record<KvCacheDtype, DtypeInfo>> = {
  fp32: { bytes: 4, maxFinite: 3.4028234663852886e38, quantized: false },
  fp16: { bytes: 2, maxFinite: 65504, quantized: false },
  bf16: { bytes: 2, maxFinite: 3.3895313892515355e38, quantized: false },
  fp8_e4m3: { bytes: 1, maxFinite: 448, quantized: true },
  fp8_e5m2: { bytes: 1, maxFinite: 57344, quantized: true },
  int8: { bytes: 1, maxFinite: 127, quantized: true },
};

/**
 * Facts about a dtype.
 *
 * @example Usage
 * ```ts
 * import { dtypeInfo } from "./dtype.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dtypeInfo("fp8_e4m3").bytes, 1);
 * assert.equal(dtypeInfo("fp8_e4m3").maxFinite, 448);
 * ```
 */
export function dtypeInfo(dtype: KvCacheDtype): DtypeInfo {
  const info = INFO[dtype];
  if (info === undefined) {
    throw new TypeError(
      `Unknown KV cache dtype "${dtype}": use one of ${
        KV_CACHE_DTYPES.join(", ")
      }`,
    );
  }
  return info;
}

/**
 * Parses a user-supplied dtype name; accepts the aliases vLLM users type
 * (`fp8` = `fp8_e4m3`, `bfloat16`, `float16`, `half`, `float32`, `float`).
 *
 * @example Usage
 * ```ts
 * import { parseKvCacheDtype } from "./dtype.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseKvCacheDtype("fp8"), "fp8_e4m3");
 * assert.equal(parseKvCacheDtype("bfloat16"), "bf16");
 * ```
 */
export function parseKvCacheDtype(name: string): KvCacheDtype {
  const alias: Record<string, KvCacheDtype> = {
    fp8: "fp8_e4m3",
    fp8_e4m3fn: "fp8_e4m3",
    float32: "fp32",
    float: "fp32",
    float16: "fp16",
    half: "fp16",
    bfloat16: "bf16",
  };
  const resolved = alias[name] ?? name;
  if ((KV_CACHE_DTYPES as readonly string[]).includes(resolved)) {
    return resolved as KvCacheDtype;
  }
  throw new TypeError(
    `Unknown KV cache dtype "${name}": use auto or one of ${
      KV_CACHE_DTYPES.join(", ")
    }`,
  );
}
