/**
 * The xformers native cache layout, per layer:
 *
 * - K codes `[numBlocks, numKvHeads, headDim, blockSize]`: each (block, kv
 *   head) tile transposed, the keys of one dimension side by side, so the
 *   kernel computes a whole tile's q·k without horizontal sums (vLLM
 *   transposes its K blocks for the same reason).
 * - V codes `[numBlocks, numKvHeads, blockSize, headDim]`: a row per token.
 * - int8 per_token_head only: a float32 scale per (block, kv head, offset),
 *   `[numBlocks, numKvHeads, blockSize]`, for K and for V.
 *
 * A (block, kv head) tile, the unit a kernel reads, is `blockSize *
 * headDim` contiguous codes, and a block's tiles for all kv heads are
 * adjacent, so copying a block is one `copyWithin` per array.
 *
 * The arrays live in JavaScript memory; the addon reads and writes them in
 * place on each call, so a cache needs no native release. On Linux large
 * arrays ask for transparent huge pages (see {@linkcode XformersCacheOptions}).
 *
 * @module
 */

import type { LayerCache } from "../../core/backend.ts";
import { type CodeArray, codecFor } from "../../core/codec.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import type { NativeXformersCache } from "../../native/mod.ts";

/** True when this layer's int8 cache carries a scale per token and head. */
export function perTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}

/**
 * Bytes one block takes in this layout, scales included.
 *
 * @example Usage
 * ```ts
 * import { xformersBytesPerBlock } from "./native_cache.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 32, numKvHeads: 8, headDim: 128,
 *   scale: 128 ** -0.5, kvDtype: "int8", int8Scheme: "per_token_head", blockSize: 16,
 * } as const;
 * // K and V codes (1 byte each) plus a float32 scale per (token, head) for each.
 * assert.equal(xformersBytesPerBlock(layer), 2 * 16 * 8 * 128 + 2 * 16 * 8 * 4);
 * ```
 */
export function xformersBytesPerBlock(config: LayerConfig): number {
  const rows = config.blockSize * config.numKvHeads;
  const codes = 2 * rows * config.headDim * dtypeInfo(config.kvDtype).bytes;
  return codes + (perTokenHead(config) ? 2 * rows * 4 : 0);
}

/** Arrays at least this large are offered huge pages (one 2 MiB page). */
const HUGE_PAGE_BYTES = 2 * 1024 * 1024;

/** Options for the {@linkcode XformersNativeCache} constructor. */
export interface XformersCacheOptions {
  /**
   * Called on each new code array of at least 2 MiB before anything writes
   * it (the addon's `adviseHugePages`): paged reads jump between blocks,
   * and huge pages keep those jumps from missing the TLB.
   */
  readonly adviseHugePages?: (array: CodeArray) => unknown;
}

/** One layer's K/V in the xformers native layout. */
export class XformersNativeCache implements LayerCache {
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly scales: LayerKvScales;
  /** The object the addon reads on every call (arrays included). */
  readonly native: NativeXformersCache;

  /**
   * Allocates zeroed codes (and scales) for `numBlocks` blocks.
   *
   * @throws {RangeError} When an 8-bit cache gets an invalid scale or zero
   * point (core's codec says which).
   */
  constructor(
    config: LayerConfig,
    numBlocks: number,
    scales: LayerKvScales,
    options: XformersCacheOptions = {},
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
      if (codes.byteLength >= HUGE_PAGE_BYTES) {
        options.adviseHugePages?.(codes);
      }
      return codes;
    };
    this.native = Object.freeze({
      dtype: config.kvDtype,
      numQHeads: config.numQHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      blockSize: config.blockSize,
      numBlocks,
      softmaxScale: config.scale,
      slidingWindow: config.kind === "sliding_window"
        ? config.slidingWindow!
        : 0,
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
