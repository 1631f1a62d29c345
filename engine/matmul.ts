/**
 * y = x W^T (+ b), the projection every linear layer runs, with W stored as
 * PyTorch stores nn.Linear weights: [outFeatures, inFeatures], row-major.
 *
 * @module
 */

/** A row-major matrix. */
export interface Matrix {
  /** shape [rows, cols], float32 */
  readonly data: Float32Array;
  /** Rows; for a weight, output features. */
  readonly rows: number;
  /** Columns (the row stride); for a weight, input features. */
  readonly cols: number;
}

/** Options for {@linkcode matmul}. */
export interface MatmulOptions {
  /** Added to every output row. shape [weight.rows], float32 */
  readonly bias?: Float32Array;
  /** Where to write; must not alias x. Allocated when omitted. shape [n, weight.rows], float32 */
  readonly out?: Float32Array;
}

// Rows of x kept hot while every row of W streams past them once: 32 rows of
// a 4096-wide x are 512 KiB, about an L2.
const ROW_BLOCK = 32;

/**
 * Multiplies x [n, k] by the transpose of W [m, k]: out[i, j] = sum_k
 * x[i, k] W[j, k] (+ bias[j]). Sums accumulate in float64 and are rounded
 * to float32 once; the bias is added after, as PyTorch adds it.
 *
 * @example Usage
 * ```ts
 * import { matmul } from "./matmul.ts";
 * import assert from "node:assert/strict";
 *
 * const w = { data: Float32Array.of(1, 0, 0, 1, 1, 1), rows: 3, cols: 2 };
 * const y = matmul(Float32Array.of(2, 3), w, { bias: Float32Array.of(0, 0, 10) });
 * assert.deepEqual([...y], [2, 3, 15]);
 * ```
 *
 * @param x shape [n, weight.cols], float32
 * @returns `out`: shape [n, weight.rows], float32
 */
export function matmul(
  x: Float32Array,
  weight: Matrix,
  options: MatmulOptions = {},
): Float32Array {
  const { data: w, rows: m, cols: k } = weight;
  if (w.length !== m * k) {
    throw new RangeError(
      `matmul: weight has ${w.length} elements but claims shape [${m}, ${k}]`,
    );
  }
  if (x.length % k !== 0) {
    throw new RangeError(
      `matmul: x has ${x.length} elements, not a multiple of the weight's ${k} columns`,
    );
  }
  const n = x.length / k;
  const out = options.out ?? new Float32Array(n * m);
  if (out.length !== n * m) {
    throw new RangeError(
      `matmul: out has ${out.length} elements, expected ${n} x ${m} = ${n * m}`,
    );
  }
  const bias = options.bias;
  if (bias && bias.length !== m) {
    throw new RangeError(
      `matmul: bias has ${bias.length} elements, expected ${m}`,
    );
  }
  for (let i0 = 0; i0 < n; i0 += ROW_BLOCK) {
    const i1 = Math.min(n, i0 + ROW_BLOCK);
    let j = 0;
    for (; j + 1 < m; j += 2) {
      let i = i0;
      for (; i + 3 < i1; i += 4) tile4x2(x, i, w, j, k, m, out);
      for (; i < i1; i++) tile1x2(x, i, w, j, k, m, out);
    }
    if (j < m) {
      for (let i = i0; i < i1; i++) out[i * m + j] = dot(x, i, w, j, k);
    }
  }
  if (bias) {
    for (let i = 0; i < n * m; i += m) {
      for (let j = 0; j < m; j++) out[i + j] += bias[j];
    }
  }
  return out;
}

// Micro-kernels: a tile of rows of x against one or two rows of W, so each
// loaded value feeds several multiply-adds. Accumulation is in float64.

function tile4x2(
  x: Float32Array,
  i: number,
  w: Float32Array,
  j: number,
  k: number,
  m: number,
  out: Float32Array,
): void {
  const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
  const b0 = j * k, b1 = b0 + k;
  let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
  for (let t = 0; t < k; t++) {
    const w0 = w[b0 + t], w1 = w[b1 + t];
    let v = x[a0 + t];
    s00 += v * w0;
    s01 += v * w1;
    v = x[a1 + t];
    s10 += v * w0;
    s11 += v * w1;
    v = x[a2 + t];
    s20 += v * w0;
    s21 += v * w1;
    v = x[a3 + t];
    s30 += v * w0;
    s31 += v * w1;
  }
  const o = i * m + j;
  out[o] = s00;
  out[o + 1] = s01;
  out[o + m] = s10;
  out[o + m + 1] = s11;
  out[o + 2 * m] = s20;
  out[o + 2 * m + 1] = s21;
  out[o + 3 * m] = s30;
  out[o + 3 * m + 1] = s31;
}

function tile1x2(
  x: Float32Array,
  i: number,
  w: Float32Array,
  j: number,
  k: number,
  m: number,
  out: Float32Array,
): void {
  const a = i * k, b0 = j * k, b1 = b0 + k;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let t = 0;
  for (; t + 1 < k; t += 2) {
    const v0 = x[a + t], v1 = x[a + t + 1];
    s0 += v0 * w[b0 + t];
    s1 += v1 * w[b0 + t + 1];
    s2 += v0 * w[b1 + t];
    s3 += v1 * w[b1 + t + 1];
  }
  if (t < k) {
    s0 += x[a + t] * w[b0 + t];
    s2 += x[a + t] * w[b1 + t];
  }
  out[i * m + j] = s0 + s1;
  out[i * m + j + 1] = s2 + s3;
}

function dot(
  x: Float32Array,
  i: number,
  w: Float32Array,
  j: number,
  k: number,
): number {
  let s = 0;
  for (let t = 0; t < k; t++) s += x[i * k + t] * w[j * k + t];
  return s;
}
