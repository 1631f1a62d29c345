/**
 * Picks the next token from one row of logits: greedy, or temperature with
 * top-k and top-p, from a per-request seeded generator so that a seed
 * reproduces a completion.
 *
 * @module
 */

import { mulberry32 } from "../core/prng.ts";
import type { SamplingParams } from "./sampling_params.ts";

/** Samples tokens for one request. */
export class Sampler {
  readonly #params: SamplingParams;
  readonly #rand: () => number;

  /** Seeds the generator from params.seed, or randomly when it is absent. */
  constructor(params: SamplingParams) {
    this.#params = params;
    this.#rand = mulberry32(params.seed ?? Math.floor(Math.random() * 2 ** 32));
  }

  /**
   * The next token id.
   *
   * @example Usage
   * ```ts
   * import { Sampler } from "./sampler.ts";
   * import { samplingParams } from "./sampling_params.ts";
   * import assert from "node:assert/strict";
   *
   * const greedy = new Sampler(samplingParams({ temperature: 0 }));
   * assert.equal(greedy.sample(Float32Array.of(0.1, 3, -1)), 1);
   * ```
   *
   * @param logits One row of logits. shape [vocab], float32
   */
  sample(logits: Float32Array): number {
    const { temperature, topK, topP } = this.#params;
    if (temperature === 0) return argmax(logits);
    // Candidates sorted by logit; top-k cuts first, then top-p on the
    // renormalised distribution (the order vLLM applies them in).
    let ids = Array.from(logits.keys()).filter((i) => !Number.isNaN(logits[i]));
    ids.sort((a, b) => logits[b] - logits[a]);
    if (topK > 0) ids = ids.slice(0, topK);
    const max = logits[ids[0]];
    let probs = ids.map((i) => Math.exp((logits[i] - max) / temperature));
    let z = probs.reduce((a, b) => a + b, 0);
    if (topP < 1) {
      let mass = 0, keep = 0;
      while (keep < ids.length && mass < topP * z) mass += probs[keep++];
      ids = ids.slice(0, Math.max(1, keep));
      probs = probs.slice(0, ids.length);
      z = probs.reduce((a, b) => a + b, 0);
    }
    let r = this.#rand() * z;
    for (let i = 0; i < ids.length; i++) {
      r -= probs[i];
      if (r < 0) return ids[i];
    }
    return ids[ids.length - 1];
  }
}

/** Index of the largest value (the first on ties). */
export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if (values[i] > values[best]) best = i;
  }
  return best;
}
