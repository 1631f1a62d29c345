/**
 * int8 KV cache codes: `q = clamp(roundHalfEven(fp32(fp32(x) / fp32(scale))) +
 * zeroPoint, -128, 127)` and `x' = fp32((q - zeroPoint) * fp32(scale))`. The
 * division is one correctly rounded fp32 division so that kernels can match
 * the codes bit for bit. ±inf clamps to 127 / -128; NaN encodes as the zero
 * point (it decodes to 0), because an int8 code has no NaN and a kernel can
 * always test `x != x`.
 *
 * Two granularities live here: one scale per tensor (optionally with a zero
 * point), and dynamic symmetric scales per (token, head) that a cache block
 * stores beside its codes.
 *
 * @module
 */

const CHUNK = 4096;
const SCRATCH = new Float32Array(CHUNK);
/** Adding then subtracting 1.5 * 2^52 rounds |y| < 2^51 to an integer, ties to even. */
const RNE_MAGIC = 6755399441055744;

function fp32Scale(scale: number): number {
  const s = Math.fround(scale);
  if (!(s > 0 && s < Infinity)) {
    throw new RangeError(
      `Invalid int8 scale ${scale}: pass a positive finite fp32 number such as amax / 127`,
    );
  }
  return s;
}

function checkZeroPoint(zeroPoint: number): void {
  if (!Number.isInteger(zeroPoint) || zeroPoint < -128 || zeroPoint > 127) {
    throw new RangeError(
      `Invalid int8 zero point ${zeroPoint}: pass an integer from -128 to 127`,
    );
  }
}

/** Rounds the fp32 quotient `y`, adds the zero point and clamps to int8. */
function quantize(y: number, zeroPoint: number): number {
  if (y !== y) return zeroPoint;
  // Clamping first keeps the magic rounding in range and cannot change the
  // result: any |y| >= 1024 clamps to the same bound for every zero point.
  const r = ((y > 1024 ? 1024 : y < -1024 ? -1024 : y) + RNE_MAGIC) - RNE_MAGIC;
  const q = r + zeroPoint;
  return q > 127 ? 127 : q < -128 ? -128 : q;
}

/**
 * Encodes `x / scale` as an int8 code (see the module doc for the exact rule).
 *
 * @param scale Positive, finite; rounded to fp32 first, as kernels hold it.
 * @param zeroPoint Integer in -128 to 127.
 * @returns The code, -128 to 127.
 * @throws {RangeError} When the scale or the zero point is invalid.
 *
 * @example Round half to even, clamp
 * ```ts
 * import { encodeInt8 } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(encodeInt8(0.5, 1), 0);
 * assert.equal(encodeInt8(1.5, 1), 2);
 * assert.equal(encodeInt8(-2.5, 1), -2);
 * assert.equal(encodeInt8(1000, 1), 127);
 * assert.equal(encodeInt8(0, 0.1, -5), -5);
 * ```
 */
export function encodeInt8(x: number, scale: number, zeroPoint = 0): number {
  const s = fp32Scale(scale);
  checkZeroPoint(zeroPoint);
  return quantize(Math.fround(Math.fround(x) / s), zeroPoint);
}

/**
 * Decodes an int8 code: `fp32((q - zeroPoint) * fp32(scale))`.
 *
 * @param q Integer in -128 to 127.
 * @param scale Positive, finite; rounded to fp32 first.
 * @param zeroPoint Integer in -128 to 127.
 * @throws {RangeError} When the code, the scale or the zero point is invalid.
 *
 * @example Decode with a zero point
 * ```ts
 * import { decodeInt8 } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeInt8(12, 0.5), 6);
 * assert.equal(decodeInt8(-5, 0.5, -5), 0);
 * ```
 */
export function decodeInt8(q: number, scale: number, zeroPoint = 0): number {
  if ((q << 24 >> 24) !== q) {
    throw new RangeError(
      `Invalid int8 code ${q}: pass an integer from -128 to 127`,
    );
  }
  const s = fp32Scale(scale);
  checkZeroPoint(zeroPoint);
  return Math.fround((q - zeroPoint) * s);
}

/**
 * Encodes a float32 array with one scale and zero point, element by element
 * exactly as {@linkcode encodeInt8} does.
 *
 * @param src Values, shape [n], dtype float32.
 * @param dst Output, shape [>= n], dtype int8; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale or zero point is invalid or `dst` is shorter than `src`.
 *
 * @example Encode an array
 * ```ts
 * import { encodeInt8Array } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * const q = encodeInt8Array(new Float32Array([0.25, -1, 100]), 0.5);
 * assert.deepEqual([...q], [0, -2, 127]);
 * ```
 */
export function encodeInt8Array(
  src: Float32Array,
  scale: number,
  zeroPoint = 0,
  dst: Int8Array = new Int8Array(src.length),
): Int8Array {
  const s = fp32Scale(scale);
  checkZeroPoint(zeroPoint);
  checkLength(src.length, dst.length);
  for (let base = 0; base < src.length; base += CHUNK) {
    const n = Math.min(CHUNK, src.length - base);
    // The float32 store rounds each quotient to fp32, as encodeInt8 does.
    for (let i = 0; i < n; i++) SCRATCH[i] = src[base + i] / s;
    for (let i = 0; i < n; i++) dst[base + i] = quantize(SCRATCH[i], zeroPoint);
  }
  return dst;
}

/**
 * Decodes int8 codes into a float32 array through a 256-entry table.
 *
 * @param src Codes, shape [n], dtype int8.
 * @param dst Output, shape [>= n], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the scale or zero point is invalid or `dst` is shorter than `src`.
 *
 * @example Decode an array
 * ```ts
 * import { decodeInt8Array } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * const x = decodeInt8Array(new Int8Array([0, -2, 127]), 0.5);
 * assert.deepEqual([...x], [0, -1, 63.5]);
 * ```
 */
export function decodeInt8Array(
  src: Int8Array,
  scale: number,
  zeroPoint = 0,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  const s = fp32Scale(scale);
  checkZeroPoint(zeroPoint);
  checkLength(src.length, dst.length);
  const table = new Float32Array(256);
  for (let q = -128; q < 128; q++) table[q & 0xff] = (q - zeroPoint) * s;
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i] & 0xff];
  return dst;
}

/** Int8 codes with one scale per (token, head), as a cache block stores them. */
export interface Int8PerTokenHead {
  /** Codes, shape [numTokens, numHeads, headDim], dtype int8, zero point 0. */
  codes: Int8Array;
  /** Scales, shape [numTokens, numHeads], dtype float32. */
  scales: Float32Array;
}

/**
 * Quantizes K or V symmetrically with a dynamic scale per (token, head):
 * `scale = fp32(amax / 127)` over that head's `headDim` values, then each
 * value is encoded as {@linkcode encodeInt8} does with that scale and zero
 * point 0. Infinities and NaN are left out of amax (they would turn the whole
 * head into zeros); then +inf clamps to 127, -inf to -128, and NaN encodes
 * as 0. A head whose amax is 0, or so small that amax / 127 underflows fp32,
 * gets scale 1: every code is then 0, which holds those values to within
 * 2^-142, and decoding never meets a zero scale.
 *
 * @param src Values, shape [numTokens, numHeads, headDim] row-major, dtype float32.
 * @param out Reused output buffers; allocated when omitted.
 * @returns `out`.
 * @throws {RangeError} When the shape does not match the buffers.
 *
 * @example Quantize one token with two heads
 * ```ts
 * import { quantizeInt8PerTokenHead } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * const src = new Float32Array([1.27, -0.635, 0, 0]);
 * const { codes, scales } = quantizeInt8PerTokenHead(src, 1, 2, 2);
 * assert.deepEqual([...codes], [127, -64, 0, 0]);
 * assert.deepEqual([...scales], [Math.fround(Math.fround(1.27) / 127), 1]);
 * ```
 */
export function quantizeInt8PerTokenHead(
  src: Float32Array,
  numTokens: number,
  numHeads: number,
  headDim: number,
  out?: Int8PerTokenHead,
): Int8PerTokenHead {
  const rows = checkShape(src.length, numTokens, numHeads, headDim, "src");
  const { codes, scales } = out ??
    { codes: new Int8Array(src.length), scales: new Float32Array(rows) };
  checkLength(src.length, codes.length);
  checkLength(rows, scales.length);
  for (let r = 0, off = 0; r < rows; r++, off += headDim) {
    let amax = 0;
    for (let d = 0; d < headDim; d++) {
      const a = Math.abs(src[off + d]);
      if (a > amax && a < Infinity) amax = a;
    }
    let scale = Math.fround(amax / 127);
    if (scale === 0) scale = 1;
    scales[r] = scale;
    for (let d = 0; d < headDim; d++) {
      codes[off + d] = quantize(Math.fround(src[off + d] / scale), 0);
    }
  }
  return { codes, scales };
}

/**
 * Inverts {@linkcode quantizeInt8PerTokenHead}: `fp32(code * scale)`.
 *
 * @param codes Codes, shape [numTokens, numHeads, headDim], dtype int8.
 * @param scales Scales, shape [numTokens, numHeads], dtype float32.
 * @param dst Output, shape [numTokens, numHeads, headDim], dtype float32; allocated when omitted.
 * @returns `dst`.
 * @throws {RangeError} When the shape does not match the buffers.
 *
 * @example Round trip
 * ```ts
 * import { dequantizeInt8PerTokenHead, quantizeInt8PerTokenHead } from "./int8.ts";
 * import assert from "node:assert/strict";
 *
 * const src = new Float32Array([0.5, -1, 0.25, 2]);
 * const { codes, scales } = quantizeInt8PerTokenHead(src, 2, 1, 2);
 * const back = dequantizeInt8PerTokenHead(codes, scales, 2, 1, 2);
 * for (let i = 0; i < 4; i++) assert.ok(Math.abs(back[i] - src[i]) <= 0.008);
 * ```
 */
export function dequantizeInt8PerTokenHead(
  codes: Int8Array,
  scales: Float32Array,
  numTokens: number,
  numHeads: number,
  headDim: number,
  dst: Float32Array = new Float32Array(codes.length),
): Float32Array {
  const rows = checkShape(codes.length, numTokens, numHeads, headDim, "codes");
  checkLength(rows, scales.length);
  checkLength(codes.length, dst.length);
  for (let r = 0, off = 0; r < rows; r++, off += headDim) {
    const scale = scales[r];
    for (let d = 0; d < headDim; d++) dst[off + d] = codes[off + d] * scale;
  }
  return dst;
}

function checkShape(
  length: number,
  numTokens: number,
  numHeads: number,
  headDim: number,
  name: string,
): number {
  const dims = [numTokens, numHeads, headDim];
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new RangeError(
      `Invalid shape [${
        dims.join(", ")
      }]: pass non-negative integers [numTokens, numHeads, headDim]`,
    );
  }
  if (length !== numTokens * numHeads * headDim) {
    throw new RangeError(
      `The ${name} array has ${length} elements but shape [${
        dims.join(", ")
      }] needs ${numTokens * numHeads * headDim}: pass the matching shape`,
    );
  }
  return numTokens * numHeads;
}

function checkLength(need: number, got: number): void {
  if (got < need) {
    throw new RangeError(
      `Destination holds ${got} elements but the source has ${need}: pass a destination of at least ${need} elements`,
    );
  }
}
