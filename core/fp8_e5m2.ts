/**
 * OCP FP8 E5M2: 1 sign, 5 exponent (bias 15), 2 mantissa bits. Max finite
 * 57344 (0x7b), smallest subnormal 2^-16 (0x01), ±inf is 0x7c / 0xfc, NaN is
 * S.11111.xx with xx not 00.
 *
 * Encoding is defined in fp32 so that native and WGSL kernels can match it bit
 * for bit: `y = fp32(fp32(x) / fp32(scale))` (one correctly rounded fp32
 * division; in JS, `Math.fround(x / s)` is exactly that when `x` and `s` are
 * fp32 values), then `y` is rounded to nearest, ties to even. A finite
 * `fp32(x)` never becomes inf: magnitudes above 57344 saturate to ±57344, even
 * when the division itself overflows fp32. ±inf stays ±inf; -0 stays 0x80.
 * NaN encodes to 0x7e whatever its sign, because neither JS nor WGSL promises
 * to keep a NaN's sign bit.
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
  const e = (c >>> 2) & 0x1f;
  const m = c & 3;
  const v = e === 31
    ? (m === 0 ? Infinity : NaN)
    : e === 0
    ? m * 2 ** -16
    : (4 + m) * 2 ** (e - 17);
  VALUES[c] = c & 0x80 ? -v : v;
}

/**
 * Rounds the float32 with bits `u` and magnitude `abs` to an E5M2 code; an
 * infinite `y` gives the inf code, which callers turn into ±57344 when the
 * unscaled input was finite.
 */
function encodeBits(u: number, abs: number): number {
  const a = u & 0x7fffffff;
  if (a > 0x47600000) {
    if (a > 0x7f800000) return 0x7e;
    return ((u >>> 24) & 0x80) | (a === 0x7f800000 ? 0x7c : 0x7b);
  }
  if (a >= 0x38800000) {
    // Rebias the exponent by (127 - 15) << 23, then round away 21 mantissa bits.
    return ((u >>> 24) & 0x80) |
      ((a - 0x38000000 + 0xfffff + ((a >>> 21) & 1)) >>> 21);
  }
  // Subnormal (|y| < 2^-14): the code is |y| * 2^16 rounded to an integer, ties to even.
  return ((u >>> 24) & 0x80) | ((abs * 65536 + RNE_MAGIC) - RNE_MAGIC);
}

function fp32Scale(scale: number): number {
  const s = Math.fround(scale);
  if (!(s > 0 && s < Infinity)) {
    throw new RangeError(
      `Invalid fp8_e5m2 scale ${scale}: pass a positive finite fp32 number such as amax / 57344`,
    );
  }
  return s;
}

/**
 * Encodes `x / scale` as an E5M2 code (see the module doc for the exact rule).
 *
 * @param x The value to store.
 * @param scale Positive, finite; rounded to fp32 first, as kernels hold it.
 * @returns The code, 0 to 255.
 * @throws {RangeError} When the scale is not positive and finite in fp32.
 *
 * @example Round, saturate, keep inf
 * ```ts
 * import { encodeFp8E5m2 } from "./fp8_e5m2.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeFp8E5m2(1), 0x3c);
 * assert.equal(encodeFp8E5m2(1e6), 0x7b); // finite input saturates to 57344
 * assert.equal(encodeFp8E5m2(-Infinity), 0xfc);
 * assert.equal(encodeFp8E5m2(0.5, 0.25), 0x40); // 0.5 / 0.25 = 2
 * ```
 */
export function encodeFp8E5m2(x: number, scale = 1): number {
  const xf = Math.fround(x);
  F32[0] = xf / fp32Scale(scale);
  const code = encodeBits(F32_BITS[0], Math.abs(F32[0]));
  return (code & 0x7f) === 0x7c && Math.abs(xf) !== Infinity ? code - 1 : code;
}

/**
 * Decodes an E5M2 code: `fp32(value * fp32(scale))`.
 *
 * @param code An integer in 0 to 255.
 * @param scale Positive, finite; rounded to fp32 first.
 * @throws {RangeError} When the code or the scale is out of range.
 *
 * @example Decode
 * ```ts
 * import { decodeFp8E5m2 } from "./fp8_e5m2.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeFp8E5m2(0x7b), 57344);
 * assert.equal(decodeFp8E5m2(0x01), 2 ** -16);
 * assert.equal(decodeFp8E5m2(0xfc), -Infinity);
 * assert.equal(decodeFp8E5m2(0x40, 0.25), 0.5);
 * ```
 */
export function decodeFp8E5m2(code: number, scale = 1): number {
  if ((code & 0xff) !== code) {
    throw new RangeError(
      `Invalid fp8_e5m2 code ${code}: pass an integer from 0 to 255`,
    );
  }
  return Math.fround(VALUES[code] * fp32Scale(scale));
}

/**
 * Encodes a float32 array, element by element exactly as
 * {@linkcode encodeFp8E5m2} does.
 *
 * @param src Values, shape [n], dtype float32.
 * @param scale Positive, finite; one scale for the whole array.
 * @param dst Output, shape [>= n], dtype uint8 (E5M2 codes); allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale is invalid or `dst` is shorter than `src`.
 *
 * @example Encode an array
 * ```ts
 * import { encodeFp8E5m2Array } from "./fp8_e5m2.ts";
 * import assert from "node:assert/strict";
 *
 * const codes = encodeFp8E5m2Array(new Float32Array([0.5, -1, 1e9]), 0.5);
 * assert.deepEqual([...codes], [0x3c, 0xc0, 0x7b]);
 * ```
 */
export function encodeFp8E5m2Array(
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
      let code = encodeBits(SCRATCH_BITS[i], Math.abs(SCRATCH[i]));
      if ((code & 0x7f) === 0x7c && Math.abs(src[base + i]) !== Infinity) {
        code--;
      }
      dst[base + i] = code;
    }
  }
  return dst;
}

/**
 * Decodes E5M2 codes into a float32 array through a 256-entry table.
 *
 * @param src Codes, shape [n], dtype uint8.
 * @param scale Positive, finite; one scale for the whole array.
 * @param dst Output, shape [>= n], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale is invalid or `dst` is shorter than `src`.
 *
 * @example Decode an array
 * ```ts
 * import { decodeFp8E5m2Array } from "./fp8_e5m2.ts";
 * import assert from "node:assert/strict";
 *
 * const values = decodeFp8E5m2Array(new Uint8Array([0x3c, 0xc0, 0x7b]), 0.5);
 * assert.deepEqual([...values], [0.5, -1, 28672]);
 * ```
 */
export function decodeFp8E5m2Array(
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
