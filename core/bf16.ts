/**
 * bfloat16: the top 16 bits of a float32 (1 sign, 8 exponent, 7 mantissa
 * bits). Encoding rounds the float32 value to nearest, ties to even; a number
 * that is not a float32 is first rounded to float32 (`Math.fround`), which is
 * what `x.float().bfloat16()` does.
 *
 * @module
 */

const F32 = new Float32Array(1);
const F32_BITS = new Uint32Array(F32.buffer);

function encodeBits(u: number): number {
  // NaN: set the quiet bit so that dropping the low payload bits cannot make inf.
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  // Adding 0x7fff plus the kept LSB carries exactly when RNE rounds up; the
  // carry from the largest finite float32 lands on inf, as RNE requires.
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

/**
 * Encodes a number as bf16 bits: `Math.fround(x)`, then round to nearest even
 * on the low 16 bits. Values that round past the largest finite bf16
 * (3.3895e38) become ±inf; NaN stays a quiet NaN with its sign bit.
 *
 * @returns The 16-bit pattern, 0 to 0xffff.
 *
 * @example Round to nearest even
 * ```ts
 * import { encodeBf16 } from "./bf16.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeBf16(1), 0x3f80);
 * assert.equal(encodeBf16(1 + 2 ** -8), 0x3f80); // tie, kept even
 * assert.equal(encodeBf16(1 + 3 * 2 ** -8), 0x3f82); // tie, rounded up to even
 * assert.equal(encodeBf16(-Infinity), 0xff80);
 * ```
 */
export function encodeBf16(x: number): number {
  F32[0] = x;
  return encodeBits(F32_BITS[0]);
}

/**
 * Decodes bf16 bits to a number (exact).
 *
 * @param bits An integer in 0 to 0xffff.
 * @throws {RangeError} When `bits` is not an integer in 0 to 0xffff.
 *
 * @example Decode
 * ```ts
 * import { decodeBf16 } from "./bf16.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeBf16(0x3f80), 1);
 * assert.equal(decodeBf16(0xc040), -3);
 * assert.ok(Number.isNaN(decodeBf16(0x7fc0)));
 * ```
 */
export function decodeBf16(bits: number): number {
  if ((bits & 0xffff) !== bits) {
    throw new RangeError(
      `Invalid bf16 code ${bits}: pass an integer from 0 to 65535`,
    );
  }
  F32_BITS[0] = bits << 16;
  return F32[0];
}

/**
 * Encodes a float32 array as bf16 bits, element by element exactly as
 * {@linkcode encodeBf16} does.
 *
 * @param src Values, shape [n], dtype float32.
 * @param dst Output, shape [>= n], dtype uint16 (bf16 bits); allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When `dst` is shorter than `src`.
 *
 * @example Encode an array
 * ```ts
 * import { encodeBf16Array } from "./bf16.ts";
 * import assert from "node:assert/strict";
 *
 * const bits = encodeBf16Array(new Float32Array([1, -2, 0.1]));
 * assert.deepEqual([...bits], [0x3f80, 0xc000, 0x3dcd]);
 * ```
 */
export function encodeBf16Array(
  src: Float32Array,
  dst: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  checkLength(src.length, dst.length);
  const words = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = encodeBits(words[i]);
  return dst;
}

/**
 * Decodes bf16 bits into a float32 array (exact; NaN payloads are kept).
 *
 * @param src Codes, shape [n], dtype uint16 (bf16 bits).
 * @param dst Output, shape [>= n], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When `dst` is shorter than `src`.
 *
 * @example Decode an array
 * ```ts
 * import { decodeBf16Array } from "./bf16.ts";
 * import assert from "node:assert/strict";
 *
 * const values = decodeBf16Array(new Uint16Array([0x3f80, 0x4049]));
 * assert.deepEqual([...values], [1, 3.140625]);
 * ```
 */
export function decodeBf16Array(
  src: Uint16Array,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  checkLength(src.length, dst.length);
  const words = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) words[i] = src[i] << 16;
  return dst;
}

function checkLength(need: number, got: number): void {
  if (got < need) {
    throw new RangeError(
      `Destination holds ${got} elements but the source has ${need}: pass a destination of at least ${need} elements`,
    );
  }
}
