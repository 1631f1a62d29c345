/**
 * OCP FP8 E4M3FN: 1 sign, 4 exponent (bias 7), 3 mantissa bits. Max finite
 * 448 (0x7e), smallest subnormal 2^-9 (0x01), no infinities, NaN is S.1111.111.
 *
 * Encoding is defined in fp32 so that native and WGSL kernels can match it bit
 * for bit: `y = fp32(fp32(x) / fp32(scale))` (one correctly rounded fp32
 * division; in JS, `Math.fround(x / s)` is exactly that when `x` and `s` are
 * fp32 values), then `y` is rounded to nearest, ties to even. Magnitudes above
 * 448, infinities included, saturate to ±448 (CUDA's `__NV_SATFINITE`); -0
 * stays 0x80. NaN encodes to 0x7f whatever its sign, because neither JS nor
 * WGSL promises to keep a NaN's sign bit.
 *
 * @module
 */

const CHUNK = 4096;
const SCRATCH = new Float32Array(CHUNK);
const SCRATCH_BITS = new Uint32Array(SCRATCH.buffer);
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);
const RNE_MAGIC = 4503599627370496;

/** Value of every code at scale 1, indexed by code. */
const VALUES = new Float32Array(256);
for (let c = 0; c < 256; c++) {
  const e = (c >>> 3) & 0xf;
  const m = c & 7;
  const v = e === 15 && m === 7
    ? NaN
    : e === 0
    ? m * 2 ** -9
    : (8 + m) * 2 ** (e - 10);
  VALUES[c] = c & 0x80 ? -v : v;
}

/** Rounds the float32 with bits `u` and magnitude `abs` to an E4M3FN code. */
function encodeBits(u: number, abs: number): number {
  const a = u & 0x7fffffff;
  if (a > 0x43e00000) return a > 0x7f800000 ? 0x7f : ((u >>> 24) & 0x80) | 0x7e;
  if (a >= 0x3c800000) {
    // Rebias the exponent by (127 - 7) << 23, then round away 20 mantissa bits.
    return ((u >>> 24) & 0x80) |
      ((a - 0x3c000000 + 0x7ffff + ((a >>> 20) & 1)) >>> 20);
  }
  // Subnormal (|y| < 2^-6): the code is |y| * 2^9 rounded to an integer, ties to even.
  return ((u >>> 24) & 0x80) | ((abs * 512 + RNE_MAGIC) - RNE_MAGIC);
}

function fp32Scale(scale: number): number {
  const s = Math.fround(scale);
  if (!(s > 0 && s < Infinity)) {
    throw new RangeError(
      `Invalid fp8_e4m3 scale ${scale}: pass a positive finite fp32 number such as amax / 448`,
    );
  }
  return s;
}

/**
 * Encodes `x / scale` as an E4M3FN code (see the module doc for the exact rule).
 *
 * @param x The value to store.
 * @param scale Positive, finite; rounded to fp32 first, as kernels hold it.
 * @returns The code, 0 to 255.
 * @throws {RangeError} When the scale is not positive and finite in fp32.
 *
 * @example Round, saturate, scale
 * ```ts
 * import { encodeFp8E4m3 } from "./fp8_e4m3.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeFp8E4m3(1), 0x38);
 * assert.equal(encodeFp8E4m3(1000), 0x7e); // saturates to 448
 * assert.equal(encodeFp8E4m3(-0), 0x80);
 * assert.equal(encodeFp8E4m3(0.5, 0.25), 0x40); // 0.5 / 0.25 = 2
 * ```
 */
export function encodeFp8E4m3(x: number, scale = 1): number {
  F32[0] = Math.fround(x) / fp32Scale(scale);
  return encodeBits(F32_BITS[0], Math.abs(F32[0]));
}

/**
 * Decodes an E4M3FN code: `fp32(value * fp32(scale))`.
 *
 * @param code An integer in 0 to 255.
 * @param scale Positive, finite; rounded to fp32 first.
 * @throws {RangeError} When the code or the scale is out of range.
 *
 * @example Decode
 * ```ts
 * import { decodeFp8E4m3 } from "./fp8_e4m3.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeFp8E4m3(0x7e), 448);
 * assert.equal(decodeFp8E4m3(0x01), 2 ** -9);
 * assert.equal(decodeFp8E4m3(0x40, 0.25), 0.5);
 * assert.ok(Number.isNaN(decodeFp8E4m3(0xff)));
 * ```
 */
export function decodeFp8E4m3(code: number, scale = 1): number {
  if ((code & 0xff) !== code) {
    throw new RangeError(
      `Invalid fp8_e4m3 code ${code}: pass an integer from 0 to 255`,
    );
  }
  return Math.fround(VALUES[code] * fp32Scale(scale));
}

/**
 * Encodes a float32 array, element by element exactly as
 * {@linkcode encodeFp8E4m3} does.
 *
 * @param src Values, shape [n], dtype float32.
 * @param scale Positive, finite; one scale for the whole array.
 * @param dst Output, shape [>= n], dtype uint8 (E4M3FN codes); allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale is invalid or `dst` is shorter than `src`.
 *
 * @example Encode an array
 * ```ts
 * import { encodeFp8E4m3Array } from "./fp8_e4m3.ts";
 * import assert from "node:assert/strict";
 *
 * const codes = encodeFp8E4m3Array(new Float32Array([0.5, -1, 1e9]), 0.5);
 * assert.deepEqual([...codes], [0x38, 0xc0, 0x7e]);
 * ```
 */
export function encodeFp8E4m3Array(
  src: Float32Array,
  scale: number,
  dst: Uint8Array = new Uint8Array(src.length),
): Uint8Array {
  const s = fp32Scale(scale);
  checkLength(src.length, dst.length);
  // Dividing into a float32 scratch rounds each quotient to fp32 on the store;
  // the second pass then reads its bits without a per-element conversion call.
  for (let base = 0; base < src.length; base += CHUNK) {
    const n = Math.min(CHUNK, src.length - base);
    for (let i = 0; i < n; i++) SCRATCH[i] = src[base + i] / s;
    for (let i = 0; i < n; i++) {
      dst[base + i] = encodeBits(SCRATCH_BITS[i], Math.abs(SCRATCH[i]));
    }
  }
  return dst;
}

/**
 * Decodes E4M3FN codes into a float32 array through a 256-entry table.
 *
 * @param src Codes, shape [n], dtype uint8.
 * @param scale Positive, finite; one scale for the whole array.
 * @param dst Output, shape [>= n], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale is invalid or `dst` is shorter than `src`.
 *
 * @example Decode an array
 * ```ts
 * import { decodeFp8E4m3Array } from "./fp8_e4m3.ts";
 * import assert from "node:assert/strict";
 *
 * const values = decodeFp8E4m3Array(new Uint8Array([0x38, 0xc0, 0x7e]), 0.5);
 * assert.deepEqual([...values], [0.5, -1, 224]);
 * ```
 */
export function decodeFp8E4m3Array(
  src: Uint8Array,
  scale: number,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  const s = fp32Scale(scale);
  checkLength(src.length, dst.length);
  const table = new Float32Array(256);
  for (let c = 0; c < 256; c++) table[c] = VALUES[c] * s;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  return dst;
}

function checkLength(need: number, got: number): void {
  if (got < need) {
    throw new RangeError(
      `Destination holds ${got} elements but the source has ${need}: pass a destination of at least ${need} elements`,
    );
  }
}
