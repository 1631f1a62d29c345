/**
 * The argument checks every built-in backend made in its own copy: input
 * lengths, slots and blocks inside the cache, copy pairs. Each throws a
 * {@linkcode BackendShapeError} naming the backend, target and layer, with
 * the actual value, the expected one and the fix. They only read the
 * arguments, once per call, never per element of the kernel's work.
 *
 * @module
 */

import type { Target, WriteInput } from "./backend.ts";
import { BackendShapeError } from "./backend_errors.ts";
import type { PlannedBatch } from "./batch.ts";
import type { LayerConfig } from "./layer.ts";

/** The instance a check speaks for (an AttentionBackend is one). */
export interface BackendIdentity {
  /** The backend's name. */
  readonly name: string;
  /** Where its kernels run. */
  readonly target: Target;
}

/** What the checks read of a cache (a LayerCache is one). */
export interface CheckedCache {
  /** The layer it serves: index, heads, headDim, blockSize. */
  readonly config: LayerConfig;
  /** Blocks allocated; valid block ids are 0..numBlocks-1. */
  readonly numBlocks: number;
}

function shapeError(
  backend: BackendIdentity,
  cache: CheckedCache,
  message: string,
): BackendShapeError {
  return new BackendShapeError(message, {
    backend: backend.name,
    target: backend.target,
    // Optional chaining: a caller's bogus cache must still get this error.
    layer: cache.config?.index,
  });
}

function checkLength(
  backend: BackendIdentity,
  cache: CheckedCache,
  [name, got, want]: [string, number, number],
): void {
  if (got !== want) {
    throw shapeError(
      backend,
      cache,
      `${name} has ${got} elements, expected ${want}`,
    );
  }
}

function checkSlot(
  backend: BackendIdentity,
  cache: CheckedCache,
  [slot, where]: [number, string],
): void {
  const { blockSize } = cache.config;
  const numSlots = cache.numBlocks * blockSize;
  if (!Number.isInteger(slot) || slot < 0 || slot >= numSlots) {
    throw shapeError(
      backend,
      cache,
      `${where} is ${slot}, outside the cache's ${numSlots} slots (${cache.numBlocks} blocks of ${blockSize}): use -1 for padding`,
    );
  }
}

/**
 * Checks a write: keys and values hold slotMapping.length rows of
 * numKvHeads * headDim, every slot is -1 (padding) or inside the cache.
 *
 * @example Usage
 * ```ts
 * import { BackendShapeError, checkWriteInput } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   numBlocks: 2,
 *   config: {
 *     index: 5, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 2,
 *     scale: 1, kvDtype: "fp16", blockSize: 4,
 *   },
 * } as const;
 * const backend = { name: "mine", target: "reference" } as const;
 * assert.throws(
 *   () => checkWriteInput(backend, cache, {
 *     keys: new Float32Array(2), values: new Float32Array(2),
 *     slotMapping: Int32Array.of(8),
 *   }),
 *   (e) => e instanceof BackendShapeError && e.layer === 5 &&
 *     e.message === "slotMapping[0] is 8, outside the cache's 8 slots (2 blocks of 4): use -1 for padding",
 * );
 * ```
 */
export function checkWriteInput(
  backend: BackendIdentity,
  cache: CheckedCache,
  input: WriteInput,
): void {
  const { keys, values, slotMapping } = input;
  const row = cache.config.numKvHeads * cache.config.headDim;
  checkLength(backend, cache, ["keys", keys.length, slotMapping.length * row]);
  checkLength(backend, cache, [
    "values",
    values.length,
    slotMapping.length * row,
  ]);
  for (let t = 0; t < slotMapping.length; t++) {
    if (slotMapping[t] !== -1) {
      checkSlot(backend, cache, [slotMapping[t], `slotMapping[${t}]`]);
    }
  }
}

/** What {@linkcode checkAttendInput} checks besides the cache. */
export interface AttendShape {
  /** The batch (its blockSize, numTokens, block tables). */
  readonly plan: PlannedBatch;
  /** Elements of the query: numTokens * numQHeads * headDim expected. */
  readonly queryLength: number;
  /** Elements of the output: the same as the query. */
  readonly outLength: number;
}

/**
 * Checks an attend: the batch was planned for the cache's block size, query
 * and out hold numTokens rows of numQHeads * headDim, and every block a
 * sequence reads is inside the cache (planBatch proved they are block ids).
 *
 * @example Usage
 * ```ts
 * import { checkAttendInput, planBatch } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   numBlocks: 1,
 *   config: {
 *     index: 0, kind: "full", numQHeads: 2, numKvHeads: 1, headDim: 2,
 *     scale: 1, kvDtype: "fp16", blockSize: 4,
 *   },
 * } as const;
 * const plan = planBatch({
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *   blockTables: Int32Array.of(3), maxBlocksPerSeq: 1, blockSize: 4,
 * });
 * assert.throws(
 *   () => checkAttendInput({ name: "mine", target: "native" }, cache, {
 *     plan, queryLength: 4, outLength: 4,
 *   }),
 *   /blockTables\[0\]\[0\] is 3, outside the cache's 1 blocks/,
 * );
 * ```
 */
export function checkAttendInput(
  backend: BackendIdentity,
  cache: CheckedCache,
  shape: AttendShape,
): void {
  const { config } = cache;
  const { plan } = shape;
  if (plan.blockSize !== config.blockSize) {
    throw shapeError(
      backend,
      cache,
      `The batch was planned for block size ${plan.blockSize} but layer ${config.index}'s cache uses ${config.blockSize}`,
    );
  }
  const want = plan.numTokens * config.numQHeads * config.headDim;
  checkLength(backend, cache, ["query", shape.queryLength, want]);
  checkLength(backend, cache, ["out", shape.outLength, want]);
  for (let s = 0; s < plan.numSeqs; s++) {
    const blocks = Math.ceil(plan.seqLens[s] / config.blockSize);
    for (let b = 0; b < blocks; b++) {
      const block = plan.blockTables[s * plan.maxBlocksPerSeq + b];
      if (block >= cache.numBlocks) {
        throw shapeError(
          backend,
          cache,
          `blockTables[${s}][${b}] is ${block}, outside the cache's ${cache.numBlocks} blocks (0..${
            cache.numBlocks - 1
          }): sequence ${s} needs ${blocks} blocks of this cache`,
        );
      }
    }
  }
}

/**
 * Checks copyBlocks pairs: an even length, every block inside the cache.
 *
 * @example Usage
 * ```ts
 * import { checkCopyPairs } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   numBlocks: 2,
 *   config: {
 *     index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 2,
 *     scale: 1, kvDtype: "fp16", blockSize: 4,
 *   },
 * } as const;
 * const backend = { name: "mine", target: "native" } as const;
 * assert.throws(() => checkCopyPairs(backend, cache, Int32Array.of(0)), /odd length 1/);
 * assert.throws(
 *   () => checkCopyPairs(backend, cache, Int32Array.of(0, 2)),
 *   /Block 2 in pairs\[0\.\.1\] is outside 0\.\.1/,
 * );
 * ```
 */
export function checkCopyPairs(
  backend: BackendIdentity,
  cache: CheckedCache,
  pairs: Int32Array,
): void {
  if (pairs.length % 2 !== 0) {
    throw shapeError(
      backend,
      cache,
      `pairs must hold [src, dst] pairs, got an odd length ${pairs.length}`,
    );
  }
  for (let i = 0; i < pairs.length; i++) {
    const b = pairs[i];
    if (!Number.isInteger(b) || b < 0 || b >= cache.numBlocks) {
      const first = i - (i % 2);
      throw shapeError(
        backend,
        cache,
        `Block ${b} in pairs[${first}..${first + 1}] is outside 0..${
          cache.numBlocks - 1
        }`,
      );
    }
  }
}

/**
 * Checks readCache slots: every one inside the cache (no padding here).
 *
 * @example Usage
 * ```ts
 * import { checkReadSlots } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   numBlocks: 1,
 *   config: {
 *     index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 2,
 *     scale: 1, kvDtype: "fp16", blockSize: 4,
 *   },
 * } as const;
 * assert.throws(
 *   () => checkReadSlots({ name: "mine", target: "native" }, cache, Int32Array.of(0, -1)),
 *   /slots\[1\] is -1, outside the cache's 4 slots/,
 * );
 * ```
 */
export function checkReadSlots(
  backend: BackendIdentity,
  cache: CheckedCache,
  slots: Int32Array,
): void {
  for (let i = 0; i < slots.length; i++) {
    checkSlot(backend, cache, [slots[i], `slots[${i}]`]);
  }
}
