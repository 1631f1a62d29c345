/**
 * The reference backend: the contract implemented in plain TypeScript with
 * the fp64 oracle's math. It is slow on purpose (it gathers and dequantizes
 * each sequence, then runs the oracle) and is the smallest complete example
 * for backend authors.
 *
 * @module
 */

import type {
  AttendInput,
  AttentionBackend,
  CacheReadout,
  CreateCacheOptions,
  WriteInput,
} from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import type { BackendCapabilities } from "../../core/capabilities.ts";
import { guardBackend } from "../../core/backend_guard.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import { referenceAttention } from "../../core/reference_attention.ts";
import { sequenceSlots } from "../../core/sequence_slots.ts";
import { perTokenHead, ReferenceCache } from "./reference_cache.ts";

/** The reference backend's capabilities: everything the contract names, except 8-bit compute. */
export const REFERENCE_CAPABILITIES: BackendCapabilities = {
  kvDtypes: ["fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"],
  int8Schemes: ["per_tensor", "per_token_head"],
  headDims: { multipleOf: 1, min: 1, max: 1024 },
  blockSizes: { multipleOf: 1, min: 1, max: 1024 },
  layerKinds: ["full", "sliding_window"],
  softCap: true,
  lowPrecisionCompute: false,
  prefill: true,
  decode: true,
  mixedBatches: true,
};

/** The reference backend: synchronous, so its members return plain values. */
export interface ReferenceBackend extends AttentionBackend<ReferenceCache> {
  /** Allocates the layer's codes (and per-token-head scales) at once. */
  createCache(config: LayerConfig, options: CreateCacheOptions): ReferenceCache;
  /** Quantizes and stores each token in its slot; -1 slots are skipped. */
  write(cache: ReferenceCache, input: WriteInput): void;
  /** Dequantizes each sequence's slots and runs the fp64 oracle on them. */
  attend(cache: ReferenceCache, plan: PlannedBatch, input: AttendInput): void;
  /** Copies codes and scales block by block. pairs: [src0, dst0, src1, dst1, ...] */
  copyBlocks(cache: ReferenceCache, pairs: Int32Array): void;
  /** Dequantizes the given slots; present here, so conformance runs its write read-back cases. */
  readCache(cache: ReferenceCache, slots: Int32Array): CacheReadout;
  /** Ends the instance (the core guard refuses later calls). Caches are plain arrays, left to GC. */
  dispose(): void;
}

/**
 * Creates a reference backend instance.
 *
 * @example Usage
 * ```ts
 * import { createReferenceBackend } from "./reference_backend.ts";
 * import { planBatch } from "../../core/batch.ts";
 * import assert from "node:assert/strict";
 *
 * const backend = createReferenceBackend();
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 2,
 *   scale: 1, kvDtype: "fp16", blockSize: 16,
 * } as const;
 * const cache = backend.createCache(layer, {
 *   numBlocks: 1, scales: { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 },
 * });
 * backend.write(cache, {
 *   keys: Float32Array.of(1, 0), values: Float32Array.of(3, 4),
 *   slotMapping: Int32Array.of(0),
 * });
 * const plan = planBatch({
 *   queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *   blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 * });
 * const out = new Float32Array(2);
 * backend.attend(cache, plan, { query: Float32Array.of(1, 1), out });
 * assert.deepEqual([...out], [3, 4]); // one key: all weight on its value
 * ```
 */
export function createReferenceBackend(): ReferenceBackend {
  // The core guard owns the disposal, support, cache-provenance and
  // argument checks (core/backend_guard.ts); the body below only computes.
  return guardBackend(uncheckedReferenceBackend(), {});
}

function uncheckedReferenceBackend(): ReferenceBackend {
  return {
    name: "reference",
    target: "reference",
    version: "1.0.0",
    capabilities: REFERENCE_CAPABILITIES,

    cacheBytesPerBlock(config: LayerConfig): number {
      const row = config.numKvHeads * config.headDim;
      const codes = 2 * config.blockSize * row *
        dtypeInfo(config.kvDtype).bytes;
      const scales = perTokenHead(config)
        ? 2 * config.blockSize * config.numKvHeads * 4
        : 0;
      return codes + scales;
    },

    createCache(config: LayerConfig, options: CreateCacheOptions) {
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      return new ReferenceCache(config, options.numBlocks, options.scales);
    },

    write(cache: ReferenceCache, input: WriteInput): void {
      const { keys, values, slotMapping } = input;
      const row = cache.rowSize;
      for (let t = 0; t < slotMapping.length; t++) {
        const slot = slotMapping[t];
        if (slot === -1) continue;
        cache.writeSlot(
          slot,
          keys.subarray(t * row, (t + 1) * row),
          values.subarray(t * row, (t + 1) * row),
        );
      }
    },

    attend(
      cache: ReferenceCache,
      plan: PlannedBatch,
      input: AttendInput,
    ): void {
      const { config } = cache;
      const keys: Float32Array[] = [];
      const values: Float32Array[] = [];
      for (let s = 0; s < plan.numSeqs; s++) {
        const read = readSlots(cache, sequenceSlots(plan, s));
        keys.push(read.keys);
        values.push(read.values);
      }
      const { out } = referenceAttention(config, {
        batch: plan,
        query: input.query,
        keys,
        values,
      });
      input.out.set(out);
    },

    copyBlocks(cache: ReferenceCache, pairs: Int32Array): void {
      for (let i = 0; i < pairs.length; i += 2) {
        cache.copyBlock(pairs[i], pairs[i + 1]);
      }
    },

    readCache(cache: ReferenceCache, slots: Int32Array): CacheReadout {
      return readSlots(cache, slots);
    },

    dispose(): void {},
  };
}

function readSlots(cache: ReferenceCache, slots: Int32Array): CacheReadout {
  const row = cache.rowSize;
  const keys = new Float32Array(slots.length * row);
  const values = new Float32Array(slots.length * row);
  for (let i = 0; i < slots.length; i++) {
    cache.readSlot(
      slots[i],
      keys.subarray(i * row, (i + 1) * row),
      values.subarray(i * row, (i + 1) * row),
    );
  }
  return { keys, values };
}
