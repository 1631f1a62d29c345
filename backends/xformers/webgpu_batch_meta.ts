/**
 * The batch metadata the attention kernels read, packed once per attend
 * into one int32 buffer (`batch_meta` in decode.wgsl and prefill.wgsl), so
 * that both kernels bind the same six storage buffers and stay under
 * WebGPU's default limit of eight per stage:
 *
 * [seqLens | blockTables | tokenSeq | tokenPos | decode items | prefill tiles]
 *
 * Decode items are token indices (sequences with one query token); prefill
 * tiles are (first token, token count) pairs of up to PREFILL_QUERY_TILE
 * consecutive query tokens of one sequence.
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { PREFILL_QUERY_TILE } from "./webgpu_kernels.ts";

/** The packed metadata and where each part starts. */
export interface BatchMeta {
  /** shape [total], int32 */
  readonly data: Int32Array;
  /** Offsets of seqLens, blockTables, tokenSeq, tokenPos. */
  readonly offsets: readonly [number, number, number, number];
  readonly decodeAt: number;
  readonly numDecodes: number;
  readonly tilesAt: number;
  readonly numTiles: number;
  /** Keys the decode / prefill kernel must reach: 1 + the last position served. */
  readonly decodeEnd: number;
  readonly prefillEnd: number;
}

/** Splits a planned batch into decode items and prefill tiles and packs it. */
export function packBatchMeta(plan: PlannedBatch): BatchMeta {
  const decode: number[] = [], tiles: number[] = [];
  let decodeEnd = 0, prefillEnd = 0;
  for (let s = 0; s < plan.numSeqs; s++) {
    const start = plan.queryStartLoc[s];
    const qLen = plan.queryStartLoc[s + 1] - start;
    const end = plan.tokenPos[start + qLen - 1] + 1;
    if (qLen === 1) {
      decode.push(start);
      decodeEnd = Math.max(decodeEnd, end);
      continue;
    }
    for (let i = 0; i < qLen; i += PREFILL_QUERY_TILE) {
      tiles.push(start + i, Math.min(PREFILL_QUERY_TILE, qLen - i));
    }
    prefillEnd = Math.max(prefillEnd, end);
  }
  const parts = [plan.seqLens, plan.blockTables, plan.tokenSeq, plan.tokenPos];
  const offsets: number[] = [];
  let length = 0;
  for (const p of parts) {
    offsets.push(length);
    length += p.length;
  }
  const data = new Int32Array(length + decode.length + tiles.length);
  parts.forEach((p, i) => data.set(p, offsets[i]));
  data.set(decode, length);
  data.set(tiles, length + decode.length);
  return {
    data,
    offsets: offsets as [number, number, number, number],
    decodeAt: length,
    numDecodes: decode.length,
    tilesAt: length + decode.length,
    numTiles: tiles.length / 2,
    decodeEnd,
    prefillEnd,
  };
}
