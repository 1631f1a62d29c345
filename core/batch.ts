/**
 * The per-batch metadata every layer shares, validated and derived once
 * ("plan once, run per layer", as FlashInfer's wrappers do).
 *
 * @module
 */

/** The page-table description of one attention batch, in vLLM's layout. */
export interface AttentionBatch {
  /**
   * Where each sequence's new query tokens start in the query tensor.
   * shape [numSeqs + 1], int32, non-decreasing, starts at 0.
   */
  readonly queryStartLoc: Int32Array;
  /**
   * Tokens in the cache for each sequence after this step's write, new tokens
   * included. shape [numSeqs], int32; each >= that sequence's query length.
   */
  readonly seqLens: Int32Array;
  /**
   * Block ids of each sequence. shape [numSeqs, maxBlocksPerSeq], int32,
   * row-major; entries past a sequence's last block are ignored (use -1).
   */
  readonly blockTables: Int32Array;
  /** Columns of blockTables: the row stride, not a per-sequence count. */
  readonly maxBlocksPerSeq: number;
  /** Tokens per cache block; must match the cache the batch runs against. */
  readonly blockSize: number;
}

/** A validated batch plus the metadata derived from it. */
export interface PlannedBatch extends AttentionBatch {
  /** Sequences in the batch (seqLens.length). */
  readonly numSeqs: number;
  /** Total query tokens (rows of the query tensor). */
  readonly numTokens: number;
  /** Sequence index of each query token. shape [numTokens], int32 */
  readonly tokenSeq: Int32Array;
  /** Absolute position of each query token. shape [numTokens], int32 */
  readonly tokenPos: Int32Array;
  /** Longest query among the sequences; kernels size their tiles from it. */
  readonly maxQueryLen: number;
  /** Longest seqLens entry, the most cached tokens one sequence attends to. */
  readonly maxSeqLen: number;
  /** Sequences with exactly one query token. */
  readonly numDecodes: number;
  /** Sequences with more than one query token (numSeqs - numDecodes). */
  readonly numPrefills: number;
}

/** A batch description that does not add up; the message names the field. */
export class BatchError extends RangeError {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BatchError";
  }
}

/**
 * Validates a batch and derives the metadata that every layer reuses.
 *
 * @example Usage
 * ```ts
 * import { planBatch } from "./batch.ts";
 * import assert from "node:assert/strict";
 *
 * // One prefill of 3 tokens and one decode whose context is 17 tokens.
 * const plan = planBatch({
 *   queryStartLoc: Int32Array.of(0, 3, 4),
 *   seqLens: Int32Array.of(3, 18),
 *   blockTables: Int32Array.of(5, -1, 2, 9),
 *   maxBlocksPerSeq: 2,
 *   blockSize: 16,
 * });
 * assert.deepEqual([...plan.tokenPos], [0, 1, 2, 17]);
 * assert.equal(plan.numDecodes, 1);
 * ```
 */
export function planBatch(batch: AttentionBatch): PlannedBatch {
  const { queryStartLoc, seqLens, blockTables, maxBlocksPerSeq, blockSize } =
    batch;
  const numSeqs = seqLens.length;
  if (!Number.isInteger(blockSize) || blockSize < 1) {
    throw new BatchError(
      `blockSize must be a positive integer, got ${blockSize}`,
    );
  }
  if (!Number.isInteger(maxBlocksPerSeq) || maxBlocksPerSeq < 0) {
    throw new BatchError(
      `maxBlocksPerSeq must be a non-negative integer, got ${maxBlocksPerSeq}`,
    );
  }
  if (queryStartLoc.length !== numSeqs + 1) {
    throw new BatchError(
      `queryStartLoc must have numSeqs + 1 = ${
        numSeqs + 1
      } entries, got ${queryStartLoc.length}`,
    );
  }
  if (blockTables.length !== numSeqs * maxBlocksPerSeq) {
    throw new BatchError(
      `blockTables must have numSeqs * maxBlocksPerSeq = ${
        numSeqs * maxBlocksPerSeq
      } entries, got ${blockTables.length}`,
    );
  }
  if (queryStartLoc[0] !== 0) {
    throw new BatchError(`queryStartLoc[0] must be 0, got ${queryStartLoc[0]}`);
  }
  const numTokens = queryStartLoc[numSeqs];
  const tokenSeq = new Int32Array(numTokens);
  const tokenPos = new Int32Array(numTokens);
  let maxQueryLen = 0, maxSeqLen = 0, numDecodes = 0;
  for (let s = 0; s < numSeqs; s++) {
    const qLen = queryStartLoc[s + 1] - queryStartLoc[s];
    const seqLen = seqLens[s];
    if (qLen < 1) {
      throw new BatchError(
        `Sequence ${s} has ${qLen} query tokens (queryStartLoc[${s}..${
          s + 1
        }] = ${queryStartLoc[s]}..${
          queryStartLoc[s + 1]
        }): every sequence in a batch needs at least one`,
      );
    }
    if (seqLen < qLen) {
      throw new BatchError(
        `seqLens[${s}] = ${seqLen} is shorter than its ${qLen} query tokens: seqLens counts the cache after this step's write`,
      );
    }
    const blocksNeeded = Math.ceil(seqLen / blockSize);
    if (blocksNeeded > maxBlocksPerSeq) {
      throw new BatchError(
        `seqLens[${s}] = ${seqLen} needs ${blocksNeeded} blocks of ${blockSize} but maxBlocksPerSeq is ${maxBlocksPerSeq}`,
      );
    }
    for (let b = 0; b < blocksNeeded; b++) {
      const block = blockTables[s * maxBlocksPerSeq + b];
      if (!(block >= 0)) {
        throw new BatchError(
          `blockTables[${s}][${b}] = ${block}: sequence ${s} needs ${blocksNeeded} blocks but this entry is not a block id`,
        );
      }
    }
    for (let i = 0; i < qLen; i++) {
      tokenSeq[queryStartLoc[s] + i] = s;
      tokenPos[queryStartLoc[s] + i] = seqLen - qLen + i;
    }
    if (qLen === 1) numDecodes++;
    maxQueryLen = Math.max(maxQueryLen, qLen);
    maxSeqLen = Math.max(maxSeqLen, seqLen);
  }
  return {
    ...batch,
    numSeqs,
    numTokens,
    tokenSeq,
    tokenPos,
    maxQueryLen,
    maxSeqLen,
    numDecodes,
    numPrefills: numSeqs - numDecodes,
  };
}
