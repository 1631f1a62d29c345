/**
 * The fa3 backend on the native target: the contract over the addon's fa3
 * kernels (native/src/fa3/). Q is quantized per head, QK^T and PV run on
 * 8-bit values, and two-level accumulation (`accumulationPromotion`, on by
 * default) promotes block partials to fp32; off, O and l stay in bf16 for
 * the whole sequence. This file checks arguments, then hands the typed
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
import type { PlannedBatch } from "../../core/batch.ts";
import type { BackendCapabilities } from "../../core/capabilities.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { KernelPathName, NativeAddon } from "../../native/mod.ts";
import { resolveSettings } from "../../core/settings.ts";
import { guardBackend } from "../../core/backend_guard.ts";
import { FA3_SETTINGS, type Fa3NativeSettings } from "./settings.ts";
import { fa3BytesPerBlock, Fa3NativeCache } from "./native_cache.ts";

/** The version of the native fa3 kernels. */
export const FA3_NATIVE_VERSION = "0.1.0";

/** Options for {@linkcode createFa3NativeBackend}: the native settings of FA3_SETTINGS (settings.ts). */
export interface Fa3NativeOptions {
  /**
   * Two-level accumulation: each block's 8-bit partial sums are promoted
   * into fp32 O and l every `promoteEveryBlocks` blocks. false keeps O and
   * l in a bf16 accumulator for the whole sequence (the long-context
   * precision loss, kept to show and test it).
   *
   * @default true
   */
  readonly accumulationPromotion?: boolean;
  /** Blocks a partial spans before promotion, 1 to 4. @default 2 */
  readonly promoteEveryBlocks?: number;
  /** Run this kernel path (downgrades only, as `KVPLUG_NATIVE_PATH`). @default "auto" */
  readonly kernelPath?: "auto" | KernelPathName;
}

/** The native fa3 backend: synchronous, so members return plain values. */
export interface Fa3NativeBackend extends AttentionBackend<Fa3NativeCache> {
  /** The kernel path the last attend() ran, or undefined before any. */
  readonly lastKernelPath: KernelPathName | undefined;
  createCache(config: LayerConfig, options: CreateCacheOptions): Fa3NativeCache;
  write(cache: Fa3NativeCache, input: WriteInput): void;
  attend(cache: Fa3NativeCache, plan: PlannedBatch, input: AttendInput): void;
  copyBlocks(cache: Fa3NativeCache, pairs: Int32Array): void;
  readCache(cache: Fa3NativeCache, slots: Int32Array): CacheReadout;
  dispose(): void;
}

/**
 * Creates a native fa3 backend over a loaded addon.
 *
 * @example Usage
 * ```ts
 * import { createFa3NativeBackend } from "./native_backend.ts";
 * import { FA3_CAPABILITIES } from "./capabilities.ts";
 * import { loadNativeAddon, probeNativeAddon } from "../../native/mod.ts";
 * import { planBatch } from "../../core/batch.ts";
 * import assert from "node:assert/strict";
 *
 * if (probeNativeAddon().available && "fa3Attend" in loadNativeAddon()) {
 *   const backend = createFa3NativeBackend(loadNativeAddon(), FA3_CAPABILITIES);
 *   const layer = {
 *     index: 0, kind: "full", numQHeads: 1, numKvHeads: 1, headDim: 64,
 *     scale: 0.125, kvDtype: "int8", int8Scheme: "per_tensor", blockSize: 16,
 *   } as const;
 *   const cache = backend.createCache(layer, {
 *     numBlocks: 1, scales: { kScale: 1, vScale: 1, kZeroPoint: 0, vZeroPoint: 0 },
 *   });
 *   const value = Float32Array.from({ length: 64 }, (_, i) => i % 5);
 *   backend.write(cache, { keys: new Float32Array(64), values: value, slotMapping: Int32Array.of(0) });
 *   const plan = planBatch({
 *     queryStartLoc: Int32Array.of(0, 1), seqLens: Int32Array.of(1),
 *     blockTables: Int32Array.of(0), maxBlocksPerSeq: 1, blockSize: 16,
 *   });
 *   const out = new Float32Array(64);
 *   backend.attend(cache, plan, { query: new Float32Array(64).fill(1), out });
 *   assert.deepEqual([...out], [...value]); // one key: its value, exactly
 * }
 * ```
 */
export function createFa3NativeBackend(
  addon: NativeAddon,
  capabilities: BackendCapabilities,
  options: Fa3NativeOptions = {},
): Fa3NativeBackend {
  // The same schema check the definition's create() applies, so a direct
  // call cannot take a value the definition would refuse.
  const resolved = resolveSettings(
    { name: "fa3", settings: FA3_SETTINGS },
    "native",
    { ...options },
  ) as unknown as Fa3NativeSettings;
  const kernelPath = resolved.kernelPath === "auto"
    ? null
    : resolved.kernelPath;
  const settings = {
    promotion: resolved.accumulationPromotion ? 1 : 0,
    promoteEveryBlocks: resolved.promoteEveryBlocks,
  } as const;
  let lastKernelPath: KernelPathName | undefined;
  // The core guard owns the disposal, support, cache-provenance and
  // argument checks (core/backend_guard.ts); the members below only run.
  return guardBackend<Fa3NativeBackend>({
    name: "fa3",
    target: "native",
    version: FA3_NATIVE_VERSION,
    capabilities,

    get lastKernelPath() {
      return lastKernelPath;
    },

    cacheBytesPerBlock: fa3BytesPerBlock,

    createCache(config: LayerConfig, options: CreateCacheOptions) {
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      return new Fa3NativeCache(config, options.numBlocks, options.scales, {
        adviseHugePages: (array) => addon.adviseHugePages(array),
      });
    },

    write(cache: Fa3NativeCache, input: WriteInput): void {
      addon.fa3Write!(
        cache.native,
        input.keys,
        input.values,
        input.slotMapping,
      );
    },

    attend(cache: Fa3NativeCache, plan: PlannedBatch, input: AttendInput) {
      lastKernelPath = addon.fa3Attend!(
        cache.native,
        plan,
        input.query,
        input.out,
        kernelPath,
        settings,
      );
    },

    copyBlocks(cache: Fa3NativeCache, pairs: Int32Array): void {
      for (let i = 0; i < pairs.length; i += 2) {
        cache.copyBlock(pairs[i], pairs[i + 1]);
      }
    },

    readCache(cache: Fa3NativeCache, slots: Int32Array): CacheReadout {
      const n = slots.length * cache.config.numKvHeads * cache.config.headDim;
      const keys = new Float32Array(n);
      const values = new Float32Array(n);
      addon.fa3Read!(cache.native, slots, keys, values);
      return { keys, values };
    },

    dispose(): void {},
  }, {});
}
