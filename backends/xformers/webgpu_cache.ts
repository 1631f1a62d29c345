/**
 * The xformers WebGPU cache layout, per layer:
 *
 * - K codes and V codes, one GPU buffer each, shape [numBlocks, numKvHeads,
 *   blockSize, headDim] in the dtype's width (fp32 4, fp16/bf16 2, fp8/int8
 *   1 byte), packed little-endian into u32 words. Head-major inside a block,
 *   so one (block, kv head) is contiguous: a decode workgroup walks it in
 *   order. A row (headDim elements, a multiple of 8) is whole words.
 * - int8 per_token_head only: a scale per (slot, kv head) as fp32, shape
 *   [2, numBlocks, numKvHeads, blockSize] (K, then V) in one buffer; other
 *   dtypes bind a 16-byte placeholder there.
 *
 * Layer scales (k/v scale, zero point) are not stored on the GPU: they are
 * uniform data handed to each dispatch.
 *
 * @module
 */

import { ForeignHandleError } from "../../core/backend_errors.ts";
import { webGpuBackendError } from "../../webgpu/device_attention.ts";
import type { LayerCache } from "../../core/backend.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import { isPerTokenHead, type XformersPipelines } from "./webgpu_kernels.ts";

/** Bytes of one block in this layout, scales included (K and V together). */
export function webGpuBytesPerBlock(config: LayerConfig): number {
  const row = config.numKvHeads * config.headDim;
  const codes = 2 * config.blockSize * row * dtypeInfo(config.kvDtype).bytes;
  const scales = isPerTokenHead(config)
    ? 2 * config.blockSize * config.numKvHeads * 4
    : 0;
  return codes + scales;
}

/** One layer's K/V on the GPU, in the layout of the module doc. */
export class WebGpuCache implements LayerCache {
  /** Who the typed errors of this cache's checks name. */
  readonly backend = { name: "xformers", target: "webgpu" } as const;
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly scales: LayerKvScales;
  readonly device: GPUDevice;
  readonly pipelines: XformersPipelines;
  readonly perTokenHead: boolean;
  /** u32 words per (slot, kv head) row. */
  readonly wordsPerRow: number;
  /** Bytes of one block of K (or of V). */
  readonly blockBytes: number;
  /** Bytes of one block of K scales (or of V scales); 0 without them. */
  readonly blockScaleBytes: number;
  readonly kCodes: GPUBuffer;
  readonly vCodes: GPUBuffer;
  /** [2, numBlocks, numKvHeads, blockSize] fp32, or a placeholder. */
  readonly tokenScales: GPUBuffer;
  #destroyed = false;
  #pending: Promise<string | null>[] = [];

  constructor(
    device: GPUDevice,
    pipelines: XformersPipelines,
    config: LayerConfig,
    numBlocks: number,
    scales: LayerKvScales,
  ) {
    this.device = device;
    this.pipelines = pipelines;
    this.config = config;
    this.numBlocks = numBlocks;
    this.scales = scales;
    this.perTokenHead = isPerTokenHead(config);
    const bytes = dtypeInfo(config.kvDtype).bytes;
    this.wordsPerRow = config.headDim * bytes / 4;
    this.blockBytes = config.numKvHeads * config.blockSize * config.headDim *
      bytes;
    this.blockScaleBytes = this.perTokenHead
      ? config.numKvHeads * config.blockSize * 4
      : 0;
    const size = numBlocks * this.blockBytes;
    const limit = device.limits.maxStorageBufferBindingSize;
    if (size > limit) {
      throw new RangeError(
        `Layer ${config.index}'s K cache needs ${size} bytes for ${numBlocks} blocks but this WebGPU device binds at most ${limit} bytes per buffer: use at most ${
          Math.floor(limit / this.blockBytes)
        } blocks`,
      );
    }
    const label = `xformers layer ${config.index}`;
    // Read here, not at import: importing must work where WebGPU does not.
    const CACHE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
      GPUBufferUsage.COPY_DST;
    this.kCodes = device.createBuffer({
      size,
      usage: CACHE_USAGE,
      label: `${label} K`,
    });
    this.vCodes = device.createBuffer({
      size,
      usage: CACHE_USAGE,
      label: `${label} V`,
    });
    this.tokenScales = device.createBuffer({
      size: Math.max(16, 2 * numBlocks * this.blockScaleBytes),
      usage: CACHE_USAGE,
      label: `${label} scales`,
    });
  }

  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Throws when the cache was released. */
  assertLive(backend: string): void {
    if (this.#destroyed) {
      throw new ForeignHandleError(
        `Layer ${this.config.index}'s cache was released by ${backend}: create a new cache to keep using it`,
        { backend, target: "webgpu", layer: this.config.index },
      );
    }
  }

  /**
   * Keeps the error scope of work that was submitted without waiting
   * (write, copyBlocks), so that the next attend or read-back can report it
   * instead of silently reading a cache that was never written.
   */
  track(what: string, scope: Promise<GPUError | null>): void {
    this.#pending.push(scope.then((e) => e && `${what}: ${e.message}`));
  }

  /** Throws the first GPU error of tracked work, if any; clears the list. */
  async throwTrackedErrors(): Promise<void> {
    const pending = this.#pending.splice(0);
    const errors = (await Promise.all(pending)).filter((e) => e !== null);
    if (errors.length > 0) {
      throw webGpuBackendError(
        this,
        `An earlier ${
          errors[0]
        } (layer ${this.config.index}'s cache; ${errors.length} failed submission(s) in all)`,
      );
    }
  }

  /** Releases the GPU buffers (idempotent). */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.kCodes.destroy();
    this.vCodes.destroy();
    this.tokenScales.destroy();
  }
}
