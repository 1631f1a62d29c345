/**
 * FlashInfer's plan step for the WebGPU target: from the core plan, build
 * the page-table metadata and the split-KV work partition ONCE per batch,
 * upload it to one GPU buffer, and let every layer's attend() reuse it. The
 * plan depends on the batch and the page size only, never on a layer: the
 * chunks cover each decode sequence's whole kv range [0, len) so that
 * layers with different windows, head counts or dtypes share them (a chunk
 * a window hides entirely is cheap: the kernel clips it to nothing).
 *
 * @module
 */

import type { PlannedBatch } from "../../core/batch.ts";
import { pagedTables } from "../../core/paged_tables.ts";
import { createBufferFrom } from "../../webgpu/mod.ts";
import { MAX_CHUNK_KEYS, PREFILL_TOKEN_TILE } from "./webgpu_kernels.ts";

/**
 * Chunks the partition aims for, so a few long decodes fill the device:
 * times the kv heads, enough workgroups for every SM of a large GPU (132
 * on an H100) to hold several; the partial outputs this adds stay small
 * next to the cache they summarize.
 */
export const TARGET_CHUNKS = 256;
/** The shortest chunk worth a workgroup of its own (before page rounding). */
export const MIN_CHUNK_KEYS = 64;

/** Where each part of the uploaded int32 metadata starts (in elements). */
export interface PlanOffsets {
  readonly kvIndptr: number;
  readonly kvIndices: number;
  readonly lastPageLen: number;
  readonly chunks: number;
  readonly items: number;
  readonly tiles: number;
}

/** The flashinfer plan: the core plan plus page tables and work partition. */
export interface FlashinferPlan extends PlannedBatch {
  /** Tokens per page (the batch's block size). */
  readonly pageSize: number;
  /** Page ranges: shape [numSeqs + 1], int32 */
  readonly kvIndptr: Int32Array;
  /** Page ids of all sequences, flattened: shape [kvIndptr[numSeqs]], int32 */
  readonly kvIndices: Int32Array;
  /** Tokens in each sequence's last page, 1..pageSize: shape [numSeqs], int32 */
  readonly kvLastPageLen: Int32Array;
  /** Keys per split-KV chunk (a multiple of pageSize). */
  readonly chunkKeys: number;
  /** Per chunk (token, sequence, first key, end key): shape [numChunks, 4], int32 */
  readonly decodeChunks: Int32Array;
  /** Per decode token (token, first chunk, chunk count): shape [numDecodes, 3], int32 */
  readonly decodeItems: Int32Array;
  /** Per prefill tile (first token, count, sequence, first position): shape [numTiles, 4], int32 */
  readonly prefillTiles: Int32Array;
  /** 1 + the last position a prefill token has (keys the prefill passes reach). */
  readonly prefillEnd: number;
  /** Largest page id used (attend checks it against the cache). */
  readonly maxPageId: number;
  /** The metadata above, uploaded once: [kvIndptr | kvIndices | lastPageLen | chunks | items | tiles]. */
  readonly meta: GPUBuffer;
  readonly offsets: PlanOffsets;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * Keys per chunk: enough chunks (TARGET_CHUNKS over all decode keys) for a
 * long context to spread over the device, no shorter than MIN_CHUNK_KEYS,
 * no longer than `maxChunkKeys` (the loop bound), whole pages always.
 */
export function chunkKeysFor(
  totalDecodeKeys: number,
  pageSize: number,
  maxChunkKeys: number = MAX_CHUNK_KEYS,
): number {
  const cap = Math.max(
    pageSize,
    Math.floor(maxChunkKeys / pageSize) * pageSize,
  );
  const want = Math.max(
    Math.ceil(totalDecodeKeys / TARGET_CHUNKS),
    MIN_CHUNK_KEYS,
  );
  return Math.min(cap, roundUp(want, pageSize));
}

/** The host-side metadata of a plan (no GPU): see {@linkcode FlashinferPlan}. */
export type PlanMetadata = Omit<FlashinferPlan, "meta" | keyof PlannedBatch>;

/** Builds the page tables and the work partition of a planned batch. */
export function planMetadata(
  batch: PlannedBatch,
  maxChunkKeys: number = MAX_CHUNK_KEYS,
): PlanMetadata & { readonly data: Int32Array } {
  const { numSeqs, blockSize: pageSize, seqLens, queryStartLoc } = batch;
  // The page tables are core's, built once per batch (shared with others).
  const { kvIndptr, kvIndices, kvLastPageLen, maxPageId } = pagedTables(batch);
  let decodeKeys = 0;
  for (let s = 0; s < numSeqs; s++) {
    if (queryStartLoc[s + 1] - queryStartLoc[s] === 1) decodeKeys += seqLens[s];
  }
  const chunkKeys = chunkKeysFor(decodeKeys, pageSize, maxChunkKeys);
  const chunks: number[] = [], items: number[] = [], tiles: number[] = [];
  let prefillEnd = 0;
  for (let s = 0; s < numSeqs; s++) {
    const t0 = queryStartLoc[s], qLen = queryStartLoc[s + 1] - t0;
    if (qLen === 1) {
      items.push(t0, chunks.length / 4, Math.ceil(seqLens[s] / chunkKeys));
      for (let k = 0; k < seqLens[s]; k += chunkKeys) {
        chunks.push(t0, s, k, Math.min(seqLens[s], k + chunkKeys));
      }
      continue;
    }
    for (let i = 0; i < qLen; i += PREFILL_TOKEN_TILE) {
      const n = Math.min(PREFILL_TOKEN_TILE, qLen - i);
      tiles.push(t0 + i, n, s, batch.tokenPos[t0 + i]);
    }
    prefillEnd = Math.max(prefillEnd, seqLens[s]);
  }
  const parts = [kvIndptr, kvIndices, kvLastPageLen, chunks, items, tiles];
  const at: number[] = [];
  let length = 0;
  for (const p of parts) {
    at.push(length);
    length += p.length;
  }
  const data = new Int32Array(length);
  parts.forEach((p, i) => data.set(p, at[i]));
  const [kvIndptrAt, kvIndicesAt, lastPageLen, chunksAt, itemsAt, tilesAt] = at;
  return {
    pageSize,
    kvIndptr,
    kvIndices,
    kvLastPageLen,
    chunkKeys,
    decodeChunks: Int32Array.from(chunks),
    decodeItems: Int32Array.from(items),
    prefillTiles: Int32Array.from(tiles),
    prefillEnd,
    maxPageId,
    offsets: {
      kvIndptr: kvIndptrAt,
      kvIndices: kvIndicesAt,
      lastPageLen,
      chunks: chunksAt,
      items: itemsAt,
      tiles: tilesAt,
    },
    data,
  };
}

/** Builds the plan and uploads its metadata to `device` (one buffer). */
export function buildPlan(
  device: GPUDevice,
  batch: PlannedBatch,
  maxChunkKeys?: number,
): FlashinferPlan {
  const { data, ...meta } = planMetadata(batch, maxChunkKeys);
  const buffer = createBufferFrom(
    device,
    data,
    GPUBufferUsage.STORAGE,
    "flashinfer plan",
  );
  return { ...batch, ...meta, meta: buffer };
}
