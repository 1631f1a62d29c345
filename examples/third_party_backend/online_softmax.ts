/**
 * The online-softmax state of flash attention, one row per query head of a
 * tile loop: a running max, a running sum of exp(logit - max) and an output
 * accumulator, all fp32. Keys are folded in a tile at a time; when a tile
 * raises the max, what was accumulated so far is rescaled by
 * exp(oldMax - newMax). One pass over the keys, no logits array the length
 * of the sequence (the reference backend keeps one, in fp64, and makes two
 * passes).
 *
 * @module
 */

/** Running softmax state for `rows` query rows of `headDim` outputs each. */
export class OnlineSoftmax {
  readonly rows: number;
  readonly headDim: number;
  /** Running max of the logits seen so far. shape [rows], float32 */
  readonly max: Float32Array;
  /** Running sum of exp(logit - max). shape [rows], float32 */
  readonly sum: Float32Array;
  /** Running sum of exp(logit - max) * v. shape [rows, headDim], float32 */
  readonly acc: Float32Array;

  constructor(rows: number, headDim: number) {
    this.rows = rows;
    this.headDim = headDim;
    this.max = new Float32Array(rows);
    this.sum = new Float32Array(rows);
    this.acc = new Float32Array(rows * headDim);
    this.reset();
  }

  /** Empties every row: max -Infinity, sum 0, acc 0. */
  reset(): void {
    this.max.fill(-Infinity);
    this.sum.fill(0);
    this.acc.fill(0);
  }

  /**
   * Folds keys `from..to-1` of one tile into one row.
   *
   * @param row The query row.
   * @param logits The tile's logits for this row. shape [>= to], float32
   * @param values The tile's dequantized values. shape [>= to, headDim], float32
   */
  fold(
    row: number,
    logits: Float32Array,
    values: Float32Array,
    from: number,
    to: number,
  ): void {
    let tileMax = -Infinity;
    for (let j = from; j < to; j++) {
      if (logits[j] > tileMax) tileMax = logits[j];
    }
    const old = this.max[row];
    const max = Math.max(old, tileMax);
    // A row that has seen nothing has nothing to rescale; computing
    // exp(old - max) there would give exp(-inf - -inf) = NaN when the
    // tile is empty too.
    const alpha = old === -Infinity ? 0 : Math.exp(old - max);
    const d = this.headDim, at = row * d, acc = this.acc;
    let sum = this.sum[row] * alpha;
    if (alpha !== 1) {
      for (let i = 0; i < d; i++) acc[at + i] *= alpha;
    }
    for (let j = from; j < to; j++) {
      const p = Math.fround(Math.exp(logits[j] - max));
      sum += p;
      const v = j * d;
      // Each += stores into a Float32Array: fp32 accumulation, as a
      // kernel's fp32 registers would do.
      for (let i = 0; i < d; i++) acc[at + i] += p * values[v + i];
    }
    this.max[row] = max;
    this.sum[row] = sum;
  }

  /**
   * Writes acc / sum for one row.
   *
   * @param out shape [>= at + headDim], float32
   */
  normalize(row: number, out: Float32Array, at: number): void {
    const d = this.headDim, from = row * d;
    // sum >= 1 once any key was folded (the max key contributes exp(0));
    // an empty row would give 0 / 0 = NaN, which attend never produces
    // because every query sees at least itself.
    const inv = 1 / this.sum[row];
    for (let i = 0; i < d; i++) out[at + i] = this.acc[from + i] * inv;
  }
}
