/**
 * Error statistics and Markdown formatting shared by the accuracy sections.
 *
 * @module
 */

/** Max abs and root-mean-square of `actual - expected`. */
export interface ErrorStats {
  readonly maxAbs: number;
  readonly rms: number;
}

/**
 * Compares two arrays element by element. A NaN anywhere makes both
 * statistics NaN, so that an unwritten output cannot look accurate.
 *
 * @param actual shape [n], any float dtype
 * @param expected shape [n], any float dtype
 */
export function errorStats(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
): ErrorStats {
  if (actual.length !== expected.length) {
    throw new RangeError(
      `Cannot compare arrays of ${actual.length} and ${expected.length} elements: pass arrays of the same shape`,
    );
  }
  let maxAbs = 0, sum = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (Number.isNaN(d)) return { maxAbs: NaN, rms: NaN };
    if (d > maxAbs) maxAbs = d;
    sum += d * d;
  }
  return { maxAbs, rms: Math.sqrt(sum / Math.max(1, actual.length)) };
}

/** Root-mean-square of an array. */
export function rms(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return Math.sqrt(sum / Math.max(1, x.length));
}

/** A compact number for tables: `0`, `3.1e-4`, `0.12`, `NaN`. */
export function fmt(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 0.01 && a < 1000 ? x.toPrecision(2) : x.toExponential(1);
}

/** A percentage with no decimals: `91%`. */
export function pct(x: number): string {
  return `${Math.round(100 * x)}%`;
}

/** A Markdown table; every row must have as many cells as the header. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, c) =>
    Math.max(3, h.length, ...rows.map((r) => r[c].length))
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((s, c) => s.padEnd(widths[c])).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...rows.map(line),
  ].join("\n");
}

/** Seconds since `start` (a performance.now() reading), one decimal. */
export function secondsSince(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`;
}
