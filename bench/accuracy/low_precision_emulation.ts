/**
 * An EMULATION, in TypeScript, of the numerics of 8-bit attention compute as
 * the fa3 backend is meant to run it (docs: DESIGN.md "fa3"). It is not a
 * backend and serves nothing: it exists so the accuracy benchmark can show
 * what two-level accumulation does before fa3 has kernels.
 *
 * The algorithm, for one decode query head over one sequence (online
 * softmax over KV blocks of `blockSize` tokens, as FlashAttention tiles it):
 *
 * 1. Q (per head vector) and K, V (per tensor, the cache's k/v scales) are
 *    quantized to `input`: fp8_e4m3 or int8. Products of two 8-bit values are
 *    exact, so only the sums can lose precision.
 * 2. S = Q K^T * scale. fp8: the head-dim dot product is summed in the
 *    low-precision accumulator; with promotion each `dotChunk` partial is
 *    promoted to an fp32 sum. int8: integer dot products (dot4I8Packed,
 *    VNNI) accumulate exactly in int32, so S is exact up to quantization.
 * 3. Per block: m = running max; when it grows, O and l are rescaled by
 *    exp(m_old - m_new) (in fp32 with promotion, in the accumulator without).
 *    P = exp(S - m) is quantized to 8 bits: e4m3 with scale 1, or int8 with
 *    scale 1/127. Both O (= sum P V) and the row sum l use the quantized P.
 * 4. PV and l. fp8: products are added into the low-precision accumulator;
 *    int8: each block's sums are exact in int32.
 *    - promotion ON (two-level accumulation): the accumulator holds at most
 *      `promoteEveryBlocks` blocks (and never spans a change of m); then it
 *      is added into fp32 O and l and restarts at 0.
 *    - promotion OFF: O and l live in the low-precision accumulator for the
 *      whole sequence (int8: each exact block sum is added into it, as a
 *      kernel keeping O in 16-bit registers would; one keeping int32 across
 *      blocks would lose nothing there).
 * 5. out = O * vScale / l.
 *
 * The low-precision accumulator is emulated by rounding to nearest even,
 * after every add, to a float with fp32's exponent range and
 * `accumulatorBits` stored mantissa bits: 7 (the default) is bf16; 13 is
 * about the ~14-bit accumulation of Hopper's FP8 tensor cores (DeepSeek-V3
 * report); 23 is fp32 itself.
 *
 * @module
 */

import { decodeFp8E4m3, encodeFp8E4m3 } from "../../core/fp8_e4m3.ts";
import { estimateScales } from "../../core/scales.ts";

/** Options for {@linkcode emulateLowPrecisionDecode}. */
export interface EmulationOptions {
  /** The 8-bit format of Q, K, V and P. */
  readonly input: "fp8_e4m3" | "int8";
  /** Two-level accumulation: partials promoted to fp32. */
  readonly promotion: boolean;
  /** Stored mantissa bits of the low-precision accumulator, 1..23. @default 7 (bf16) */
  readonly accumulatorBits?: number;
  /** Tokens per KV block (one online-softmax step). @default 64 */
  readonly blockSize?: number;
  /** Blocks summed in the accumulator before promotion. @default 2 */
  readonly promoteEveryBlocks?: number;
  /** fp8 only: head-dim elements per promoted QK^T partial. @default 32 */
  readonly dotChunk?: number;
  /** Quantize P to 8 bits (false: keep P in fp32, to isolate accumulation). @default true */
  readonly quantizeP?: boolean;
  /** Per-tensor K/V scales. @default amax / format max over the sequence */
  readonly scales?: { readonly kScale: number; readonly vScale: number };
}

/** The attention shape the emulation needs. */
export interface EmulatedLayer {
  readonly numQHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly scale: number;
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/**
 * Rounds to nearest even at `bits` stored mantissa bits, keeping fp32's
 * exponent range (bits = 7 gives bf16). Infinities and NaN pass through.
 */
export function roundToBits(x: number, bits: number): number {
  F32[0] = x;
  if (bits >= 23) return F32[0];
  const u = U32[0];
  if ((u & 0x7f800000) === 0x7f800000) return F32[0];
  const drop = 23 - bits;
  const half = (1 << (drop - 1)) - 1 + ((u >>> drop) & 1);
  U32[0] = (((u + half) >>> drop) << drop) >>> 0;
  return F32[0];
}

/** Values as the 8-bit format holds them, before scaling (e4m3 values or int8 integers). */
function quantize(x: Float32Array, scale: number, input: string): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = input === "int8"
      ? Math.max(-128, Math.min(127, Math.round(Math.fround(x[i] / scale))))
      : decodeFp8E4m3(encodeFp8E4m3(x[i], scale), 1);
  }
  return out;
}

/**
 * Decode attention for every query head of one token, computed the way the
 * module documentation describes.
 *
 * @param query shape [numQHeads, headDim], float32
 * @param keys shape [seqLen, numKvHeads, headDim], float32
 * @param values shape [seqLen, numKvHeads, headDim], float32
 * @returns shape [numQHeads, headDim], float32
 */
export function emulateLowPrecisionDecode(
  layer: EmulatedLayer,
  query: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  opts: EmulationOptions,
): Float32Array {
  const { numQHeads, numKvHeads, headDim: d } = layer;
  const { input, promotion } = opts;
  const bits = opts.accumulatorBits ?? 7;
  const blockSize = opts.blockSize ?? 64;
  const every = opts.promoteEveryBlocks ?? 2;
  const chunk = opts.dotChunk ?? 32;
  const quantizeP = opts.quantizeP ?? true;
  const max = input === "int8" ? 127 : 448;
  const { kScale, vScale } = opts.scales ??
    estimateScales(keys, values, input);
  const kq = quantize(keys, kScale, input);
  const vq = quantize(values, vScale, input);
  const r = (x: number) => roundToBits(x, bits);
  const exact = input === "int8";
  const row = numKvHeads * d, seqLen = keys.length / row;
  const out = new Float32Array(numQHeads * d);
  const s = new Float64Array(blockSize);
  const acc = new Float64Array(d + 1), o32 = new Float64Array(d + 1);
  const part = new Float64Array(d + 1);
  for (let h = 0; h < numQHeads; h++) {
    const qh = query.subarray(h * d, (h + 1) * d);
    let amax = 0;
    for (const x of qh) amax = Math.max(amax, Math.abs(x));
    const qScale = Math.fround(amax / max) || 1;
    const qq = quantize(qh, qScale, input);
    const kvBase = Math.floor(h / (numQHeads / numKvHeads)) * d;
    const logitScale = Math.fround(qScale * kScale * layer.scale);
    acc.fill(0), o32.fill(0);
    let m = -Infinity, pending = 0;
    // acc[0..d) is O, acc[d] is l; the same for o32 and part.
    const promote = () => {
      for (let e = 0; e <= d; e++) o32[e] = Math.fround(o32[e] + acc[e]);
      acc.fill(0), pending = 0;
    };
    for (let b0 = 0; b0 < seqLen; b0 += blockSize) {
      const n = Math.min(blockSize, seqLen - b0);
      let bmax = -Infinity;
      for (let j = 0; j < n; j++) {
        const k = (b0 + j) * row + kvBase;
        let dot = 0, sum = 0;
        for (let e = 0; e < d; e++) {
          const p = qq[e] * kq[k + e];
          if (exact) dot += p;
          else {
            dot = r(dot + p);
            if (promotion && (e + 1) % chunk === 0) {
              sum = Math.fround(sum + dot), dot = 0;
            }
          }
        }
        s[j] = Math.fround(Math.fround(sum + dot) * logitScale);
        bmax = Math.max(bmax, s[j]);
      }
      if (bmax > m) {
        const alpha = Math.fround(Math.exp(m - bmax));
        if (promotion) {
          if (pending > 0) promote();
          for (let e = 0; e <= d; e++) o32[e] = Math.fround(o32[e] * alpha);
        } else for (let e = 0; e <= d; e++) acc[e] = r(acc[e] * alpha);
        m = bmax;
      }
      part.fill(0);
      for (let j = 0; j < n; j++) {
        const p = Math.fround(Math.exp(s[j] - m));
        const pq = !quantizeP
          ? p * (exact ? 127 : 1)
          : exact
          ? Math.round(p * 127)
          : decodeFp8E4m3(encodeFp8E4m3(p));
        if (pq === 0) continue;
        const v = (b0 + j) * row + kvBase;
        if (exact) {
          for (let e = 0; e < d; e++) part[e] += pq * vq[v + e];
          part[d] += pq;
        } else {
          for (let e = 0; e < d; e++) acc[e] = r(acc[e] + pq * vq[v + e]);
          acc[d] = r(acc[d] + pq);
        }
      }
      // int8: the block's exact int32 sums enter the accumulator once (with
      // promotion, an int32 register that holds them exactly until then).
      for (let e = 0; exact && e <= d; e++) {
        acc[e] = promotion ? acc[e] + part[e] : r(acc[e] + part[e]);
      }
      if (promotion && ++pending >= every) promote();
    }
    if (promotion) promote();
    const fin = promotion ? o32 : acc;
    for (let e = 0; e < d; e++) {
      out[h * d + e] = Math.fround(fin[e] * vScale / fin[d]);
    }
  }
  return out;
}
