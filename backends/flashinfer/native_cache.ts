/**
 * The flashinfer native cache layout, per layer (FlashInfer's HND, page =
 * block):
 *
 * - K pages and V pages, each `[numPages, numKvHeads, pageSize, headDim]`:
 *   a row per token, head-major inside a page, so one (page, kv head) is
 *   contiguous and a page's heads are adjacent (a decode chunk reads a page
 *   for all its heads in one sweep).
 * - int8 per_token_head only: a float32 scale per (page, kv head, offset),
 *   `[numPages, numKvHeads, pageSize]`, for K and for V.
 *
 * The arrays live in JavaScript memory; the addon reads and writes them in
 * place on each call (no copies), so a cache needs no native release.
 *
 * @module
 */

import type { LayerCache } from "../../core/backend.ts";
import { type CodeArray, codecFor } from "../../core/codec.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import type { NativeFlashinferCache } from "../../native/mod.ts";

/** True when this layer's int8 cache carries a scale per token and head. */
export function perTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}

/**
 * Bytes one page takes in this layout, scales included.
 *
 * @example Usage
 * ```ts
 * import { flashinferNativeBytesPerBlock } from "./native_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 32, numKvHeads: 8, headDim: 128,
 *   scale: 128 ** -0.5, kvDtype: "fp8_e4m3", blockSize: 16,
 * } as const;
 * assert.equal(flashinferNativeBytesPerBlock(layer), 2 * 16 * 8 * 128);
 * ```
 */
export function flashinferNativeBytesPerBlock(config: LayerConfig): number {
  const rows = config.blockSize * config.numKvHeads;
  const codes = 2 * rows * config.headDim * dtypeInfo(config.kvDtype).bytes;
  return codes + (perTokenHead(config) ? 2 * rows * 4 : 0);
}

/** Arrays at least this large are offered huge pages (one 2 MiB page). */
const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

/** One layer's K/V in the flashinfer native layout. */
export class FlashinferNativeCache implements LayerCache {
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly scales: LayerKvScales;
  /** The object the addon reads on every call (arrays included). */
  readonly native: NativeFlashinferCache;

  /**
   * Allocates zeroed codes (and scales) for `numBlocks` pages.
   *
   * @throws {RangeError} When an 8-bit cache gets an invalid scale or zero
   * point (core's codec says which).
   */
  constructor(
    config: LayerConfig,
    numBlocks: number,
    scales: LayerKvScales,
    adviseHugePages?: (array: CodeArray) => unknown,
  ) {
    this.config = config;
    this.numBlocks = numBlocks;
    this.scales = scales;
    const codec = codecFor(config.kvDtype);
    const perRow = perTokenHead(config);
    if (dtypeInfo(config.kvDtype).quantized && !perRow) {
      // Core's encoders validate scale and zero point with their own messages.
      codec.encode(0, scales.kScale, scales.kZeroPoint);
      codec.encode(0, scales.vScale, scales.vZeroPoint);
    }
    const rows = numBlocks * config.numKvHeads * config.blockSize;
    const allocate = (): CodeArray => {
      const codes = codec.allocate(rows * config.headDim);
      if (codes.byteLength >= HUGE_PAGE_BYTES) adviseHugePages?.(codes);
      return codes;
    };
    this.native = Object.freeze({
      dtype: config.kvDtype,
      numQHeads: config.numQHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      pageSize: config.blockSize,
      numPages: numBlocks,
      softmaxScale: config.scale,
      slidingWindow: config.kind === "sliding_window"
        ? config.slidingWindow!
        : 0,
      softCap: config.softCap ?? 0,
      kScale: scales.kScale,
      vScale: scales.vScale,
      kZeroPoint: scales.kZeroPoint,
      vZeroPoint: scales.vZeroPoint,
      keys: allocate(),
      values: allocate(),
      keyScales: perRow ? new Float32Array(rows) : null,
      valueScales: perRow ? new Float32Array(rows) : null,
    });
  }

  /** Slots in the cache: numPages * pageSize. */
  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
  }

  /** Copies page `src` onto page `dst`: codes and scales, every head. */
  copyBlock(src: number, dst: number): void {
    const rows = this.config.blockSize * this.config.numKvHeads;
    const n = rows * this.config.headDim;
    const { keys, values, keyScales, valueScales } = this.native;
    keys.copyWithin(dst * n, src * n, (src + 1) * n);
    values.copyWithin(dst * n, src * n, (src + 1) * n);
    keyScales?.copyWithin(dst * rows, src * rows, (src + 1) * rows);
    valueScales?.copyWithin(dst * rows, src * rows, (src + 1) * rows);
  }
}
