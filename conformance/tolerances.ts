/**
 * Every tolerance the suite uses, in one table, each derived from the
 * formats and fp32 accumulation rather than tuned to make a backend pass.
 * docs/CONFORMANCE.md prints this table with the derivations.
 *
 * Test data is scaled so that |v| <= 1 and logits have a standard deviation
 * of about 1; the bounds below assume that.
 *
 * @module
 */

import type { KvCacheDtype } from "../core/dtype.ts";

/** Bounds for one cache dtype. */
export interface DtypeTolerance {
  /**
   * Attention output against the oracle run on the backend's own dequantized
   * cache (kernel error only): |out - ref| <= atol + rtol * |ref|.
   */
  readonly kernel: { readonly atol: number; readonly rtol: number };
  /**
   * Attention output against the oracle run on the original, unquantized
   * K/V (kernel plus quantization error): max |out - ref| must stay below.
   */
  readonly quantized: number;
  /** Relative precision of one stored element: half a unit in the last place. */
  readonly halfUlp: number;
}

// kernel: a backend may hold P and V in the cache's 16-bit type (FlashAttention
// does), 8-bit caches in fp16. Rounding P to a type with unit roundoff u moves
// the output by at most u * sum(p|v|) <= u; twice that is the bound.
//   fp32: fp32 accumulation over up to 32k terms, ~ sqrt(n) * 2^-24 < 1e-5; 1e-4.
//   fp16 (u = 2^-11 = 4.9e-4) and 8-bit (dequantized to fp16): 2e-3 (~4u).
//   bf16 (u = 2^-8 = 3.9e-3): 1e-2, vLLM's own atol for bf16 attention.
// quantized: each element errs by at most halfUlp relative; V's error passes
// straight to the output (<= halfUlp), K's moves each logit by <= halfUlp *
// |q||k| * scale (~ 1 with our data), which moves the softmax-weighted mean by
// about the same: 4 * halfUlp covers both with margin. V's share is relative
// to |v|, so cases whose V reaches beyond 1 (values=offset: up to 2.5)
// multiply the bound by V's largest magnitude. Large-logit cases keep K's
// rounding out of the logits: their keys are exact in 16/32-bit caches and
// land on exact codes in fp8, and logits=shifted puts its shift on a key
// dim that is the same code for every key (the rest of K is the usual data).
const TABLE: Readonly<Record<KvCacheDtype, DtypeTolerance>> = {
  fp32: {
    kernel: { atol: 1e-4, rtol: 1e-4 },
    quantized: 1e-4,
    halfUlp: 2 ** -24,
  },
  fp16: {
    kernel: { atol: 2e-3, rtol: 2e-3 },
    quantized: 4e-3,
    halfUlp: 2 ** -11,
  },
  bf16: {
    kernel: { atol: 1e-2, rtol: 1e-2 },
    quantized: 2e-2,
    halfUlp: 2 ** -8,
  },
  fp8_e4m3: {
    kernel: { atol: 2e-3, rtol: 2e-3 },
    quantized: 0.25,
    halfUlp: 2 ** -4,
  },
  fp8_e5m2: {
    kernel: { atol: 2e-3, rtol: 2e-3 },
    quantized: 0.5,
    halfUlp: 2 ** -3,
  },
  // int8: half a step of scale = amax / 127 is 1/254 of amax.
  int8: {
    kernel: { atol: 2e-3, rtol: 2e-3 },
    quantized: 4 / 254,
    halfUlp: 1 / 254,
  },
};

/**
 * Backends that compute QK^T and PV in 8 bits also quantize Q and P: Q's
 * half-ulp in fp8_e4m3 is 2^-4 relative, so the kernel bound is that of the
 * quantized check.
 */
export const LOW_PRECISION_KERNEL = { atol: 0.1, rtol: 0.1 } as const;

/**
 * The tolerances for one cache dtype.
 *
 * @example Usage
 * ```ts
 * import { toleranceFor } from "./tolerances.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(toleranceFor("bf16").kernel.atol, 1e-2);
 * ```
 */
export function toleranceFor(dtype: KvCacheDtype): DtypeTolerance {
  return TABLE[dtype];
}

/** The whole table, for docs and reports. */
export const TOLERANCES: Readonly<Record<KvCacheDtype, DtypeTolerance>> = TABLE;

const FP8 = {
  fp8_e4m3: { mantissa: 3, minExp: -6, max: 448 },
  fp8_e5m2: { mantissa: 2, minExp: -14, max: 57344 },
} as const;

/**
 * The largest error a correct 8-bit write may make on x: half a unit in the
 * last place of the format at |x| / scale (after saturation), times scale,
 * plus the slack of the fp32 quotient x / scale (4 fp32 ulps) that may move a
 * value across a rounding tie. For int8 per tensor: half a step (scale / 2),
 * or the distance to the clamped value.
 *
 * @example Usage
 * ```ts
 * import { writeErrorBound } from "./tolerances.ts";
 * import assert from "node:assert/strict";
 *
 * // 1.0 in e4m3 sits where the step is 1/8: half of it, plus slack.
 * assert.ok(Math.abs(writeErrorBound("fp8_e4m3", 1, 1, 0) - 1 / 16) < 1e-6);
 * ```
 */
export function writeErrorBound(
  dtype: KvCacheDtype,
  x: number,
  scale: number,
  zeroPoint: number,
): number {
  const y = Math.abs(x / scale);
  const slack = 4 * 2 ** -23 * y * scale;
  if (dtype === "fp8_e4m3" || dtype === "fp8_e5m2") {
    const f = FP8[dtype];
    const clamped = Math.min(y, f.max);
    const exp = Math.max(
      clamped > 0 ? Math.floor(Math.log2(clamped)) : f.minExp,
      f.minExp,
    );
    const halfStep = 2 ** (exp - f.mantissa) / 2;
    return (y - clamped + halfStep) * scale + slack;
  }
  if (dtype === "int8") {
    const q = x / scale + zeroPoint;
    const over = q > 127 ? q - 127 : q < -128 ? -128 - q : 0;
    return (over + 0.5) * scale + slack;
  }
  return 0;
}
