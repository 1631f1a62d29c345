/**
 * The argument checks of the native fa3 backend, with the reference
 * backend's messages: everything the addon would refuse, said first in
 * terms a caller can act on (the addon checks again, so that a direct
 * call can never read out of bounds).
 *
 * @module
 */

import type { AttendInput, WriteInput } from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import { Fa3NativeCache } from "./native_cache.ts";

/** The checks, bound to one backend instance's disposed flag. */
export interface Fa3ArgChecks {
  live(cache?: unknown): void;
  slot(cache: Fa3NativeCache, slot: number, where: string): void;
  write(cache: Fa3NativeCache, input: WriteInput): void;
  attend(cache: Fa3NativeCache, plan: PlannedBatch, input: AttendInput): void;
  copyBlocks(cache: Fa3NativeCache, pairs: Int32Array): void;
}

function checkLength(name: string, got: number, want: number): void {
  if (got !== want) {
    throw new RangeError(`${name} has ${got} elements, expected ${want}`);
  }
}

/**
 * Checks for one backend instance.
 *
 * @example Usage
 * ```ts
 * import { checkFa3Args } from "./native_checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => checkFa3Args(() => true).live(), /was disposed/);
 * ```
 */
export function checkFa3Args(disposed: () => boolean): Fa3ArgChecks {
  const live = (cache?: unknown) => {
    if (disposed()) {
      throw new Error(
        "Backend fa3 was disposed: create a new instance to keep using it",
      );
    }
    if (cache !== undefined && !(cache instanceof Fa3NativeCache)) {
      throw new TypeError(
        "Backend fa3 (native) was given a cache it did not create: pass the cache from its own createCache()",
      );
    }
  };
  const slot = (cache: Fa3NativeCache, slot: number, where: string) => {
    if (!Number.isInteger(slot) || slot < 0 || slot >= cache.numSlots) {
      throw new RangeError(
        `${where} is ${slot}, outside the cache's ${cache.numSlots} slots (${cache.numBlocks} blocks of ${cache.config.blockSize}): use -1 for padding`,
      );
    }
  };
  return {
    live,
    slot,
    write(cache, { keys, values, slotMapping }) {
      live(cache);
      const row = cache.config.numKvHeads * cache.config.headDim;
      checkLength("keys", keys.length, slotMapping.length * row);
      checkLength("values", values.length, slotMapping.length * row);
      slotMapping.forEach((s, t) => {
        if (s !== -1) slot(cache, s, `slotMapping[${t}]`);
      });
    },
    attend(cache, plan, input) {
      const { config } = cache;
      if (plan.blockSize !== config.blockSize) {
        throw new RangeError(
          `The batch was planned for block size ${plan.blockSize} but layer ${config.index}'s cache uses ${config.blockSize}`,
        );
      }
      const qRow = config.numQHeads * config.headDim;
      checkLength("query", input.query.length, plan.numTokens * qRow);
      checkLength("out", input.out.length, plan.numTokens * qRow);
      for (let s = 0; s < plan.numSeqs; s++) {
        const blocks = Math.ceil(plan.seqLens[s] / config.blockSize);
        for (let b = 0; b < blocks; b++) {
          const block = plan.blockTables[s * plan.maxBlocksPerSeq + b];
          if (block >= cache.numBlocks) {
            throw new RangeError(
              `blockTables[${s}][${b}] is ${block}, outside the cache's ${cache.numBlocks} blocks (0..${
                cache.numBlocks - 1
              }): sequence ${s} needs ${blocks} blocks of this cache`,
            );
          }
        }
      }
    },
    copyBlocks(cache, pairs) {
      live(cache);
      if (pairs.length % 2 !== 0) {
        throw new RangeError(
          `pairs must hold [src, dst] pairs, got an odd length ${pairs.length}`,
        );
      }
      pairs.forEach((b, i) => {
        if (!Number.isInteger(b) || b < 0 || b >= cache.numBlocks) {
          throw new RangeError(
            `Block ${b} in pairs[${i - (i % 2)}..${
              i - (i % 2) + 1
            }] is outside 0..${cache.numBlocks - 1}`,
          );
        }
      });
    },
  };
}
