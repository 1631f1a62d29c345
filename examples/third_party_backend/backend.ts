/**
 * The tiled_ts backend instance: the contract's members, with their input
 * checks, over the tiled layout (cache.ts) and the tiled attention kernel
 * (attention.ts). Written only against the public mod.ts, as a third party
 * would.
 *
 * @module
 */

import {
  assertBatchSupported,
  assertSupported,
  type AttendInput,
  type AttentionBackend,
  type BackendCapabilities,
  BackendDisposedError,
  type CacheReadout,
  checkAttendInput,
  checkCopyPairs,
  checkReadSlots,
  checkWriteInput,
  type CreateCacheOptions,
  ForeignHandleError,
  type LayerConfig,
  type PlannedBatch,
  type WriteInput,
} from "../../mod.ts";
import { tiledBytesPerBlock, TiledCache } from "./cache.ts";
import { attendTiled } from "./attention.ts";

/** What tiled_ts declares. Everything not listed is refused in createCache. */
export const TILED_CAPABILITIES: BackendCapabilities = {
  kvDtypes: ["fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"],
  int8Schemes: ["per_tensor", "per_token_head"],
  headDims: { multipleOf: 8, min: 8, max: 256 },
  blockSizes: [8, 16, 32],
  layerKinds: ["full", "sliding_window"],
  softCap: true,
  lowPrecisionCompute: false,
  prefill: true,
  decode: true,
  mixedBatches: true,
};

const NAME = "tiled_ts";

/**
 * tiled_ts's own per-batch metadata, derived once by plan() and reused by
 * every layer: each sequence's block ids as a view into the block table.
 * Layer-independent on purpose (layers differ in window and dtype).
 */
export interface TiledPlan extends PlannedBatch {
  /** Per sequence s: shape [ceil(seqLens[s] / blockSize)], int32 */
  readonly seqBlocks: readonly Int32Array[];
}

/** A tiled_ts instance. Synchronous: its members return plain values. */
export interface TiledBackend extends AttentionBackend<TiledCache, TiledPlan> {
  createCache(config: LayerConfig, options: CreateCacheOptions): TiledCache;
  write(cache: TiledCache, input: WriteInput): void;
  plan(batch: PlannedBatch): TiledPlan;
  attend(cache: TiledCache, plan: TiledPlan, input: AttendInput): void;
  copyBlocks(cache: TiledCache, pairs: Int32Array): void;
  readCache(cache: TiledCache, slots: Int32Array): CacheReadout;
  disposeCache(cache: TiledCache): void;
  dispose(): void;
}

/** Creates a tiled_ts instance (what the definition's create() returns). */
export function createTiledBackend(): TiledBackend {
  // Who the typed errors name; the shared checks take it too.
  const self = { name: NAME, target: "reference" } as const;
  let disposed = false;
  const live = (cache?: TiledCache) => {
    if (disposed) {
      throw new BackendDisposedError({ backend: NAME, target: "reference" });
    }
    if (cache?.released) {
      throw new ForeignHandleError(
        `Layer ${cache.config.index}'s cache was released by disposeCache(): create a new cache`,
        { backend: NAME, target: "reference", layer: cache.config.index },
      );
    }
  };

  return {
    name: NAME,
    target: "reference",
    version: "0.1.0",
    capabilities: TILED_CAPABILITIES,
    cacheBytesPerBlock: tiledBytesPerBlock,
    createCache(config: LayerConfig, options: CreateCacheOptions) {
      live();
      // Undeclared combinations are errors, never wrong answers.
      assertSupported(NAME, TILED_CAPABILITIES, config);
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      return new TiledCache(config, options.numBlocks, options.scales);
    },
    write(cache: TiledCache, { keys, values, slotMapping }: WriteInput) {
      live(cache);
      // Lengths and every slot, before anything is written.
      checkWriteInput(self, cache, { keys, values, slotMapping });
      const row = cache.config.numKvHeads * cache.config.headDim;
      for (let t = 0; t < slotMapping.length; t++) {
        const slot = slotMapping[t];
        if (slot === -1) continue; // padding: skipped, never written
        const at = t * row;
        cache.writeSlot(
          slot,
          keys.subarray(at, at + row),
          values.subarray(at, at + row),
        );
      }
    },
    plan(batch: PlannedBatch): TiledPlan {
      live();
      const { blockTables, maxBlocksPerSeq: width, blockSize } = batch;
      const seqBlocks = Array.from(batch.seqLens, (len, s) => {
        const start = s * width;
        return blockTables.subarray(start, start + Math.ceil(len / blockSize));
      });
      return { ...batch, seqBlocks };
    },
    attend(cache: TiledCache, plan: TiledPlan, input: AttendInput) {
      live(cache);
      assertBatchSupported(NAME, TILED_CAPABILITIES, plan);
      const { config } = cache;
      if (plan.seqBlocks === undefined) {
        throw new ForeignHandleError(
          `Backend ${NAME} needs the plan from its own plan(): call backend.plan(planBatch(...)) once per batch and pass that to every layer`,
          { backend: NAME, target: "reference", layer: config.index },
        );
      }
      // Block size, query and out lengths, every block read inside the cache.
      checkAttendInput(self, cache, {
        plan,
        queryLength: input.query.length,
        outLength: input.out.length,
      });
      attendTiled(cache, plan, input);
    },
    copyBlocks(cache: TiledCache, pairs: Int32Array) {
      live(cache);
      checkCopyPairs(self, cache, pairs);
      for (let i = 0; i < pairs.length; i += 2) {
        cache.copyBlock(pairs[i], pairs[i + 1]);
      }
    },
    readCache(cache: TiledCache, slots: Int32Array): CacheReadout {
      live(cache);
      const { numKvHeads, headDim, blockSize } = cache.config;
      const row = numKvHeads * headDim;
      const keys = new Float32Array(slots.length * row);
      const values = new Float32Array(slots.length * row);
      checkReadSlots(self, cache, slots);
      slots.forEach((slot, i) => {
        const block = Math.floor(slot / blockSize), offset = slot % blockSize;
        for (let h = 0; h < numKvHeads; h++) {
          const at = i * row + h * headDim;
          const k = keys.subarray(at, at + headDim);
          const v = values.subarray(at, at + headDim);
          cache.readTile("k", block, h, offset, 1, k);
          cache.readTile("v", block, h, offset, 1, v);
        }
      });
      return { keys, values };
    },
    disposeCache(cache: TiledCache) {
      cache.released = true;
    },
    dispose() {
      disposed = true;
    },
  };
}
