/**
 * The xformers WebGPU plan: the batch metadata the attention kernels read,
 * packed and uploaded ONCE per batch by the backend's plan() into one int32
 * buffer that every layer's attend binds (`batch_meta` in decode.wgsl and prefill.wgsl), so
 * that both kernels bind the same six storage buffers and stay under
 * WebGPU's default limit of eight per stage:
 *
 * [seqLens | blockTables | tokenSeq | tokenPos | decode items | prefill tiles]
 *
 * Decode items are token indices (sequences with one query token); prefill
 * tiles are (first token, token count) pairs of up to PREFILL_QUERY_TILE
 * consecutive query tokens of one sequence. Nothing here depends on a layer
 * (dtype, window, head counts), so one plan serves every layer of a step.
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { pagedTables } from "../../core/paged_tables.ts";
import { createBufferFrom } from "../../webgpu/mod.ts";
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

/** The xformers WebGPU plan: the core plan plus its metadata, uploaded once. */
export interface XformersPlan extends PlannedBatch {
  /** The packed metadata (host copy) and where each part starts. */
  readonly batchMeta: BatchMeta;
  /**
   * batchMeta.data on the device, bound by every layer's attention (at
   * least 16 bytes: an empty batch still gets a valid buffer).
   */
  readonly metaBuffer: GPUBuffer;
  /**
   * Largest block id the batch reads (-1 for none): each layer checks it
   * against its cache in O(1) instead of walking the block tables.
   */
  readonly maxBlockId: number;
}

/** Packs `batch` and uploads the metadata to `device` (one buffer). */
export function buildXformersPlan(
  device: GPUDevice,
  batch: PlannedBatch,
): XformersPlan {
  const batchMeta = packBatchMeta(batch);
  const metaBuffer = createBufferFrom(
    device,
    batchMeta.data,
    GPUBufferUsage.STORAGE,
    "xformers plan",
  );
  // The core's page tables are memoized per batch: free if another backend
  // (or a later call) already built them.
  const { maxPageId } = pagedTables(batch);
  return { ...batch, batchMeta, metaBuffer, maxBlockId: maxPageId };
}
