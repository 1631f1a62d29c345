/**
 * The flashinfer backend on the native target, FlashInfer's plan/run shape
 * over the addon's kernels (native/src/flashinfer/): plan() builds the page
 * tables and the split-KV partition once per batch (native_plan.ts); every
 * layer's attend() checks the plan came from this instance and hands it,
 * with the cache's arrays, to the addon in place (no copies). Writes
 * quantize on write, bit-exact with core's codecs.
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
import { ForeignHandleError } from "../../core/backend_errors.ts";
import { guardBackend } from "../../core/backend_guard.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import {
  KERNEL_PATHS,
  type KernelPathName,
  type NativeAddon,
} from "../../native/mod.ts";
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import {
  flashinferNativeBytesPerBlock,
  FlashinferNativeCache,
} from "./native_cache.ts";
import { type FlashinferNativePlan, planNative } from "./native_plan.ts";

/** The version of the native flashinfer kernels. */
export const FLASHINFER_NATIVE_VERSION = "0.1.0";

const NAME = "flashinfer";

/** Options for {@linkcode createFlashinferNativeBackend}. */
export interface FlashinferNativeOptions {
  /**
   * Run this kernel path instead of the one `KVPLUG_NATIVE_PATH` (or the
   * CPU) picks; downgrades only, like the variable.
   *
   * @default undefined (the variable, else the best path)
   */
  readonly kernelPath?: KernelPathName;
  /**
   * Longest split-KV chunk, in keys (tests shrink it to merge many chunks
   * on short sequences). @default Infinity
   */
  readonly maxChunkKeys?: number;
}

/** The native flashinfer backend: synchronous, so members return plain values. */
export interface FlashinferNativeBackend
  extends AttentionBackend<FlashinferNativeCache, FlashinferNativePlan> {
  /** The kernel path the last attend() ran, or undefined before any. */
  readonly lastKernelPath: KernelPathName | undefined;
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): FlashinferNativeCache;
  write(cache: FlashinferNativeCache, input: WriteInput): void;
  plan(batch: PlannedBatch): FlashinferNativePlan;
  attend(
    cache: FlashinferNativeCache,
    plan: FlashinferNativePlan,
    input: AttendInput,
  ): void;
  copyBlocks(cache: FlashinferNativeCache, pairs: Int32Array): void;
  readCache(cache: FlashinferNativeCache, slots: Int32Array): CacheReadout;
  dispose(): void;
}

/**
 * Creates a native flashinfer backend over a loaded addon.
 *
 * @example Usage
 * ```ts
 * import { createFlashinferNativeBackend } from "./native_backend.ts";
 * import { loadNativeAddon, probeNativeAddon } from "../../native/mod.ts";
 * import { planBatch } from "../../core/batch.ts";
 * import assert from "node:assert/strict";
 *
 * if (probeNativeAddon().available && "flashinferRun" in loadNativeAddon()) {
 *   const backend = createFlashinferNativeBackend(loadNativeAddon());
 *   const layer = {
 *     index: 0, kind: "full", numQHeads: 2, numKvHeads: 1, headDim: 64,
 *     scale: 1, kvDtype: "fp16", blockSize: 16,
 *   } as const;
 *   const cache = backend.createCache(layer, {
 *     numBlocks: 1, scales: { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 },
 *   });
 *   const values = Float32Array.from({ length: 64 }, (_, i) => i);
 *   backend.write(cache, {
 *     keys: new Float32Array(64), values, slotMapping: Int32Array.of(0),
 *   });
 *   const plan = backend.plan(planBatch({
 *     queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *     blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 *   }));
 *   const out = new Float32Array(128);
 *   backend.attend(cache, plan, { query: new Float32Array(128).fill(1), out });
 *   assert.deepEqual([...out.subarray(64)], [...values]); // one key: its value
 * }
 * ```
 */
export function createFlashinferNativeBackend(
  addon: NativeAddon,
  options: FlashinferNativeOptions = {},
): FlashinferNativeBackend {
  const kernelPath = options.kernelPath ?? null;
  if (kernelPath !== null && !KERNEL_PATHS.includes(kernelPath)) {
    throw new RangeError(
      `kernelPath "${kernelPath}" is not a kernel path: use one of ${
        KERNEL_PATHS.join(", ")
      }`,
    );
  }
  const threads = addon.poolThreads();
  const plans = new WeakSet<FlashinferNativePlan>();
  let lastKernelPath: KernelPathName | undefined;
  // The core guard owns the disposal, support, cache-provenance and
  // argument checks (core/backend_guard.ts); plan provenance is ours.
  return guardBackend<FlashinferNativeBackend>({
    name: NAME,
    target: "native",
    version: FLASHINFER_NATIVE_VERSION,
    capabilities: FLASHINFER_CAPABILITIES,

    get lastKernelPath() {
      return lastKernelPath;
    },

    cacheBytesPerBlock(config: LayerConfig) {
      return flashinferNativeBytesPerBlock(config);
    },

    createCache(config: LayerConfig, options: CreateCacheOptions) {
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      return new FlashinferNativeCache(
        config,
        options.numBlocks,
        options.scales,
        (array) => addon.adviseHugePages(array),
      );
    },

    write(cache: FlashinferNativeCache, input: WriteInput): void {
      const { keys, values, slotMapping } = input;
      addon.flashinferWrite(cache.native, keys, values, slotMapping);
    },

    plan(batch: PlannedBatch): FlashinferNativePlan {
      const plan = planNative(batch, {
        threads,
        maxChunkKeys: options.maxChunkKeys,
      });
      plans.add(plan);
      return plan;
    },

    attend(
      cache: FlashinferNativeCache,
      plan: FlashinferNativePlan,
      input: AttendInput,
    ): void {
      if (!plans.has(plan)) {
        throw new ForeignHandleError(
          `The plan passed to ${NAME} attend() was not made by this backend instance: call plan(batch) on the instance that attends, once per batch, and pass its result to every layer`,
          { backend: NAME, target: "native", layer: cache.config.index },
        );
      }
      lastKernelPath = addon.flashinferRun(
        cache.native,
        plan,
        input.query,
        input.out,
        kernelPath,
      );
    },

    copyBlocks(cache: FlashinferNativeCache, pairs: Int32Array): void {
      for (let i = 0; i < pairs.length; i += 2) {
        cache.copyBlock(pairs[i], pairs[i + 1]);
      }
    },

    readCache(cache: FlashinferNativeCache, slots: Int32Array): CacheReadout {
      const n = slots.length * cache.config.numKvHeads * cache.config.headDim;
      const keys = new Float32Array(n);
      const values = new Float32Array(n);
      addon.flashinferRead(cache.native, slots, keys, values);
      return { keys, values };
    },

    dispose(): void {},
  }, {});
}
