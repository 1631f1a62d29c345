/**
 * The flashinfer WebGPU paged cache, per layer, in FlashInfer's HND layout:
 *
 * - K pages and V pages, one GPU buffer each, shape [numPages, numKvHeads,
 *   pageSize, headDim] in the dtype's width (fp32 4, fp16/bf16 2, fp8/int8 1
 *   byte), packed little-endian into u32 words. Head-major inside a page,
 *   so one (page, kv head) is contiguous: a decode workgroup serving one kv
 *   head and its whole GQA group walks it in order. K and V are separate
 *   buffers (not FlashInfer's interleaved [page, 2, ...]) because one WebGPU
 *   binding is at most 128 MiB on llvmpipe: apart, each gets the full limit.
 * - int8 per_token_head only: fp32 scales [2, numPages, numKvHeads,
 *   pageSize] (K, then V); other dtypes bind a 16-byte placeholder.
 *
 * Layer scales (k/v scale, zero point) are uniforms of each dispatch, never
 * stored in kernels.
 *
 * @module
 */

import { ForeignHandleError } from "../../core/backend_errors.ts";
import { webGpuBackendError } from "../../webgpu/device_attention.ts";
import type { LayerCache } from "../../core/backend.ts";
import { dtypeInfo } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import type { LayerKvScales } from "../../core/scales.ts";
import { type FlashinferPipelines, isPerTokenHead } from "./webgpu_kernels.ts";

/** Bytes of one page (block) in this layout, K and V and scales together. */
export function flashinferBytesPerBlock(config: LayerConfig): number {
  const row = config.numKvHeads * config.headDim;
  const codes = 2 * config.blockSize * row * dtypeInfo(config.kvDtype).bytes;
  const scales = isPerTokenHead(config)
    ? 2 * config.blockSize * config.numKvHeads * 4
    : 0;
  return codes + scales;
}

/** One layer's paged K/V on the GPU, in the layout of the module doc. */
export class FlashinferCache implements LayerCache {
  /** Who the typed errors of this cache's checks name. */
  readonly backend = { name: "flashinfer", target: "webgpu" } as const;
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly scales: LayerKvScales;
  readonly device: GPUDevice;
  readonly pipelines: FlashinferPipelines;
  readonly perTokenHead: boolean;
  /** u32 words per (slot, kv head) row. */
  readonly wordsPerRow: number;
  /** Bytes of one page of K (or of V). */
  readonly pageBytes: number;
  /** Bytes of one page of K scales (or of V scales); 0 without them. */
  readonly pageScaleBytes: number;
  readonly kPages: GPUBuffer;
  readonly vPages: GPUBuffer;
  /** [2, numPages, numKvHeads, pageSize] fp32, or a placeholder. */
  readonly tokenScales: GPUBuffer;
  #destroyed = false;
  #pending: Promise<string | null>[] = [];

  constructor(
    device: GPUDevice,
    pipelines: FlashinferPipelines,
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
    this.pageBytes = config.numKvHeads * config.blockSize * config.headDim *
      bytes;
    this.pageScaleBytes = this.perTokenHead
      ? config.numKvHeads * config.blockSize * 4
      : 0;
    const size = numBlocks * this.pageBytes;
    const limit = device.limits.maxStorageBufferBindingSize;
    if (size > limit) {
      throw new RangeError(
        `Layer ${config.index}'s K cache needs ${size} bytes for ${numBlocks} blocks but this WebGPU device binds at most ${limit} bytes per buffer: use at most ${
          Math.floor(limit / this.pageBytes)
        } blocks`,
      );
    }
    const label = `flashinfer layer ${config.index}`;
    // Read here, not at import: importing must work where WebGPU does not.
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC |
      GPUBufferUsage.COPY_DST;
    this.kPages = device.createBuffer({ size, usage, label: `${label} K` });
    this.vPages = device.createBuffer({ size, usage, label: `${label} V` });
    this.tokenScales = device.createBuffer({
      size: Math.max(16, 2 * numBlocks * this.pageScaleBytes),
      usage,
      label: `${label} scales`,
    });
  }

  /** Slots in the cache: numBlocks * blockSize. */
  get numSlots(): number {
    return this.numBlocks * this.config.blockSize;
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
   * Keeps the error scope of work submitted without waiting (write,
   * copyBlocks), so the next attend or read-back reports it instead of
   * silently reading a cache that was never written.
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
    this.kPages.destroy();
    this.vPages.destroy();
    this.tokenScales.destroy();
  }
}
