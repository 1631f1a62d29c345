/**
 * Summary statistics for latency samples: mean and linearly interpolated
 * percentiles (numpy's default, which vLLM's benchmark_serving uses).
 *
 * @module
 */

/** Median, p90 and p99 of a sample; NaN for an empty one. */
export interface Percentiles {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/**
 * The q-th percentile (0..100), interpolating between the two nearest ranks.
 *
 * @example Usage
 * ```ts
 * import { percentile } from "./stats.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
 * assert.equal(percentile([5], 99), 5);
 * assert.ok(Number.isNaN(percentile([], 50)));
 * ```
 */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(rank), hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

/** p50, p90 and p99 of a sample. */
export function percentiles(values: readonly number[]): Percentiles {
  return {
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
  };
}

/**
 * The arithmetic mean; NaN for an empty sample.
 *
 * @example Usage
 * ```ts
 * import { mean } from "./stats.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mean([1, 2, 6]), 3);
 * ```
 */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  return values.reduce((a, b) => a + b, 0) / values.length;
}
