/**
 * Crafted cache-write inputs: the values where an encoder's rounding,
 * saturation and special-value rules show. For a quantized format at a given
 * scale each input `x` is chosen so that the fp32 quotient `fp32(x / scale)`
 * lands exactly where intended: on a tie between two codes (every tie of
 * fp8 and int8, several in every binade of fp16 and bf16, the subnormal range
 * included), or on the nearest fp32 input either side of it. A
 * non-power-of-two scale cannot hit every tie: the search tries the fp32
 * neighbours of `fp32(y * scale)` and leaves a tie out when none divides back
 * to it (the unit test checks that every binade keeps some).
 *
 * @module
 */

import type { KvCacheDtype } from "../core/dtype.ts";
import { decodeFp8E4m3 } from "../core/fp8_e4m3.ts";
import { decodeFp8E5m2 } from "../core/fp8_e5m2.ts";

/** Inputs and, element by element, why each one is there. */
export interface CraftedValues {
  /** The inputs, float32 (a NaN with its sign bit set included). */
  readonly x: Float32Array;
  /** One short label per input, for failure messages. */
  readonly why: readonly string[];
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const NEG_NAN_BITS = 0xffc00000;
const FLT_MAX = 3.4028234663852886e38;

/** The float32 `n` steps above `x` (below for negative `n`), crossing zero. */
export function f32Step(x: number, n: number): number {
  F32[0] = x;
  const b = U32[0];
  const key = b & 0x80000000 ? -(b & 0x7fffffff) : b;
  const k = key + n;
  U32[0] = k >= 0 ? k : (0x80000000 | -k) >>> 0;
  return F32[0];
}

const q = (x: number, s: number) => Math.fround(Math.fround(x) / s);

/** An fp32 x with fp32(x / s) === y exactly, or undefined. */
function preimage(y: number, s: number): number | undefined {
  const x0 = Math.fround(y * s);
  if (!isFinite(x0)) return undefined;
  for (const n of [0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8]) {
    const x = f32Step(x0, n);
    if (Object.is(q(x, s), y)) return x;
  }
  return undefined;
}

/** The fp32 x nearest the tie t whose quotient lies strictly above (side 1) or below (-1) it. */
function besideTie(t: number, s: number, side: 1 | -1): number | undefined {
  let x = Math.fround(t * s);
  if (!isFinite(x)) return undefined;
  const past = (v: number) => side * (q(v, s) - t) > 0;
  for (let i = 0; i < 64 && past(x); i++) x = f32Step(x, -side);
  for (let i = 0; i < 64 && !past(x); i++) x = f32Step(x, side);
  return past(x) ? x : undefined;
}

class Builder {
  readonly bits: number[] = [];
  readonly why: string[] = [];
  add(x: number | undefined, why: string): void {
    if (x === undefined) return;
    F32[0] = x;
    this.bits.push(U32[0]);
    this.why.push(why);
  }
  addBits(bits: number, why: string): void {
    this.bits.push(bits >>> 0);
    this.why.push(why);
  }
  /** A tie between neighbouring values a < b (y = x / scale), and the inputs just beside it. */
  tie(a: number, b: number, s: number, signs: readonly (1 | -1)[]): void {
    for (const sign of signs) {
      const t = sign * (a + b) / 2;
      const name = sign > 0 ? `${a}|${b}` : `${-b}|${-a}`;
      this.add(preimage(t, s), `tie ${name}`);
      this.add(besideTie(t, s, 1), `just above tie ${name}`);
      this.add(besideTie(t, s, -1), `just below tie ${name}`);
    }
  }
  /** ±0, fp32 subnormals, the largest finite fp32, ±inf and NaN of both signs. */
  common(): void {
    this.add(0, "+0");
    this.add(-0, "-0");
    for (const v of [2 ** -149, 1.5e-39]) {
      this.add(v, "fp32 subnormal");
      this.add(-v, "fp32 subnormal");
    }
    this.add(FLT_MAX, "largest fp32");
    this.add(-FLT_MAX, "largest fp32");
    this.add(Infinity, "+inf");
    this.add(-Infinity, "-inf");
    this.add(NaN, "NaN");
    this.addBits(NEG_NAN_BITS, "NaN with the sign bit set");
  }
  done(): CraftedValues {
    return {
      x: new Float32Array(Uint32Array.from(this.bits).buffer),
      why: this.why,
    };
  }
}

const FP8 = {
  fp8_e4m3: { lastCode: 0x7e, decode: decodeFp8E4m3, next: 480 },
  fp8_e5m2: { lastCode: 0x7b, decode: decodeFp8E5m2, next: 65536 },
} as const;

const FLOAT16 = {
  fp16: { mantissa: 10, minExp: -14, maxExp: 15 },
  bf16: { mantissa: 7, minExp: -126, maxExp: 127 },
} as const;

/**
 * The crafted inputs for one per-tensor cache format at one scale and zero
 * point (16/32-bit formats ignore both, as their codecs do).
 *
 * @param dtype The cache element type.
 * @param scale The quantization scale (not the softmax scale), positive fp32.
 * @param zeroPoint int8 only: the zero point, -128 to 127.
 *
 * @example Every e4m3 tie at scale 0.37
 * ```ts
 * import { craftedValues } from "./special_values.ts";
 * import assert from "node:assert/strict";
 *
 * const { x, why } = craftedValues("fp8_e4m3", 0.37, 0);
 * const i = why.indexOf("tie 1|1.125");
 * assert.equal(Math.fround(x[i] / Math.fround(0.37)), 1.0625);
 * assert.ok(why.includes("+inf") && why.includes("-0"));
 * ```
 */
export function craftedValues(
  dtype: KvCacheDtype,
  scale: number,
  zeroPoint = 0,
): CraftedValues {
  const s = Math.fround(scale);
  const b = new Builder();
  b.common();
  if (dtype === "fp8_e4m3" || dtype === "fp8_e5m2") {
    const f = FP8[dtype];
    const values: number[] = [];
    for (let c = 0; c <= f.lastCode; c++) values.push(f.decode(c));
    for (let i = 0; i + 1 < values.length; i++) {
      b.tie(values[i], values[i + 1], s, [1, -1]);
    }
    // Past the largest finite value: the tie with the next value the
    // format would have, and the inputs beside it, all saturate.
    const max = values.at(-1)!;
    b.tie(max, f.next, s, [1, -1]);
    for (const sign of [1, -1]) {
      b.add(preimage(sign * values[1], s), "smallest subnormal");
      b.add(preimage(sign * max, s), "largest finite");
      b.add(besideTie(sign * max, s, sign as 1 | -1), "just past the max");
      b.add(preimage(sign * 2 * f.next, s), "far past the max");
    }
  } else if (dtype === "int8") {
    // y = x / scale rounds to q - zeroPoint: every tie of that range, and
    // one step past each end (they clamp).
    const lo = -128 - zeroPoint, hi = 127 - zeroPoint;
    for (let k = lo - 1; k <= hi; k++) b.tie(k, k + 1, s, [1]);
    b.add(preimage(2 * hi + 1, s), "past the clamp");
    b.add(preimage(2 * lo - 1, s), "past the clamp");
  } else if (dtype === "fp16" || dtype === "bf16") {
    const f = FLOAT16[dtype];
    const sub = 2 ** (f.minExp - f.mantissa);
    for (let m = 0; m < 3; m++) b.tie(m * sub, (m + 1) * sub, 1, [1, -1]);
    b.tie(2 ** f.minExp - sub, 2 ** f.minExp, 1, [1, -1]);
    for (let e = f.minExp; e <= f.maxExp; e++) {
      const ulp = 2 ** (e - f.mantissa);
      b.tie(2 ** e, 2 ** e + ulp, 1, [1, -1]);
      b.tie(2 ** e + ulp, 2 ** e + 2 * ulp, 1, [1, -1]);
      // The last tie of the top binade is the overflow to inf.
      b.tie(2 ** (e + 1) - ulp, 2 ** (e + 1), 1, [1, -1]);
    }
  }
  return b.done();
}

/**
 * Crafted rows for int8 `per_token_head`, one head of `headDim` values at a
 * time: element 0 of each head is an anchor `fp32(127 * target)` (or its
 * negation) that fixes the head's scale at about `target`, and the other
 * elements are that scale's ties, the inputs beside them, ±0, ±inf and NaN
 * (inputs past the anchor cannot occur: the anchor is the head's amax).
 *
 * @param target About the scale each head gets.
 * @param headDim Values per head.
 * @returns Whole heads: `x.length` is a multiple of `headDim`.
 *
 * @example Usage
 * ```ts
 * import { craftedPerTokenHead } from "./special_values.ts";
 * import assert from "node:assert/strict";
 *
 * const { x } = craftedPerTokenHead(0.37, 64);
 * assert.equal(x.length % 64, 0);
 * assert.equal(x[0], Math.fround(127 * 0.37));
 * ```
 */
export function craftedPerTokenHead(
  target: number,
  headDim: number,
): CraftedValues {
  const anchor = Math.fround(127 * target);
  const s = Math.fround(anchor / 127);
  const b = new Builder();
  for (let k = -127; k < 127; k++) b.tie(k, k + 1, s, [1]);
  b.add(0, "+0");
  b.add(-0, "-0");
  b.add(Infinity, "+inf (left out of amax)");
  b.add(-Infinity, "-inf (left out of amax)");
  b.add(NaN, "NaN (left out of amax)");
  const inner = b.done();
  const body = [...inner.x.keys()].filter((i) =>
    !isFinite(inner.x[i]) || Math.abs(inner.x[i]) <= anchor
  );
  const per = headDim - 1;
  const heads = Math.ceil(body.length / per);
  const x = new Float32Array(heads * headDim);
  const xBits = new Uint32Array(x.buffer);
  const innerBits = new Uint32Array(inner.x.buffer);
  const why: string[] = [];
  for (let h = 0; h < heads; h++) {
    x[h * headDim] = h % 2 ? -anchor : anchor;
    why.push(`anchor (amax ${anchor}, scale ${s})`);
    for (let d = 1; d < headDim; d++) {
      const i = body[(h * per + d - 1) % body.length];
      xBits[h * headDim + d] = innerBits[i];
      why.push(inner.why[i]);
    }
  }
  return { x, why };
}

/** Quantization scales and zero points of a crafted case; K and V differ on purpose. */
export const CRAFTED_SCALES = {
  /** Powers of two: x / scale is exact, so every tie is hit. */
  pow2: { kScale: 0.25, vScale: 2, kZeroPoint: -7, vZeroPoint: 9 },
  /** Not powers of two: the fp32 quotient decides, and some ties are out of reach. */
  odd: { kScale: 0.37, vScale: 3, kZeroPoint: -7, vZeroPoint: 9 },
} as const;

/** Names of {@linkcode CRAFTED_SCALES}. */
export type CraftedScale = keyof typeof CRAFTED_SCALES;

/** How a crafted case stores K or V: the layer's format, and one side's scale and zero point. */
export interface CraftedTarget {
  readonly kvDtype: KvCacheDtype;
  readonly perTokenHead: boolean;
  readonly scale: number;
  /** 0 unless the cache is int8 per tensor with a zero point. */
  readonly zeroPoint: number;
  readonly headDim: number;
}

/**
 * The crafted inputs for K or V of one layer: per-tensor formats get
 * {@linkcode craftedValues} at the side's scale, int8 `per_token_head` gets
 * {@linkcode craftedPerTokenHead} heads anchored near it.
 *
 * @example Usage
 * ```ts
 * import { craftedFor } from "./special_values.ts";
 * import assert from "node:assert/strict";
 *
 * const v = craftedFor({ kvDtype: "int8", perTokenHead: false, scale: 3, zeroPoint: 9, headDim: 64 });
 * assert.ok(v.why.includes("tie 0|1"));
 * ```
 */
export function craftedFor(t: CraftedTarget): CraftedValues {
  if (t.kvDtype === "int8" && t.perTokenHead) {
    return craftedPerTokenHead(t.scale, t.headDim);
  }
  return craftedValues(t.kvDtype, t.scale, t.zeroPoint);
}
