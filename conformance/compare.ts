/**
 * Element-wise comparison with a mismatch table, in the shape of the WebGPU
 * CTS's "Array had unexpected contents" and ggml's one-line metrics.
 *
 * @module
 */

/** The outcome of a comparison. */
export interface Comparison {
  /** Every element within its bound (NaN equal only to NaN). */
  readonly ok: boolean;
  /** The largest |actual - expected| (Infinity when NaN meets a number). */
  readonly maxAbsError: number;
  /** Elements outside the bound (NaN counts as outside). */
  readonly mismatches: number;
  /** A table of the first mismatches, empty when ok. */
  readonly table: string;
}

/**
 * Compares `actual` with `expected` under |a - e| <= atol + rtol * |e| (or a
 * per-element bound), naming each bad element through `describe(index)`.
 *
 * @example Usage
 * ```ts
 * import { compareArrays } from "./compare.ts";
 * import assert from "node:assert/strict";
 *
 * const c = compareArrays(Float32Array.of(1, NaN), Float64Array.of(1, 2), { atol: 1e-3, rtol: 0 });
 * assert.equal(c.mismatches, 1);
 * assert.match(c.table, /\[1\] actual NaN expected 2/);
 * ```
 */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  bound: { atol: number; rtol: number } | ((index: number) => number),
  describe: (index: number) => string = (i) => `[${i}]`,
): Comparison {
  const limit = typeof bound === "function"
    ? bound
    : (i: number) => bound.atol + bound.rtol * Math.abs(expected[i]);
  let maxAbsError = 0, mismatches = 0;
  const rows: string[] = [];
  if (actual.length !== expected.length) {
    return {
      ok: false,
      maxAbsError: Infinity,
      mismatches: Math.max(actual.length, expected.length),
      table: `  length: actual ${actual.length} expected ${expected.length}`,
    };
  }
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const err = Math.abs(a - e);
    const same = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
    if (!same && !(err <= limit(i))) {
      mismatches++;
      if (rows.length < 8) {
        rows.push(
          `  ${describe(i)} actual ${a} expected ${e} (|diff| ${
            err.toPrecision(3)
          } > ${limit(i).toPrecision(3)})`,
        );
      }
    }
    if (err > maxAbsError || Number.isNaN(err)) {
      maxAbsError = Number.isNaN(err) ? Infinity : err;
    }
  }
  if (mismatches > rows.length) {
    rows.push(`  ... and ${mismatches - rows.length} more`);
  }
  return {
    ok: mismatches === 0,
    maxAbsError,
    mismatches,
    table: rows.join("\n"),
  };
}
