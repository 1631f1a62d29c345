/**
 * The xformers backend on the native target: the contract implemented over
 * the addon's xformers kernels (native/src/xformers/). This file checks
 * arguments with the reference backend's messages, then hands the typed
 * arrays to the addon in place; the layout is in native_cache.ts.
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
import { guardBackend } from "../../core/backend_guard.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import type { LayerConfig } from "../../core/layer.ts";
import {
  KERNEL_PATHS,
  type KernelPathName,
  type NativeAddon,
} from "../../native/mod.ts";
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";
import { xformersBytesPerBlock, XformersNativeCache } from "./native_cache.ts";

/** The version of the native xformers kernels. */
export const XFORMERS_NATIVE_VERSION = "0.1.0";

/** Options for {@linkcode createXformersNativeBackend}. */
export interface XformersNativeOptions {
  /**
   * Run this kernel path instead of the one `KVPLUG_NATIVE_PATH` (or the
   * CPU) picks; downgrades only, like the variable. Tests use it to cover
   * every path without touching the process environment.
   *
   * @default undefined (the variable, else the best path)
   */
  readonly kernelPath?: KernelPathName;
}

/** The native xformers backend: synchronous, so members return plain values. */
export interface XformersNativeBackend
  extends AttentionBackend<XformersNativeCache> {
  /** The kernel path the last attend() ran, or undefined before any. */
  readonly lastKernelPath: KernelPathName | undefined;
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): XformersNativeCache;
  write(cache: XformersNativeCache, input: WriteInput): void;
  attend(
    cache: XformersNativeCache,
    plan: PlannedBatch,
    input: AttendInput,
  ): void;
  copyBlocks(cache: XformersNativeCache, pairs: Int32Array): void;
  readCache(cache: XformersNativeCache, slots: Int32Array): CacheReadout;
  dispose(): void;
}

/**
 * Creates a native xformers backend over a loaded addon.
 *
 * @example Usage
 * ```ts
 * import { createXformersNativeBackend } from "./native_backend.ts";
 * import { loadNativeAddon, probeNativeAddon } from "../../native/mod.ts";
 * import { planBatch } from "../../core/batch.ts";
 * import assert from "node:assert/strict";
 *
 * if (probeNativeAddon().available && "xformersAttend" in loadNativeAddon()) {
 *   const backend = createXformersNativeBackend(loadNativeAddon());
 *   const layer = {
 *     index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 8,
 *     scale: 1, kvDtype: "fp16", blockSize: 16,
 *   } as const;
 *   const cache = backend.createCache(layer, {
 *     numBlocks: 1, scales: { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 },
 *   });
 *   backend.write(cache, {
 *     keys: new Float32Array(8), values: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8),
 *     slotMapping: Int32Array.of(0),
 *   });
 *   const plan = planBatch({
 *     queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *     blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 *   });
 *   const out = new Float32Array(8);
 *   backend.attend(cache, plan, { query: new Float32Array(8).fill(1), out });
 *   assert.deepEqual([...out], [1, 2, 3, 4, 5, 6, 7, 8]); // one key: its value
 * }
 * ```
 */
export function createXformersNativeBackend(
  addon: NativeAddon,
  options: XformersNativeOptions = {},
): XformersNativeBackend {
  const kernelPath = options.kernelPath ?? null;
  if (kernelPath !== null && !KERNEL_PATHS.includes(kernelPath)) {
    throw new RangeError(
      `kernelPath "${kernelPath}" is not a kernel path: use one of ${
        KERNEL_PATHS.join(", ")
      }`,
    );
  }
  let lastKernelPath: KernelPathName | undefined;
  // The core guard owns the disposal, support, cache-provenance and
  // argument checks (core/backend_guard.ts); the members below only run.
  return guardBackend<XformersNativeBackend>({
    name: "xformers",
    target: "native",
    version: XFORMERS_NATIVE_VERSION,
    capabilities: XFORMERS_CAPABILITIES,

    get lastKernelPath() {
      return lastKernelPath;
    },

    cacheBytesPerBlock: xformersBytesPerBlock,

    createCache(config: LayerConfig, options: CreateCacheOptions) {
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      return new XformersNativeCache(
        config,
        options.numBlocks,
        options.scales,
        { adviseHugePages: (array) => addon.adviseHugePages(array) },
      );
    },

    write(cache: XformersNativeCache, input: WriteInput): void {
      const { keys, values, slotMapping } = input;
      addon.xformersWrite(cache.native, keys, values, slotMapping);
    },

    attend(
      cache: XformersNativeCache,
      plan: PlannedBatch,
      input: AttendInput,
    ): void {
      lastKernelPath = addon.xformersAttend(
        cache.native,
        plan,
        input.query,
        input.out,
        kernelPath,
      );
    },

    copyBlocks(cache: XformersNativeCache, pairs: Int32Array): void {
      for (let i = 0; i < pairs.length; i += 2) {
        cache.copyBlock(pairs[i], pairs[i + 1]);
      }
    },

    readCache(cache: XformersNativeCache, slots: Int32Array): CacheReadout {
      const n = slots.length * cache.config.numKvHeads * cache.config.headDim;
      const keys = new Float32Array(n);
      const values = new Float32Array(n);
      addon.xformersRead(cache.native, slots, keys, values);
      return { keys, values };
    },

    dispose(): void {},
  }, {});
}
