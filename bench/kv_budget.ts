/**
 * The default KV cache budget of the serving benchmark: small enough that
 * the 16-bit cache, not max-num-seqs, limits the batch, which is the
 * setting where an 8-bit cache pays (the seeds' finding). It holds a fixed
 * number of full-length sequences in bf16, so the fp32 cache holds half as
 * many and an 8-bit one about twice as many.
 *
 * @module
 */

import type { ModelSpec } from "../core/model_config.ts";
import { kvBytesPerToken } from "../core/selection_report.ts";
import type { DatasetShape } from "./datasets.ts";

/** Full-length sequences the default budget holds in bf16. */
export const BF16_SEQUENCES = 16;

/** A budget and how it was chosen. */
export interface KvBudget {
  readonly bytes: number;
  /** One sentence for the terminal and the results file. */
  readonly why: string;
}

/**
 * The default budget for a dataset: `sequences` full-length sequences
 * (prompt + output, rounded up to whole blocks) in bf16, for every layer.
 *
 * @example Usage
 * ```ts
 * import { defaultKvBudget } from "./kv_budget.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = { index: 0, kind: "full", numQHeads: 4, numKvHeads: 2, headDim: 64, scale: 0.125 } as const;
 * const spec = { name: "m", modelType: "gemma2", dtype: "fp32", layers: [layer, { ...layer, index: 1 }] } as const;
 * const shape = { name: "decode-heavy", inputLen: 16, outputLen: 256, numRequests: 64, maxBatch: 64 } as const;
 * // 17 blocks of 16 tokens x 2 layers x 512 bytes a token in bf16, for 16 sequences.
 * assert.equal(defaultKvBudget(spec, shape, { blockSize: 16 }).bytes, 16 * 17 * 16 * 2 * 512);
 * ```
 */
export function defaultKvBudget(
  spec: ModelSpec,
  shape: DatasetShape,
  o: { blockSize: number; sequences?: number },
): KvBudget {
  const sequences = o.sequences ?? BF16_SEQUENCES;
  const perToken = spec.layers.reduce(
    (sum, l) =>
      sum + kvBytesPerToken({ ...l, kvDtype: "bf16", blockSize: o.blockSize }),
    0,
  );
  const blocks = Math.ceil((shape.inputLen + shape.outputLen) / o.blockSize);
  const bytes = sequences * blocks * o.blockSize * perToken;
  return {
    bytes,
    why: `${formatMiB(bytes)} = ${sequences} sequences of ${
      shape.inputLen + shape.outputLen
    } tokens (${blocks} blocks of ${o.blockSize}) at ${perToken} bytes a token in bf16; fp32 holds half as many, 8-bit about twice`,
  };
}

/**
 * Bytes as MiB with two decimals.
 *
 * @example Usage
 * ```ts
 * import { formatMiB } from "./kv_budget.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatMiB(13369344), "12.75 MiB");
 * ```
 */
export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}
