/**
 * Errors raised by the paged KV cache bookkeeping.
 *
 * @module
 */

/** What a {@linkcode KvCacheExhaustedError} reports. */
export interface KvCacheExhaustedDetails {
  /** Blocks the failed request needed. */
  readonly needed: number;
  /** Blocks that were free when it failed. */
  readonly free: number;
  /** Blocks in the whole pool. */
  readonly numBlocks: number;
}

/**
 * Thrown when the block pool cannot supply every block a request needs. The
 * request changed nothing, so a scheduler can catch it, preempt a sequence
 * and retry.
 *
 * @example Catching it to preempt
 * ```ts
 * import { KvCacheExhaustedError } from "./kv_cache_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new KvCacheExhaustedError({ needed: 3, free: 1, numBlocks: 512 });
 * assert.ok(error instanceof Error);
 * assert.equal(error.name, "KvCacheExhaustedError");
 * assert.equal(error.needed, 3);
 * assert.equal(error.free, 1);
 * assert.equal(
 *   error.message,
 *   "KV cache is out of blocks: need 3, 1 free of 512: preempt or finish a sequence, or raise --kv-cache-memory",
 * );
 * ```
 */
export class KvCacheExhaustedError extends Error {
  /** Blocks the failed request needed. */
  readonly needed: number;
  /** Blocks that were free when it failed. */
  readonly free: number;
  /** Blocks in the whole pool. */
  readonly numBlocks: number;

  /**
   * Builds the error from the counts at the time of failure.
   *
   * @param details The needed, free and total block counts.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(details: KvCacheExhaustedDetails, options?: ErrorOptions) {
    super(
      `KV cache is out of blocks: need ${details.needed}, ${details.free} free of ${details.numBlocks}: preempt or finish a sequence, or raise --kv-cache-memory`,
      options,
    );
    this.name = "KvCacheExhaustedError";
    this.needed = details.needed;
    this.free = details.free;
    this.numBlocks = details.numBlocks;
  }
}
