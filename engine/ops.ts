/**
 * The elementwise and row-wise operations of a decoder layer, on float32
 * arrays. Arithmetic runs in float64 (what JavaScript numbers are) and is
 * rounded once when stored, so these are at least as accurate as PyTorch's
 * float32 kernels: they are the oracle for the native and WebGPU ops.
 *
 * @module
 */

/** Options for {@linkcode rmsNorm}. */
export interface RmsNormOptions {
  /** Added to the mean square before the square root. */
  readonly eps: number;
  /**
   * Multiply by (1 + w) instead of w (Gemma stores the weight zero-centred).
   * @default false
   */
  readonly addOne?: boolean;
  /** Where to write; may be `x` itself. Allocated when omitted. shape like x, float32 */
  readonly out?: Float32Array;
}

/**
 * RMSNorm over each row: y = x / sqrt(mean(x^2) + eps) * w (or * (1 + w)).
 *
 * @example Usage
 * ```ts
 * import { rmsNorm } from "./ops.ts";
 * import assert from "node:assert/strict";
 *
 * // One row: rms(3, 4) = sqrt(12.5); Gemma style scales by (1 + w).
 * const y = rmsNorm(Float32Array.of(3, 4), Float32Array.of(0, 1), { eps: 0, addOne: true });
 * assert.ok(Math.abs(y[0] - 3 / Math.sqrt(12.5)) < 1e-6);
 * assert.ok(Math.abs(y[1] - 8 / Math.sqrt(12.5)) < 1e-6);
 * ```
 *
 * @param x Rows to normalize. shape [rows, dim], float32
 * @param weight shape [dim], float32
 * @returns `out`. shape [rows, dim], float32
 */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array,
  options: RmsNormOptions,
): Float32Array {
  const dim = weight.length;
  if (x.length % dim !== 0) {
    throw new RangeError(
      `rmsNorm: x has ${x.length} elements, not a multiple of the weight's ${dim}`,
    );
  }
  const out = options.out ?? new Float32Array(x.length);
  const add = options.addOne ? 1 : 0;
  for (let r = 0; r < x.length; r += dim) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r + i] * x[r + i];
    // PyTorch rounds the reciprocal RMS to float32 before scaling; so do we.
    const inv = Math.fround(1 / Math.sqrt(ss / dim + options.eps));
    for (let i = 0; i < dim; i++) {
      out[r + i] = Math.fround(x[r + i] * inv) * (add + weight[i]);
    }
  }
  return out;
}

/**
 * Soft-caps in place: x = c * tanh(x / c).
 *
 * @example Usage
 * ```ts
 * import { softcap } from "./ops.ts";
 * import assert from "node:assert/strict";
 *
 * const x = softcap(Float32Array.of(0, 1e9), 30);
 * assert.deepEqual([...x], [0, 30]);
 * ```
 *
 * @param x shape [n], float32; overwritten.
 * @returns `x`.
 */
export function softcap(x: Float32Array, cap: number): Float32Array {
  for (let i = 0; i < x.length; i++) x[i] = cap * Math.tanh(x[i] / cap);
  return x;
}

/**
 * Adds `b` into `a` (the residual connection).
 *
 * @param a shape [n], float32; overwritten with a + b.
 * @param b shape [n], float32
 * @returns `a`.
 */
export function addInPlace(a: Float32Array, b: Float32Array): Float32Array {
  if (a.length !== b.length) {
    throw new RangeError(
      `addInPlace: lengths differ: ${a.length} and ${b.length}`,
    );
  }
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

/** SiLU: x * sigmoid(x). */
export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh approximation (PyTorch's `approximate="tanh"`,
 * transformers' gelu_pytorch_tanh).
 *
 * @example Usage
 * ```ts
 * import { geluTanh } from "./ops.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(geluTanh(0), 0);
 * assert.ok(Math.abs(geluTanh(1) - 0.8411920) < 1e-6);
 * ```
 */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
}

/**
 * The gated MLP's middle: gate = act(gate) * up, in place (SwiGLU, GeGLU).
 *
 * @example Usage
 * ```ts
 * import { gatedActivation, silu } from "./ops.ts";
 * import assert from "node:assert/strict";
 *
 * const gate = gatedActivation(Float32Array.of(1), Float32Array.of(2), "silu");
 * assert.equal(gate[0], Math.fround(2 * silu(1)));
 * ```
 *
 * @param gate shape [n], float32; overwritten.
 * @param up shape [n], float32
 * @returns `gate`.
 */
export function gatedActivation(
  gate: Float32Array,
  up: Float32Array,
  activation: "silu" | "gelu_tanh",
): Float32Array {
  if (gate.length !== up.length) {
    throw new RangeError(
      `gatedActivation: gate has ${gate.length} elements but up has ${up.length}`,
    );
  }
  const act = activation === "silu" ? silu : geluTanh;
  for (let i = 0; i < gate.length; i++) gate[i] = act(gate[i]) * up[i];
  return gate;
}
