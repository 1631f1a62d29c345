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
 * The kernel bound a target is held to for one cache dtype: the dtype's own,
 * or {@linkcode LOW_PRECISION_KERNEL} when it computes in 8 bits (it rounds
 * Q and P too).
 *
 * @example Usage
 * ```ts
 * import { kernelBound, LOW_PRECISION_KERNEL } from "./tolerances.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(kernelBound({ lowPrecisionCompute: false }, "fp16"), { atol: 2e-3, rtol: 2e-3 });
 * assert.equal(kernelBound({ lowPrecisionCompute: true }, "fp16"), LOW_PRECISION_KERNEL);
 * ```
 */
export function kernelBound(
  caps: { readonly lowPrecisionCompute: boolean },
  dtype: KvCacheDtype,
): { readonly atol: number; readonly rtol: number } {
  return caps.lowPrecisionCompute ? LOW_PRECISION_KERNEL : TABLE[dtype].kernel;
}

/**
 * The bound against the oracle on the original K/V (|v| <= 1): the dtype's
 * quantization bound, or at least the 8-bit kernel bound for a target that
 * computes in 8 bits.
 *
 * @example Usage
 * ```ts
 * import { quantizedBound } from "./tolerances.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(quantizedBound({ lowPrecisionCompute: false }, "fp32"), 1e-4);
 * assert.equal(quantizedBound({ lowPrecisionCompute: true }, "fp8_e4m3"), 0.25);
 * ```
 */
export function quantizedBound(
  caps: { readonly lowPrecisionCompute: boolean },
  dtype: KvCacheDtype,
): number {
  const q = TABLE[dtype].quantized;
  return caps.lowPrecisionCompute ? Math.max(q, LOW_PRECISION_KERNEL.atol) : q;
}

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

/**
 * The whole table, by cache dtype. docs/CONFORMANCE.md prints it, and
 * tests/conformance_tolerance_docs_test.ts keeps the two equal.
 */
export const TOLERANCES: Readonly<Record<KvCacheDtype, DtypeTolerance>> = TABLE;

/**
 * The one-hot attention check (one_hot_cases.ts), which names stored 8-bit
 * codes through the kernel's read path when there is no readCache.
 *
 * A value passes when it lies within `fractionOfGap` (1/4) of the gap from
 * the expected code value to its nearest neighbouring code value, so it
 * could come from no other code. V is read through a one-key softmax (weight
 * exactly 1): a kernel holding V or P in fp16 errs by at most 2^-11
 * relative, far inside a quarter gap (the smallest relative gap between
 * 8-bit codes is 1/(128 + |zeroPoint|) for int8, 1/15 for e4m3).
 *
 * K is recovered as ln(out1 / out0) / (alpha * softmax scale) with the
 * logit gap alpha * s * |k| = `logitGap` (6). With P and the normalizer held
 * in fp16 (unit roundoff u = 2^-11) each output errs by about 3u, so the
 * logarithm by about 6u to 8u (<= 2^-8); the recovered key's relative error
 * is that over the logit gap, 2^-8 / 6 = 6.5e-4. A quarter gap is at least
 * 1 / (4 * 137) = 1.8e-3 relative (int8 with zero point -7 or 9, q up to
 * 128 + 9 steps from the zero point), about 3x the error, and far more for
 * fp8.
 *
 * What this cannot see, unlike readCache's exact check: +0 against -0 (both
 * give the same softmax), infinite keys (the logit is infinite; such inputs
 * are left out: an e5m2 inf key is not probed), anything within a quarter
 * gap (a decode that is off by less, e.g. a scale rounded differently), and
 * slots outside the attended sequences. Backends that compute in 8 bits
 * round P to 8 bits (1/254 absolute), too coarse to name a key's code: they
 * get the V probes only.
 */
export const ONE_HOT = {
  logitGap: 6,
  fractionOfGap: 1 / 4,
  rule:
    "each output must name its stored code: within 1/4 of the gap between the codec's expected value and its nearest neighbouring code value (V: the output of a one-key softmax; K: ln(out[1] / out[0]) / (alpha * softmax scale) with a zero key beside it), NaN where the code is NaN, the same infinity where it is infinite",
} as const;
