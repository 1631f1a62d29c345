/**
 * One needle-retrieval trial: a decode query over a haystack of realistic
 * K/V (kv_data.ts) with one planted key per kv head that the group's query
 * heads match strongly, and the definition of "retrieved".
 *
 * Needle strength. For query head h, let D_h be the log of the haystack's
 * total attention mass, logsumexp_j(scale * q_h . k_j) over every other
 * position. The needle key is the haystack key at its position plus beta * u
 * (u: the unit mean of the group's queries), with beta chosen so that the
 * group's mean needle logit is D_h + margin, margin drawn per (trial, kv
 * head) from N(marginMean, 1). A head's needle weight is about
 * sigmoid(its own margin); the heads of a group differ around the drawn
 * margin, so the oracle's retrieval rate is measured, not assumed (about
 * 90% for marginMean 2.5, at every context length).
 *
 * Retrieved: the head's output o is closer (Euclidean) to the needle's
 * value than to each of the other candidates: the output the head gives
 * with no needle (the fp64 oracle on the haystack alone) and the values of
 * `candidates - 2` other random positions (per query head). That is, the
 * needle's value dominates the output (weight above about 1/2), however it
 * was computed.
 *
 * @module
 */

import { planBatch, type PlannedBatch } from "../../core/batch.ts";
import type { LayerSpec } from "../../core/layer.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import {
  gaussian,
  type KvDistribution,
  sampleKv,
  sampleQueries,
} from "./kv_data.ts";

/** A trial's data, its oracle answers and its candidates. */
export interface NeedleTrial {
  /** shape [seqLen, numKvHeads, headDim], float32; the needle planted */
  readonly keys: Float32Array;
  readonly values: Float32Array;
  /** The decode query (position seqLen - 1). shape [numQHeads, headDim], float32 */
  readonly query: Float32Array;
  readonly plan: PlannedBatch;
  /** fp64 oracle on the original K/V. shape [numQHeads, headDim] */
  readonly oracle: Float64Array;
  /** Per query head: candidate vectors; 0 is the needle's value, 1 the no-needle output. */
  readonly candidates: readonly (readonly Float64Array[])[];
}

/** Builds one trial of `seqLen` tokens. */
export function needleTrial(
  layer: LayerSpec,
  dist: KvDistribution,
  seqLen: number,
  rand: () => number,
  opts: { marginMean: number; candidates: number },
): NeedleTrial {
  const { numQHeads, numKvHeads, headDim: d, scale } = layer;
  const group = numQHeads / numKvHeads, row = numKvHeads * d;
  const { keys, values } = sampleKv(dist, seqLen, rand);
  const query = sampleQueries(dist, 1, numQHeads, rand);
  const pos = Math.floor(rand() * (seqLen - 1));
  const hay = keys.slice();
  const normal = gaussian(rand);
  const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number) => {
    let s = 0;
    for (let e = 0; e < d; e++) s += a[ao + e] * b[bo + e];
    return s;
  };
  for (let kh = 0; kh < numKvHeads; kh++) {
    const u = new Float32Array(d);
    for (let g = 0; g < group; g++) {
      for (let e = 0; e < d; e++) u[e] += query[(kh * group + g) * d + e];
    }
    const norm = Math.hypot(...u) || 1;
    for (let e = 0; e < d; e++) u[e] /= norm;
    const margin = opts.marginMean + normal();
    let beta = 0;
    for (let g = 0; g < group; g++) {
      const qo = (kh * group + g) * d;
      let max = -Infinity, sum = 0;
      const logits: number[] = [];
      for (let j = 0; j < seqLen; j++) {
        if (j === pos) continue;
        const x = scale * dot(query, qo, hay, j * row + kh * d);
        logits.push(x);
        max = Math.max(max, x);
      }
      for (const x of logits) sum += Math.exp(x - max);
      const target = max + Math.log(sum) + margin;
      const base = scale * dot(query, qo, hay, pos * row + kh * d);
      beta += (target - base) / (scale * dot(query, qo, u, 0)) / group;
    }
    for (let e = 0; e < d; e++) keys[pos * row + kh * d + e] += beta * u[e];
  }
  const plan = planBatch({
    queryStartLoc: Int32Array.of(0, 1),
    seqLens: Int32Array.of(seqLen),
    blockTables: Int32Array.of(0),
    maxBlocksPerSeq: 1,
    blockSize: seqLen,
  });
  const attend = (k: Float32Array) =>
    referenceAttention(layer, {
      batch: plan,
      query,
      keys: [k],
      values: [values],
    })
      .out;
  const oracle = attend(keys), noNeedle = attend(hay);
  const candidates = Array.from({ length: numQHeads }, (_, h) => {
    const kh = Math.floor(h / group);
    const at = (j: number) =>
      Float64Array.from(
        values.subarray(j * row + kh * d, j * row + kh * d + d),
      );
    const list = [at(pos), noNeedle.slice(h * d, (h + 1) * d)];
    while (list.length < opts.candidates) {
      const j = Math.floor(rand() * seqLen);
      if (j !== pos) list.push(at(j));
    }
    return list;
  });
  return { keys, values, query, plan, oracle, candidates };
}

/**
 * Per query head: 1 when the output is closer to the needle's value than to
 * every other candidate of that head, else 0 (NaN output: 0).
 *
 * @param out shape [numQHeads, headDim], any float dtype
 */
export function retrieved(
  layer: LayerSpec,
  trial: NeedleTrial,
  out: ArrayLike<number>,
): number[] {
  const d = layer.headDim;
  return trial.candidates.map((cands, h) => {
    const dist = (c: Float64Array) => {
      let s = 0;
      for (let e = 0; e < d; e++) s += (out[h * d + e] - c[e]) ** 2;
      return Number.isNaN(s) ? Infinity : s;
    };
    const needle = dist(cands[0]);
    return cands.slice(1).every((c) => needle < dist(c)) ? 1 : 0;
  });
}

/**
 * Per query head, the needle's effective weight in the output: the
 * projection of (o - noNeedle) on (needle value - noNeedle), which is w for
 * o = w * value + (1 - w) * noNeedle (1: only the needle, 0: as if absent).
 *
 * @param out shape [numQHeads, headDim], any float dtype
 */
export function needleWeight(
  layer: LayerSpec,
  trial: NeedleTrial,
  out: ArrayLike<number>,
): number[] {
  const d = layer.headDim;
  return trial.candidates.map(([value, none], h) => {
    let num = 0, den = 0;
    for (let e = 0; e < d; e++) {
      num += (out[h * d + e] - none[e]) * (value[e] - none[e]);
      den += (value[e] - none[e]) ** 2;
    }
    return num / den;
  });
}
