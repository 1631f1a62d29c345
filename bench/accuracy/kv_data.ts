/**
 * Synthetic K/V/Q with the structure that KV distribution plots of real
 * models show, for the accuracy benchmark:
 *
 * - keys: a per-channel bias (N(0, 0.5^2)) plus N(0, 1) noise, and a few
 *   outlier channels per head (default 4 of headDim) whose RMS is 10-20x
 *   the others': bias ±0.9m and noise 0.3m with m drawn from U(10, 20);
 * - values: smooth, near-Gaussian: bias N(0, 0.3^2) plus N(0, 1) noise;
 * - queries: N(0, gain^2) on normal channels and N(0, (gain / m)^2) on the
 *   outlier channels, so the key bias shifts every logit of a query by the
 *   same amount (softmax-invariant) and logits have a standard deviation of
 *   about 1.5 at the default gain.
 *
 * A {@linkcode KvDistribution} is one layer's fixed structure (what a
 * calibration file captures); samples drawn from it with different seeds are
 * "different data of the same layer".
 *
 * @module
 */

/** One layer's K/V structure: biases, noise scales and outlier channels. */
export interface KvDistribution {
  readonly numKvHeads: number;
  readonly headDim: number;
  /** shape [numKvHeads, headDim], float64 */
  readonly keyBias: Float64Array;
  /** shape [numKvHeads, headDim], float64 */
  readonly keyStd: Float64Array;
  /** shape [numKvHeads, headDim], float64 */
  readonly valueBias: Float64Array;
  /** Outlier magnitude m per channel, 0 for normal channels. shape [numKvHeads, headDim] */
  readonly outlier: Float64Array;
}

/** A standard normal sampler over a uniform generator (Box-Muller). */
export function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - rand(), v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Options for {@linkcode kvDistribution}. */
export interface DistributionOptions {
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Outlier key channels per head. @default 4 */
  readonly outliers?: number;
}

/** Draws one layer's structure. */
export function kvDistribution(
  rand: () => number,
  opts: DistributionOptions,
): KvDistribution {
  const { numKvHeads, headDim } = opts;
  const n = numKvHeads * headDim;
  const normal = gaussian(rand);
  const keyBias = new Float64Array(n), keyStd = new Float64Array(n).fill(1);
  const valueBias = new Float64Array(n), outlier = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    keyBias[i] = 0.5 * normal();
    valueBias[i] = 0.3 * normal();
  }
  const count = Math.min(opts.outliers ?? 4, headDim);
  for (let h = 0; h < numKvHeads; h++) {
    const channels = [...Array(headDim).keys()];
    for (let c = 0; c < count; c++) {
      const pick = c + Math.floor(rand() * (headDim - c));
      [channels[c], channels[pick]] = [channels[pick], channels[c]];
      const i = h * headDim + channels[c];
      const m = 10 + 10 * rand();
      outlier[i] = m;
      keyBias[i] = (rand() < 0.5 ? -0.9 : 0.9) * m;
      keyStd[i] = 0.3 * m;
    }
  }
  return { numKvHeads, headDim, keyBias, keyStd, valueBias, outlier };
}

/** Keys and values of `numTokens` tokens. shape [numTokens, numKvHeads, headDim], float32 */
export function sampleKv(
  dist: KvDistribution,
  numTokens: number,
  rand: () => number,
): { keys: Float32Array; values: Float32Array } {
  const row = dist.numKvHeads * dist.headDim;
  const normal = gaussian(rand);
  const keys = new Float32Array(numTokens * row);
  const values = new Float32Array(numTokens * row);
  for (let t = 0, at = 0; t < numTokens; t++) {
    for (let i = 0; i < row; i++, at++) {
      keys[at] = dist.keyBias[i] + dist.keyStd[i] * normal();
      values[at] = dist.valueBias[i] + normal();
    }
  }
  return { keys, values };
}

/**
 * Queries for `numTokens` tokens and `numQHeads` heads (a multiple of the
 * distribution's kv heads), small on the kv head's outlier channels.
 *
 * @param gain Standard deviation on normal channels. @default 1.5
 * @returns shape [numTokens, numQHeads, headDim], float32
 */
export function sampleQueries(
  dist: KvDistribution,
  numTokens: number,
  numQHeads: number,
  rand: () => number,
  gain = 1.5,
): Float32Array {
  const { headDim, numKvHeads } = dist;
  const group = numQHeads / numKvHeads;
  const normal = gaussian(rand);
  const q = new Float32Array(numTokens * numQHeads * headDim);
  for (let t = 0, at = 0; t < numTokens; t++) {
    for (let h = 0; h < numQHeads; h++) {
      const base = Math.floor(h / group) * headDim;
      for (let d = 0; d < headDim; d++, at++) {
        const m = dist.outlier[base + d];
        q[at] = normal() * (m > 0 ? gain / m : gain);
      }
    }
  }
  return q;
}
