/**
 * Per-sequence block tables over a shared {@linkcode BlockPool}: which block
 * and offset ("slot") each token's K/V lives in. Only bookkeeping; the bytes
 * live in the backends.
 *
 * @module
 */

import { BlockPool } from "./block_pool.ts";

/** A sequence id. `1` and `"1"` are different sequences. */
export type SeqId = number | string;

/** What {@linkcode KvCacheManager.append} hands the caller. */
export interface AppendResult {
  /** Where to write each new token: shape [numTokens], int32, `block * blockSize + offset`. */
  slots: Int32Array;
  /** Whole-block copies the backend must run before writing `slots`. */
  copies: Array<{ src: number; dst: number }>;
}

/** Options for {@linkcode KvCacheManager}. */
export interface KvCacheManagerOptions {
  /** Blocks in the pool, e.g. from `blocksForBudget()`. */
  numBlocks: number;
  /**
   * Tokens per block.
   * @default {16}
   */
  blockSize?: number;
}

interface Sequence {
  blocks: number[];
  numTokens: number;
}

function show(seqId: SeqId): string {
  return typeof seqId === "string" ? JSON.stringify(seqId) : String(seqId);
}

/**
 * Paged KV cache manager: block tables, copy-on-write sharing after `fork`,
 * and all-or-nothing appends that throw `KvCacheExhaustedError`.
 *
 * @example Append, fork, copy on write
 * ```ts
 * import { KvCacheManager } from "./kv_cache_manager.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = new KvCacheManager({ numBlocks: 8, blockSize: 4 });
 * cache.addSequence(1);
 * assert.deepEqual([...cache.append(1, 6).slots], [0, 1, 2, 3, 4, 5]);
 * cache.fork(1, 2); // shares blocks 0 and 1
 * const { slots, copies } = cache.append(2, 1);
 * assert.deepEqual(copies, [{ src: 1, dst: 2 }]); // block 1 was shared
 * assert.deepEqual([...slots], [10]); // block 2, offset 2
 * assert.deepEqual(cache.blockTable(2), [0, 2]);
 * cache.free(1);
 * cache.free(2);
 * assert.equal(cache.numFreeBlocks, 8);
 * ```
 */
export class KvCacheManager {
  #pool: BlockPool;
  #blockSize: number;
  #seqs = new Map<SeqId, Sequence>();

  /** Creates an empty cache; see {@linkcode KvCacheManagerOptions}. */
  constructor(options: KvCacheManagerOptions) {
    const blockSize = options.blockSize ?? 16;
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(
        `Block size ${blockSize} is invalid: pass a positive integer number of tokens, e.g. 16`,
      );
    }
    this.#pool = new BlockPool(options.numBlocks);
    this.#blockSize = blockSize;
  }

  /** Tokens per block. */
  get blockSize(): number {
    return this.#blockSize;
  }
  /** Blocks in the pool. */
  get numBlocks(): number {
    return this.#pool.numBlocks;
  }
  /** Blocks not held by any sequence. */
  get numFreeBlocks(): number {
    return this.#pool.numFree;
  }
  /** Blocks held by at least one sequence. */
  get numUsedBlocks(): number {
    return this.#pool.numUsed;
  }
  /** Fraction of blocks in use, from 0 to 1. */
  get usage(): number {
    return this.#pool.numUsed / this.#pool.numBlocks;
  }

  /** The ids of all live sequences, in the order they were added. */
  sequences(): IterableIterator<SeqId> {
    return this.#seqs.keys();
  }

  /** Whether a sequence is live. */
  hasSequence(seqId: SeqId): boolean {
    return this.#seqs.has(seqId);
  }

  /** Adds an empty sequence; it holds no blocks until it appends. */
  addSequence(seqId: SeqId): void {
    if (this.#seqs.has(seqId)) {
      const id = show(seqId);
      throw new Error(
        `Sequence ${id} is already in the KV cache: free it first or use a new id`,
      );
    }
    this.#seqs.set(seqId, { blocks: [], numTokens: 0 });
  }

  /** Tokens stored for a sequence. */
  numTokens(seqId: SeqId): number {
    return this.#get(seqId).numTokens;
  }

  /** How many sequences hold a block; 0 means free. For tests and debugging. */
  refCount(block: number): number {
    return this.#pool.refCount(block);
  }

  /** A copy of a sequence's block table: block ids in token order. */
  blockTable(seqId: SeqId): readonly number[] {
    return [...this.#get(seqId).blocks];
  }

  /**
   * Blocks an append of `numTokens` would take from the pool, counting the
   * fresh block that replaces a shared, partly filled last block.
   */
  blocksNeeded(seqId: SeqId, numTokens: number): number {
    const seq = this.#get(seqId);
    if (!Number.isInteger(numTokens) || numTokens < 0) {
      const id = show(seqId);
      throw new RangeError(
        `Cannot append ${numTokens} tokens to sequence ${id}: pass a non-negative integer`,
      );
    }
    const total = Math.ceil((seq.numTokens + numTokens) / this.#blockSize);
    return total - seq.blocks.length +
      (this.#needsCopy(seq, numTokens) ? 1 : 0);
  }

  /** Whether `append(seqId, numTokens)` would succeed now. */
  canAppend(seqId: SeqId, numTokens: number): boolean {
    return this.blocksNeeded(seqId, numTokens) <= this.#pool.numFree;
  }

  /**
   * Reserves slots for `numTokens` new tokens after the sequence's current
   * length. If its partly filled last block is shared (after `fork`), the
   * sequence gets a fresh block and the result carries a `{ src, dst }` copy;
   * run the copies before writing the slots. All or nothing.
   *
   * @throws {KvCacheExhaustedError} When the pool cannot supply every block; nothing changes.
   */
  append(seqId: SeqId, numTokens: number): AppendResult {
    const seq = this.#get(seqId);
    const needed = this.blocksNeeded(seqId, numTokens);
    const copy = this.#needsCopy(seq, numTokens);
    const fresh = this.#pool.allocateMany(needed); // throws before any change
    const copies: Array<{ src: number; dst: number }> = [];
    if (copy) {
      const last = seq.blocks.length - 1;
      const dst = fresh.shift()!;
      copies.push({ src: seq.blocks[last], dst });
      this.#pool.decRef(seq.blocks[last]); // others still hold it: count stays above 0
      seq.blocks[last] = dst;
    }
    seq.blocks.push(...fresh);
    const start = seq.numTokens;
    seq.numTokens += numTokens;
    return { slots: this.slotsFor(seqId, start, numTokens), copies };
  }

  /**
   * The slots of existing positions `start..start+count-1` of a sequence.
   *
   * @returns shape [count], int32, `block * blockSize + offset`.
   */
  slotsFor(seqId: SeqId, start: number, count: number): Int32Array {
    const seq = this.#get(seqId);
    if (
      !Number.isInteger(start) || !Number.isInteger(count) || start < 0 ||
      count < 0 || start + count > seq.numTokens
    ) {
      const [id, end] = [show(seqId), start + count - 1];
      throw new RangeError(
        `Cannot read slots ${start}..${end} of sequence ${id}: it holds positions 0..${
          seq.numTokens - 1
        }`,
      );
    }
    const slots = new Int32Array(count);
    const bs = this.#blockSize;
    for (let i = 0; i < count; i++) {
      const pos = start + i;
      slots[i] = seq.blocks[Math.floor(pos / bs)] * bs + (pos % bs);
    }
    return slots;
  }

  /** Shares all of the parent's blocks with a new child of the same length. */
  fork(parentId: SeqId, childId: SeqId): void {
    const parent = this.#get(parentId);
    this.addSequence(childId);
    for (const block of parent.blocks) this.#pool.incRef(block);
    this.#seqs.set(childId, {
      blocks: [...parent.blocks],
      numTokens: parent.numTokens,
    });
  }

  /** Releases a sequence's blocks and forgets the sequence. */
  free(seqId: SeqId): void {
    const seq = this.#get(seqId);
    for (const block of seq.blocks) this.#pool.decRef(block);
    this.#seqs.delete(seqId);
  }

  /**
   * Block tables of a batch, one row per sequence.
   *
   * @param seqIds The batch, in row order.
   * @param width Columns; defaults to the longest table in the batch.
   * @returns `blockTables`: shape [seqIds.length, width], int32, row-major, unused entries -1.
   */
  buildBlockTables(
    seqIds: readonly SeqId[],
    width?: number,
  ): { blockTables: Int32Array; width: number } {
    const tables = seqIds.map((id) => this.#get(id).blocks);
    const longest = tables.reduce((max, t) => Math.max(max, t.length), 0);
    const w = width ?? longest;
    if (!Number.isInteger(w) || w < longest) {
      throw new RangeError(
        `Cannot build block tables of width ${w}: the longest table in the batch has ${longest} blocks: pass an integer of at least ${longest}, or omit width`,
      );
    }
    const blockTables = new Int32Array(tables.length * w).fill(-1);
    tables.forEach((t, row) => blockTables.set(t, row * w));
    return { blockTables, width: w };
  }

  // A write into a shared block would clobber the other holders' tokens.
  #needsCopy(seq: Sequence, numTokens: number): boolean {
    return numTokens > 0 && seq.numTokens % this.#blockSize !== 0 &&
      this.#pool.refCount(seq.blocks[seq.blocks.length - 1]) > 1;
  }

  #get(seqId: SeqId): Sequence {
    const seq = this.#seqs.get(seqId);
    if (seq === undefined) {
      const id = show(seqId);
      throw new Error(
        `Sequence ${id} is not in the KV cache: call addSequence(${id}) first, or check it was not freed already`,
      );
    }
    return seq;
  }
}
