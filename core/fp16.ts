/**
 * IEEE 754 binary16 (fp16): 1 sign, 5 exponent (bias 15), 10 mantissa bits.
 * Encoding rounds once, to nearest with ties to even, straight from the input
 * number, so a float64 input is never rounded to fp32 on the way.
 *
 * @module
 */

const F64 = new Float64Array(1);
const F64_WORDS = new Uint32Array(F64.buffer);
// The float64 high word is element 1 on little-endian hosts, 0 on big-endian.
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const LO = 1 - HI;
const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);
/** Adding then subtracting 2^52 rounds a float64 in [0, 2^52) to an integer, ties to even. */
const RNE_MAGIC = 4503599627370496;
const TWO_POW_24 = 16777216;
const TWO_POW_MINUS_24 = 5.960464477539063e-8;

/**
 * Encodes a number as fp16 bits, rounding to nearest, ties to even. Overflow
 * becomes ±inf (0x7c00 | sign), NaN becomes 0x7e00 with the input's sign bit,
 * -0 stays 0x8000 and subnormals are exact.
 *
 * @param x Any number; float64 inputs are rounded once, not via fp32.
 * @returns The 16-bit pattern, 0 to 0xffff.
 *
 * @example Round to nearest even
 * ```ts
 * import { encodeFp16 } from "./fp16.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeFp16(1), 0x3c00);
 * assert.equal(encodeFp16(65504), 0x7bff);
 * assert.equal(encodeFp16(65520), 0x7c00); // the tie goes to the even code: inf
 * assert.equal(encodeFp16(2 ** -24), 0x0001);
 * ```
 */
export function encodeFp16(x: number): number {
  F64[0] = x;
  const hi = F64_WORDS[HI];
  const sign = (hi >>> 16) & 0x8000;
  const exp = (hi >>> 20) & 0x7ff;
  if (exp === 0x7ff) {
    return sign | (((hi & 0xfffff) | F64_WORDS[LO]) !== 0 ? 0x7e00 : 0x7c00);
  }
  const e = exp - 1023;
  if (e >= 16) return sign | 0x7c00;
  if (e >= -14) {
    const mant = hi & 0xfffff;
    const rest = mant & 0x3ff;
    let h = ((e + 15) << 10) | (mant >>> 10);
    // A carry out of the mantissa bumps the exponent, and 0x7bff + 1 is inf.
    if (rest > 0x200 || (rest === 0x200 && (F64_WORDS[LO] !== 0 || (h & 1)))) {
      h++;
    }
    return sign | h;
  }
  // Subnormal: |x| * 2^24 is exact, and the integer nearest it is the code.
  return sign | ((Math.abs(x) * TWO_POW_24 + RNE_MAGIC) - RNE_MAGIC);
}

/**
 * Decodes fp16 bits to a number (exact: every fp16 value is a float32 value).
 *
 * @param bits An integer in 0 to 0xffff.
 * @throws {RangeError} When `bits` is not an integer in 0 to 0xffff.
 *
 * @example Decode
 * ```ts
 * import { decodeFp16 } from "./fp16.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeFp16(0x3c00), 1);
 * assert.equal(decodeFp16(0xfc00), -Infinity);
 * assert.ok(Object.is(decodeFp16(0x8000), -0));
 * ```
 */
export function decodeFp16(bits: number): number {
  if ((bits & 0xffff) !== bits) {
    throw new RangeError(
      `Invalid fp16 code ${bits}: pass an integer from 0 to 65535`,
    );
  }
  return decodeBits(bits);
}

function decodeBits(h: number): number {
  const a = h & 0x7fff;
  if (a >= 0x400 && a < 0x7c00) {
    F32_BITS[0] = ((h & 0x8000) << 16) | ((a << 13) + 0x38000000);
    return F32[0];
  }
  if (a >= 0x7c00) {
    return a === 0x7c00 ? (h & 0x8000 ? -Infinity : Infinity) : NaN;
  }
  return (h & 0x8000 ? -a : a) * TWO_POW_MINUS_24;
}

function encodeF32Bits(u: number, x: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a >= 0x47800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a >= 0x38800000) {
    return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  }
  return sign | ((Math.abs(x) * TWO_POW_24 + RNE_MAGIC) - RNE_MAGIC);
}

/**
 * Encodes a float32 array as fp16 bits, element by element exactly as
 * {@linkcode encodeFp16} does (NaN keeps its sign bit).
 *
 * @param src Values, shape [n], dtype float32.
 * @param dst Output, shape [>= n], dtype uint16 (fp16 bits); allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When `dst` is shorter than `src`.
 *
 * @example Encode an array
 * ```ts
 * import { encodeFp16Array } from "./fp16.ts";
 * import assert from "node:assert/strict";
 *
 * const bits = encodeFp16Array(new Float32Array([1, -2, 1e6]));
 * assert.deepEqual([...bits], [0x3c00, 0xc000, 0x7c00]);
 * ```
 */
export function encodeFp16Array(
  src: Float32Array,
  dst: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  checkLength(src.length, dst.length);
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = encodeF32Bits(words[i], src[i]);
  return dst;
}

/**
 * Decodes fp16 bits into a float32 array (exact; NaN payloads are kept).
 *
 * @param src Codes, shape [n], dtype uint16 (fp16 bits).
 * @param dst Output, shape [>= n], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When `dst` is shorter than `src`.
 *
 * @example Decode an array
 * ```ts
 * import { decodeFp16Array } from "./fp16.ts";
 * import assert from "node:assert/strict";
 *
 * const values = decodeFp16Array(new Uint16Array([0x3c00, 0x0001, 0x7bff]));
 * assert.deepEqual([...values], [1, 2 ** -24, 65504]);
 * ```
 */
export function decodeFp16Array(
  src: Uint16Array,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  checkLength(src.length, dst.length);
  const words = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const a = h & 0x7fff;
    if (a >= 0x400) {
      // Normals rebias by adding (127 - 15) << 23; inf and NaN keep their payload.
      words[i] = ((h & 0x8000) << 16) |
        (a < 0x7c00
          ? (a << 13) + 0x38000000
          : 0x7f800000 | ((a & 0x3ff) << 13));
    } else {
      dst[i] = (h & 0x8000 ? -a : a) * TWO_POW_MINUS_24;
    }
  }
  return dst;
}

function checkLength(need: number, got: number): void {
  if (got < need) {
    throw new RangeError(
      `Destination holds ${got} elements but the source has ${need}: pass a destination of at least ${need} elements`,
    );
  }
}
