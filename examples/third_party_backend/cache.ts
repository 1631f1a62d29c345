/**
 * The tiled cache layout: K and V each in their own plane of shape
 * [numBlocks, numKvHeads, blockSize, headDim], so that one (block, kv head)
 * tile of blockSize x headDim codes is contiguous. Attention then
 * dequantizes a whole tile with one codec call and reuses it for every query
 * head of the GQA group. (The reference backend stores
 * [numBlocks, blockSize, numKvHeads, headDim]; the core does not care: it only
 * hands out block ids and slots.)
 *
 * int8 per-token-head scales live beside the codes, one fp32 per
 * (block, kv head, offset), in the same tile order.
 *
 * @module
 */

import {
  type CodeArray,
  type Codec,
  codecFor,
  dequantizeInt8PerTokenHead,
  type LayerCache,
  type LayerConfig,
  type LayerKvScales,
  quantizeInt8PerTokenHead,
} from "../../mod.ts";

/** One layer's K/V in the tiled layout. */
export class TiledCache implements LayerCache {
  readonly config: LayerConfig;
  readonly numBlocks: number;
  /** The scales fixed at createCache; every write and read uses them. */
  readonly scales: LayerKvScales;
  readonly codec: Codec;
  /** K codes, shape [numBlocks, numKvHeads, blockSize, headDim]. */
  readonly keys: CodeArray;
  /** V codes, shape [numBlocks, numKvHeads, blockSize, headDim]. */
  readonly values: CodeArray;
  /** int8 per_token_head only: shape [numBlocks, numKvHeads, blockSize], float32. */
  readonly keyScales?: Float32Array;
  /** int8 per_token_head only: shape [numBlocks, numKvHeads, blockSize], float32. */
  readonly valueScales?: Float32Array;
  /** Set by disposeCache(): the arrays are no longer to be touched. */
  released = false;

  constructor(config: LayerConfig, numBlocks: number, scales: LayerKvScales) {
    this.config = config;
    this.numBlocks = numBlocks;
    this.scales = scales;
    this.codec = codecFor(config.kvDtype);
    const { numKvHeads, blockSize, headDim } = config;
    this.keys = this.codec.allocate(
      numBlocks * numKvHeads * blockSize * headDim,
    );
    this.values = this.codec.allocate(this.keys.length);
    if (config.kvDtype === "int8" && config.int8Scheme === "per_token_head") {
      this.keyScales = new Float32Array(numBlocks * numKvHeads * blockSize);
      this.valueScales = new Float32Array(this.keyScales.length);
    }
  }

  /** Slots in the cache: numBlocks * blockSize. */
  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
  }

  /**
   * Index of the (block, head, offset) row: its scale in the scale planes;
   * times headDim, its first code in the code planes.
   */
  row(block: number, head: number, offset: number): number {
    const { numKvHeads, blockSize } = this.config;
    return (block * numKvHeads + head) * blockSize + offset;
  }

  /**
   * Quantizes one token into a slot, head by head.
   *
   * @param slot block * blockSize + offset, already checked.
   * @param key shape [numKvHeads, headDim], float32
   * @param value shape [numKvHeads, headDim], float32
   */
  writeSlot(slot: number, key: Float32Array, value: Float32Array): void {
    const { numKvHeads, blockSize, headDim } = this.config;
    const block = Math.floor(slot / blockSize), offset = slot % blockSize;
    for (let h = 0; h < numKvHeads; h++) {
      const r = this.row(block, h, offset);
      const src = h * headDim;
      this.#store(this.keys, this.keyScales, r, key, src, "k");
      this.#store(this.values, this.valueScales, r, value, src, "v");
    }
  }

  #store(
    plane: CodeArray,
    scales: Float32Array | undefined,
    r: number,
    data: Float32Array,
    src: number,
    which: "k" | "v",
  ): void {
    const d = this.config.headDim;
    const x = data.subarray(src, src + d);
    const codes = plane.subarray(r * d, (r + 1) * d);
    if (scales) {
      // The core's helper computes scale = fp32(amax / 127) for this
      // (token, head) and stores it beside the codes.
      quantizeInt8PerTokenHead(x, 1, 1, d, {
        codes: codes as Int8Array,
        scales: scales.subarray(r, r + 1),
      });
      return;
    }
    const s = this.scales;
    if (which === "k") {
      this.codec.encodeArray(x, codes, s.kScale, s.kZeroPoint);
    } else {
      this.codec.encodeArray(x, codes, s.vScale, s.vZeroPoint);
    }
  }

  /**
   * Dequantizes rows `first..first+count-1` of one (block, head) tile.
   *
   * @param dst shape [>= count, headDim], float32
   */
  readTile(
    which: "k" | "v",
    block: number,
    head: number,
    first: number,
    count: number,
    dst: Float32Array,
  ): void {
    const d = this.config.headDim;
    const r = this.row(block, head, first);
    const plane = which === "k" ? this.keys : this.values;
    const codes = plane.subarray(r * d, (r + count) * d);
    const scales = which === "k" ? this.keyScales : this.valueScales;
    if (scales) {
      const rowScales = scales.subarray(r, r + count);
      dequantizeInt8PerTokenHead(
        codes as Int8Array,
        rowScales,
        count,
        1,
        d,
        dst,
      );
      return;
    }
    const s = this.scales;
    if (which === "k") {
      this.codec.decodeArray(codes, dst, s.kScale, s.kZeroPoint);
    } else {
      this.codec.decodeArray(codes, dst, s.vScale, s.vZeroPoint);
    }
  }

  /** Copies block src onto block dst: one contiguous range per plane. */
  copyBlock(src: number, dst: number): void {
    const { numKvHeads, blockSize, headDim } = this.config;
    const rows = numKvHeads * blockSize;
    for (const plane of [this.keys, this.values]) {
      plane.copyWithin(
        dst * rows * headDim,
        src * rows * headDim,
        (src + 1) * rows * headDim,
      );
    }
    for (const scales of [this.keyScales, this.valueScales]) {
      scales?.copyWithin(dst * rows, src * rows, (src + 1) * rows);
    }
  }
}

/**
 * Bytes one block takes in this layout: K and V codes, plus the fp32
 * per-token-head scales when the layer has them.
 *
 * @example Usage
 * ```ts
 * import { tiledBytesPerBlock } from "./cache.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 8, numKvHeads: 2, headDim: 128,
 *   scale: 128 ** -0.5, kvDtype: "fp8_e4m3", blockSize: 16,
 * } as const;
 * assert.equal(tiledBytesPerBlock(layer), 2 * 16 * 2 * 128); // 1 byte a code
 * ```
 */
export function tiledBytesPerBlock(config: LayerConfig): number {
  const { numKvHeads, blockSize, headDim } = config;
  const codes = 2 * numKvHeads * blockSize * headDim *
    codecFor(config.kvDtype).bytes;
  const perTokenHead = config.kvDtype === "int8" &&
    config.int8Scheme === "per_token_head";
  return codes + (perTokenHead ? 2 * numKvHeads * blockSize * 4 : 0);
}
