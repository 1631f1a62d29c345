/**
 * The reference backend's cache layout: the simplest one that stores real
 * codes. Per layer, K and V codes as [numBlocks, blockSize, numKvHeads,
 * headDim], plus, for int8 per-token-head scaling, one scale per
 * (slot, kv head) beside the codes.
 *
 * @module
 */

import { type CodeArray, type Codec, codecFor } from "../../core/codec.ts";
import {
  dequantizeInt8PerTokenHead,
  quantizeInt8PerTokenHead,
} from "../../core/int8.ts";
import type { LayerCache } from "../../core/backend.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";

/** One layer's K/V in the reference layout. */
export class ReferenceCache implements LayerCache {
  /** The layer this cache serves, with its kvDtype and blockSize. */
  readonly config: LayerConfig;
  /** Blocks allocated; valid block ids are 0..numBlocks-1. */
  readonly numBlocks: number;
  /** Per-tensor scales and zero points (unused by per-token-head int8). */
  readonly scales: LayerKvScales;
  /** Encodes and decodes config.kvDtype. */
  readonly codec: Codec;
  /** Elements per slot: numKvHeads * headDim. */
  readonly rowSize: number;
  /** Key codes, shape [numBlocks, blockSize, numKvHeads, headDim], in the codec's array type. */
  readonly keys: CodeArray;
  /** Value codes, laid out like keys. */
  readonly values: CodeArray;
  /** Per-token-head int8 scales, shape [numSlots, numKvHeads]; absent otherwise. */
  readonly keyScales?: Float32Array;
  /** Per-token-head int8 value scales, laid out like keyScales; absent otherwise. */
  readonly valueScales?: Float32Array;

  /** Allocates zeroed codes for numBlocks blocks (and scales, for per-token-head int8). */
  constructor(config: LayerConfig, numBlocks: number, scales: LayerKvScales) {
    this.config = config;
    this.numBlocks = numBlocks;
    this.scales = scales;
    this.codec = codecFor(config.kvDtype);
    this.rowSize = config.numKvHeads * config.headDim;
    const numSlots = numBlocks * config.blockSize;
    this.keys = this.codec.allocate(numSlots * this.rowSize);
    this.values = this.codec.allocate(numSlots * this.rowSize);
    if (perTokenHead(config)) {
      this.keyScales = new Float32Array(numSlots * config.numKvHeads);
      this.valueScales = new Float32Array(numSlots * config.numKvHeads);
    }
  }

  /** Token slots in the cache: numBlocks * blockSize. */
  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
  }

  /** Quantizes one token's K and V rows into a slot. */
  writeSlot(slot: number, key: Float32Array, value: Float32Array): void {
    const at = slot * this.rowSize;
    const { numKvHeads, headDim } = this.config;
    if (this.keyScales && this.valueScales) {
      const h = slot * numKvHeads;
      quantizeInt8PerTokenHead(key, 1, numKvHeads, headDim, {
        codes: this.keys.subarray(at, at + this.rowSize) as Int8Array,
        scales: this.keyScales.subarray(h, h + numKvHeads),
      });
      quantizeInt8PerTokenHead(value, 1, numKvHeads, headDim, {
        codes: this.values.subarray(at, at + this.rowSize) as Int8Array,
        scales: this.valueScales.subarray(h, h + numKvHeads),
      });
      return;
    }
    const s = this.scales;
    this.codec.encodeArray(
      key,
      this.keys.subarray(at, at + this.rowSize),
      s.kScale,
      s.kZeroPoint,
    );
    this.codec.encodeArray(
      value,
      this.values.subarray(at, at + this.rowSize),
      s.vScale,
      s.vZeroPoint,
    );
  }

  /** Dequantizes one slot's K and V rows into the given outputs. */
  readSlot(slot: number, key: Float32Array, value: Float32Array): void {
    const at = slot * this.rowSize;
    const { numKvHeads, headDim } = this.config;
    if (this.keyScales && this.valueScales) {
      const h = slot * numKvHeads;
      dequantizeInt8PerTokenHead(
        this.keys.subarray(at, at + this.rowSize) as Int8Array,
        this.keyScales.subarray(h, h + numKvHeads),
        1,
        numKvHeads,
        headDim,
        key,
      );
      dequantizeInt8PerTokenHead(
        this.values.subarray(at, at + this.rowSize) as Int8Array,
        this.valueScales.subarray(h, h + numKvHeads),
        1,
        numKvHeads,
        headDim,
        value,
      );
      return;
    }
    const s = this.scales;
    this.codec.decodeArray(
      this.keys.subarray(at, at + this.rowSize),
      key,
      s.kScale,
      s.kZeroPoint,
    );
    this.codec.decodeArray(
      this.values.subarray(at, at + this.rowSize),
      value,
      s.vScale,
      s.vZeroPoint,
    );
  }

  /** Copies every slot of block src onto block dst. */
  copyBlock(src: number, dst: number): void {
    const { blockSize, numKvHeads } = this.config;
    const n = blockSize * this.rowSize;
    this.keys.copyWithin(dst * n, src * n, (src + 1) * n);
    this.values.copyWithin(dst * n, src * n, (src + 1) * n);
    const m = blockSize * numKvHeads;
    this.keyScales?.copyWithin(dst * m, src * m, (src + 1) * m);
    this.valueScales?.copyWithin(dst * m, src * m, (src + 1) * m);
  }
}

/** True when this layer's int8 cache carries a scale per token and head. */
export function perTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}
