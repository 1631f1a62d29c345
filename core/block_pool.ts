/**
 * Reference-counted pool of paged KV cache block ids.
 *
 * @module
 */

import { KvCacheExhaustedError } from "./kv_cache_errors.ts";

/**
 * Block ids `0..numBlocks-1` with a reference count each and a free list.
 * A block is free at count 0; `fork` shares blocks by raising the count, and
 * the last `decRef` returns the block to the free list.
 *
 * The free list is a LIFO stack: push and pop are O(1) on a plain array, and
 * the block freed most recently is reused first, which keeps the working set
 * of cache memory small and warm. vLLM uses a FIFO queue because its prefix
 * cache evicts the oldest freed blocks first; this pool keeps no prefix cache,
 * so that order buys nothing here.
 *
 * @example Allocate, share and free
 * ```ts
 * import { BlockPool } from "./block_pool.ts";
 * import assert from "node:assert/strict";
 *
 * const pool = new BlockPool(4);
 * const block = pool.allocate();
 * assert.equal(block, 0);
 * pool.incRef(block); // a forked sequence shares it
 * assert.equal(pool.refCount(block), 2);
 * pool.decRef(block);
 * pool.decRef(block);
 * assert.equal(pool.numFree, 4);
 * assert.throws(() => pool.decRef(block), /already free: double free/);
 * ```
 */
export class BlockPool {
  #refCounts: Int32Array;
  // Stack of free block ids; the top (end) is allocated next.
  #free: number[];

  /**
   * Creates a pool with every block free.
   *
   * @param numBlocks Number of blocks; a positive integer.
   */
  constructor(numBlocks: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(
        `Cannot create a block pool of ${numBlocks} blocks: pass a positive integer, e.g. from blocksForBudget()`,
      );
    }
    this.#refCounts = new Int32Array(numBlocks);
    // Pushed in reverse so that a fresh pool hands out 0, 1, 2, ... in order.
    this.#free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  /** Blocks in the pool, free or not. */
  get numBlocks(): number {
    return this.#refCounts.length;
  }

  /** Blocks on the free list. */
  get numFree(): number {
    return this.#free.length;
  }

  /** Blocks with a reference count above 0. */
  get numUsed(): number {
    return this.numBlocks - this.numFree;
  }

  /**
   * Takes one free block and sets its count to 1.
   *
   * @throws {KvCacheExhaustedError} When no block is free.
   */
  allocate(): number {
    return this.allocateMany(1)[0];
  }

  /**
   * Takes `n` free blocks, each with count 1. All or nothing: when fewer than
   * `n` are free it throws and the pool is unchanged.
   *
   * @param n Number of blocks; a non-negative integer.
   * @throws {KvCacheExhaustedError} When fewer than `n` blocks are free.
   */
  allocateMany(n: number): number[] {
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(
        `Cannot allocate ${n} blocks: pass a non-negative integer`,
      );
    }
    if (n > this.#free.length) {
      throw new KvCacheExhaustedError({
        needed: n,
        free: this.#free.length,
        numBlocks: this.numBlocks,
      });
    }
    const blocks = this.#free.splice(this.#free.length - n, n).reverse();
    for (const block of blocks) this.#refCounts[block] = 1;
    return blocks;
  }

  /**
   * Adds a reference to a block that is in use (shares it).
   *
   * @param block A block id whose count is above 0.
   */
  incRef(block: number): void {
    this.#check(block);
    if (this.#refCounts[block] === 0) {
      throw new Error(
        `Block ${block} is free: allocate it before adding a reference; sharing a free block would hand it to two owners`,
      );
    }
    this.#refCounts[block]++;
  }

  /**
   * Drops a reference; at 0 the block goes back to the free list.
   *
   * @param block A block id whose count is above 0.
   */
  decRef(block: number): void {
    this.#check(block);
    if (this.#refCounts[block] === 0) {
      throw new Error(
        `Block ${block} is already free: double free: a sequence released a block it did not hold; check that each block table is freed once`,
      );
    }
    if (--this.#refCounts[block] === 0) this.#free.push(block);
  }

  /**
   * The number of references to a block; 0 means free.
   *
   * @param block A block id in `0..numBlocks-1`.
   */
  refCount(block: number): number {
    this.#check(block);
    return this.#refCounts[block];
  }

  #check(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.numBlocks) {
      throw new RangeError(
        `Block ${block} is out of range: block ids are integers from 0 to ${
          this.numBlocks - 1
        }`,
      );
    }
  }
}
