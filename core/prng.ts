/**
 * A tiny seeded pseudo-random generator for reproducible tests and
 * benchmarks. Not for cryptography.
 *
 * @module
 */

/**
 * Mulberry32: a 32-bit state generator, fast and good enough for property
 * tests. The same seed always gives the same sequence, so a failing random
 * test can be replayed from the seed it prints.
 *
 * @param seed Any finite number; it is truncated to an unsigned 32-bit integer.
 * @returns A function that returns the next number in [0, 1) on each call.
 *
 * @example Same seed, same sequence
 * ```ts
 * import { mulberry32 } from "./prng.ts";
 * import assert from "node:assert/strict";
 *
 * const a = mulberry32(42);
 * const b = mulberry32(42);
 * const first = a();
 * assert.equal(first, b());
 * assert.ok(first >= 0 && first < 1);
 * ```
 */
export function mulberry32(seed: number): () => number {
  if (!Number.isFinite(seed)) {
    throw new RangeError(
      `Cannot seed mulberry32 with ${seed}: pass a finite number such as 1`,
    );
  }
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
