/**
 * From block tables to cache slots: the one piece of paging arithmetic
 * everything shares (slot = block * blockSize + offset).
 *
 * @module
 */

import type { AttentionBatch } from "./batch.ts";

/**
 * The cache slot of every token position 0..seqLens[s]-1 of sequence s.
 *
 * @example Usage
 * ```ts
 * import { sequenceSlots } from "./sequence_slots.ts";
 * import assert from "node:assert/strict";
 *
 * const batch = {
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(3),
 *   blockTables: Int32Array.of(7, 2), maxBlocksPerSeq: 2, blockSize: 2,
 * };
 * assert.deepEqual([...sequenceSlots(batch, 0)], [14, 15, 4]);
 * ```
 *
 * @param batch The batch whose block tables to read.
 * @param seq Sequence index.
 * @returns shape [seqLens[seq]], int32
 */
export function sequenceSlots(batch: AttentionBatch, seq: number): Int32Array {
  const { seqLens, blockTables, maxBlocksPerSeq, blockSize } = batch;
  const len = seqLens[seq];
  const slots = new Int32Array(len);
  const row = seq * maxBlocksPerSeq;
  for (let j = 0; j < len; j++) {
    const block = blockTables[row + Math.floor(j / blockSize)];
    slots[j] = block * blockSize + (j % blockSize);
  }
  return slots;
}
