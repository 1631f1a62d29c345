/**
 * Runs one sequence through a backend the way the engine does, using only
 * the public contract: allocate, write the K/V through a slot mapping over
 * shuffled (non-contiguous) blocks, plan, attend the last `qLen` positions,
 * and read the stored cache back (readCache, or core's codecs when a backend
 * has none, as conformance/scenario.ts does).
 *
 * @module
 */

import { withPlan } from "../../core/plan_fallback.ts";
import type { AttentionBackend } from "../../core/backend.ts";
import { planBatch, type PlannedBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import { expectedDequantized } from "../../conformance/scenario.ts";

/** One sequence and its queries. */
export interface DriveInput {
  /** shape [seqLen, numKvHeads, headDim], float32 */
  readonly keys: Float32Array;
  /** shape [seqLen, numKvHeads, headDim], float32 */
  readonly values: Float32Array;
  /** Queries of the last qLen positions. shape [qLen, numQHeads, headDim], float32 */
  readonly query: Float32Array;
  readonly scales: LayerKvScales;
  /** Shuffles the block table. */
  readonly rand: () => number;
  /** Read the stored cache back (keys/values of the result). @default true */
  readonly readBack?: boolean;
}

/** What the backend produced, and what it stored. */
export interface DriveResult {
  /** The core plan, for the oracle. */
  readonly plan: PlannedBatch;
  /** shape [qLen, numQHeads, headDim], float32 */
  readonly out: Float32Array;
  /** The backend's dequantized cache (empty without readBack). shape [seqLen, numKvHeads, headDim], float32 */
  readonly keys: Float32Array;
  /** shape [seqLen, numKvHeads, headDim], float32 (empty without readBack) */
  readonly values: Float32Array;
}

/** Writes, plans and attends one sequence; the output starts as NaN. */
export async function attendThrough(
  backend: AttentionBackend,
  layer: LayerConfig,
  input: DriveInput,
): Promise<DriveResult> {
  const { blockSize, numKvHeads, numQHeads, headDim } = layer;
  const row = numKvHeads * headDim;
  const seqLen = input.keys.length / row;
  const qLen = input.query.length / (numQHeads * headDim);
  const blocks = Math.ceil(seqLen / blockSize);
  const numBlocks = blocks + 2;
  const ids = [...Array(numBlocks).keys()];
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(input.rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const table = Int32Array.from(ids.slice(0, blocks));
  const slots = Int32Array.from(
    { length: seqLen },
    (_, j) => table[Math.floor(j / blockSize)] * blockSize + j % blockSize,
  );
  const cache = await backend.createCache(layer, {
    numBlocks,
    scales: input.scales,
  });
  try {
    await backend.write(cache, {
      keys: input.keys,
      values: input.values,
      slotMapping: slots,
    });
    const plan = planBatch({
      queryStartLoc: Int32Array.of(0, qLen),
      seqLens: Int32Array.of(seqLen),
      blockTables: table,
      maxBlocksPerSeq: blocks,
      blockSize,
    });
    const own = withPlan(backend).plan(plan);
    const out = new Float32Array(input.query.length).fill(NaN);
    await backend.attend(cache, own, { query: input.query, out });
    const { scales } = input;
    if (input.readBack === false) {
      const none = new Float32Array();
      return { plan, out, keys: none, values: none };
    }
    const stored = backend.readCache ? await backend.readCache(cache, slots) : {
      keys: expectedDequantized(
        layer,
        input.keys,
        scales.kScale,
        scales.kZeroPoint,
      ),
      values: expectedDequantized(
        layer,
        input.values,
        scales.vScale,
        scales.vZeroPoint,
      ),
    };
    return { plan, out, keys: stored.keys, values: stored.values };
  } finally {
    await backend.disposeCache?.(cache);
  }
}
