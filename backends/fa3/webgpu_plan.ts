/**
 * The fa3 WebGPU plan: per batch, once, the int32 metadata every layer's
 * attention reads (each token's sequence and position, the block tables),
 * uploaded to one GPU buffer, plus the number of key passes. It depends on
 * the batch only, never on a layer.
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { createBufferFrom } from "../../webgpu/mod.ts";
import { KEYS_PER_PASS } from "./webgpu_kernels.ts";

/** Where each part of the uploaded metadata starts (in int32 elements). */
export interface Fa3PlanOffsets {
  readonly tokenSeq: number;
  readonly tokenPos: number;
  readonly tables: number;
}

/** The core plan plus its metadata on the GPU. */
export interface Fa3Plan extends PlannedBatch {
  /** [tokenSeq | tokenPos | blockTables], int32, uploaded once. */
  readonly meta: GPUBuffer;
  readonly offsets: Fa3PlanOffsets;
  /** Attention dispatches: ceil(maxSeqLen / KEYS_PER_PASS), at least 1. */
  readonly passes: number;
  /** Largest block id a sequence uses (attend checks it against the cache). */
  readonly maxBlockId: number;
}

/**
 * The metadata of a planned batch (no GPU): the int32 array to upload and
 * what the kernels need to find in it.
 *
 * @example Usage
 * ```ts
 * import { planBatch } from "../../core/batch.ts";
 * import { fa3PlanMetadata } from "./webgpu_plan.ts";
 * import assert from "node:assert/strict";
 *
 * const batch = planBatch({
 *   queryStartLoc: Int32Array.of(0, 2, 3),
 *   seqLens: Int32Array.of(2, 17),
 *   blockTables: Int32Array.of(4, -1, 7, 1),
 *   maxBlocksPerSeq: 2,
 *   blockSize: 16,
 * });
 * const meta = fa3PlanMetadata(batch);
 * assert.deepEqual([...meta.data], [0, 0, 1, 0, 1, 16, 4, -1, 7, 1]);
 * assert.equal(meta.maxBlockId, 7); // block 1 of sequence 0 (-1) is unused
 * ```
 */
export function fa3PlanMetadata(batch: PlannedBatch): {
  readonly data: Int32Array;
  readonly offsets: Fa3PlanOffsets;
  readonly passes: number;
  readonly maxBlockId: number;
} {
  const { numTokens, numSeqs, maxBlocksPerSeq, blockSize, seqLens } = batch;
  const data = new Int32Array(2 * numTokens + batch.blockTables.length);
  data.set(batch.tokenSeq, 0);
  data.set(batch.tokenPos, numTokens);
  data.set(batch.blockTables, 2 * numTokens);
  let maxBlockId = -1;
  for (let s = 0; s < numSeqs; s++) {
    for (let b = 0; b < Math.ceil(seqLens[s] / blockSize); b++) {
      maxBlockId = Math.max(
        maxBlockId,
        batch.blockTables[s * maxBlocksPerSeq + b],
      );
    }
  }
  return {
    data,
    offsets: { tokenSeq: 0, tokenPos: numTokens, tables: 2 * numTokens },
    passes: Math.max(1, Math.ceil(batch.maxSeqLen / KEYS_PER_PASS)),
    maxBlockId,
  };
}

/** Builds the plan and uploads its metadata to `device` (one buffer). */
export function buildFa3Plan(device: GPUDevice, batch: PlannedBatch): Fa3Plan {
  const { data, ...rest } = fa3PlanMetadata(batch);
  const meta = createBufferFrom(
    device,
    data,
    GPUBufferUsage.STORAGE,
    "fa3 plan",
  );
  return { ...batch, ...rest, meta };
}
