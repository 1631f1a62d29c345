/**
 * The serving benchmark's two workloads, as the seeds ran them
 * (TensorRT-LLM's FP8 KV study: 1024 requests, batch 256) and as this
 * benchmark runs them, scaled down for 2 CPU cores and a TypeScript model
 * path with the 16:1 length ratio kept; plus the seeded synthetic prompts.
 *
 * @module
 */

import { mulberry32 } from "../core/prng.ts";

/** The dataset names `--dataset` takes (besides `both`). */
export const DATASET_NAMES = ["prefill-heavy", "decode-heavy"] as const;

/** A workload name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** The shape of a workload: every request has the same lengths. */
export interface DatasetShape {
  readonly name: DatasetName;
  /** Prompt tokens per request. */
  readonly inputLen: number;
  /** Output tokens per request (ignore_eos, so exactly this many). */
  readonly outputLen: number;
  readonly numRequests: number;
  /** Sequences per step (max-num-seqs). */
  readonly maxBatch: number;
}

/** The seeds' workloads, unscaled. */
export const SEED_DATASETS: Readonly<Record<DatasetName, DatasetShape>> = {
  "prefill-heavy": {
    name: "prefill-heavy",
    inputLen: 2048,
    outputLen: 128,
    numRequests: 1024,
    maxBatch: 256,
  },
  "decode-heavy": {
    name: "decode-heavy",
    inputLen: 128,
    outputLen: 2048,
    numRequests: 1024,
    maxBatch: 256,
  },
};

/**
 * The scaled workloads: lengths / 8 (16:1 kept), requests / 16, batch / 4.
 * One request then costs about 272 forward tokens, ~1.5 s of TypeScript
 * model time on one core of the 2-core machine.
 */
export const SCALED_DATASETS: Readonly<Record<DatasetName, DatasetShape>> = {
  "prefill-heavy": {
    name: "prefill-heavy",
    inputLen: 256,
    outputLen: 16,
    numRequests: 64,
    maxBatch: 64,
  },
  "decode-heavy": {
    name: "decode-heavy",
    inputLen: 16,
    outputLen: 256,
    numRequests: 64,
    maxBatch: 64,
  },
};

/** Requests in a `--quick` run (and the KV budget shrinks by the same 4x). */
export const QUICK_REQUESTS = 16;

/**
 * Seeded random prompts of byte tokens (ids 0..min(256, vocabSize)-1).
 *
 * @example Usage
 * ```ts
 * import { syntheticPrompts } from "./datasets.ts";
 * import assert from "node:assert/strict";
 *
 * const a = syntheticPrompts({ count: 2, length: 5, vocabSize: 259, seed: 7 });
 * assert.deepEqual(a, syntheticPrompts({ count: 2, length: 5, vocabSize: 259, seed: 7 }));
 * assert.ok(a.flat().every((t) => t >= 0 && t < 256));
 * ```
 */
export function syntheticPrompts(o: {
  count: number;
  length: number;
  vocabSize: number;
  seed: number;
}): number[][] {
  const rand = mulberry32(o.seed);
  const range = Math.min(256, o.vocabSize);
  return Array.from(
    { length: o.count },
    () => Array.from({ length: o.length }, () => Math.floor(rand() * range)),
  );
}
