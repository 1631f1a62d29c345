/**
 * The fa3 native cache layout, per layer (native/src/fa3/mod.rs says why):
 *
 * - K codes `[numBlocks, numKvHeads, headDim / 2, blockSize, 2]`: for each
 *   pair of dimensions the block's keys side by side, a key's pair
 *   adjacent, so one 32-bit lane holds what `vpdpwssd` multiplies by a
 *   broadcast query pair.
 * - V codes `[numBlocks, numKvHeads, blockSize / 2, headDim, 2]`: for each
 *   pair of tokens every dimension, the two tokens' values adjacent.
 * - int8 per_token_head only: a float32 scale per (block, kv head,
 *   offset), `[numBlocks, numKvHeads, blockSize]`, for K and for V.
 *
 * A (block, kv head) tile is `blockSize * headDim` contiguous codes and a
 * block's tiles are adjacent, so copying a block is one `copyWithin` per
 * array. The arrays live in JavaScript memory; the addon reads and writes
 * them in place.
 *
 * @module
 */

import type { LayerCache } from "../../core/backend.ts";
import { codecFor } from "../../core/codec.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import type { NativeFa3Cache } from "../../native/mod.ts";

/** True when this layer's int8 cache carries a scale per token and head. */
function perTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}

/**
 * Bytes one block takes in this layout, scales included.
 *
 * @example Usage
 * ```ts
 * import { fa3BytesPerBlock } from "./native_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 32, numKvHeads: 8, headDim: 128,
 *   scale: 128 ** -0.5, kvDtype: "int8", int8Scheme: "per_token_head", blockSize: 16,
 * } as const;
 * // K and V codes (1 byte each) plus a float32 scale per (token, head) for each.
 * assert.equal(fa3BytesPerBlock(layer), 2 * 16 * 8 * 128 + 2 * 16 * 8 * 4);
 * ```
 */
export function fa3BytesPerBlock(config: LayerConfig): number {
  const rows = config.blockSize * config.numKvHeads;
  return 2 * rows * config.headDim + (perTokenHead(config) ? 2 * rows * 4 : 0);
}

/** Arrays at least this large are offered huge pages (one 2 MiB page). */
const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

/** Options for the {@linkcode Fa3NativeCache} constructor. */
export interface Fa3CacheOptions {
  /**
   * Called on each code array of at least 2 MiB before anything writes it
   * (the addon's `adviseHugePages`): paged reads jump between blocks, and
   * huge pages keep those jumps from missing the TLB.
   */
  readonly adviseHugePages?: (array: Int8Array | Uint8Array) => unknown;
}

/** One layer's K/V in the fa3 native layout. */
export class Fa3NativeCache implements LayerCache {
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly scales: LayerKvScales;
  /** The object the addon reads on every call (arrays included). */
  readonly native: NativeFa3Cache;

  /**
   * Allocates zeroed codes (and scales) for `numBlocks` blocks of an
   * fp8_e4m3 or int8 layer.
   *
   * @throws {RangeError} When a per-tensor cache gets an invalid scale or
   * zero point (core's codec says which).
   */
  constructor(
    config: LayerConfig,
    numBlocks: number,
    scales: LayerKvScales,
    options: Fa3CacheOptions = {},
  ) {
    this.config = config;
    this.numBlocks = numBlocks;
    this.scales = scales;
    const dtype = config.kvDtype as "fp8_e4m3" | "int8";
    const codec = codecFor(dtype);
    const perRow = perTokenHead(config);
    if (!perRow) {
      // Core's encoders validate scale and zero point with their own messages.
      codec.encode(0, scales.kScale, scales.kZeroPoint);
      codec.encode(0, scales.vScale, scales.vZeroPoint);
    }
    const rows = numBlocks * config.numKvHeads * config.blockSize;
    const codes = () => {
      const array = dtype === "int8"
        ? new Int8Array(rows * config.headDim)
        : new Uint8Array(rows * config.headDim);
      if (array.byteLength >= HUGE_PAGE_BYTES) options.adviseHugePages?.(array);
      return array;
    };
    this.native = Object.freeze({
      dtype,
      numQHeads: config.numQHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      blockSize: config.blockSize,
      numBlocks,
      softmaxScale: config.scale,
      slidingWindow: config.kind === "sliding_window"
        ? config.slidingWindow!
        : 0,
      softCap: config.softCap ?? 0,
      kScale: scales.kScale,
      vScale: scales.vScale,
      kZeroPoint: scales.kZeroPoint,
      vZeroPoint: scales.vZeroPoint,
      keys: codes(),
      values: codes(),
      keyScales: perRow ? new Float32Array(rows) : null,
      valueScales: perRow ? new Float32Array(rows) : null,
    });
  }

  /** Slots in the cache: numBlocks * blockSize. */
  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
  }

  /** Copies block `src` onto block `dst`: codes and scales, every head. */
  copyBlock(src: number, dst: number): void {
    const { blockSize, numKvHeads, headDim } = this.config;
    const rows = blockSize * numKvHeads;
    const n = rows * headDim;
    const { keys, values, keyScales, valueScales } = this.native;
    keys.copyWithin(dst * n, src * n, (src + 1) * n);
    values.copyWithin(dst * n, src * n, (src + 1) * n);
    keyScales?.copyWithin(dst * rows, src * rows, (src + 1) * rows);
    valueScales?.copyWithin(dst * rows, src * rows, (src + 1) * rows);
  }
}
