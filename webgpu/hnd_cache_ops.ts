/**
 * Cache writes for the HND paged layout that flashinfer's and fa3's WebGPU
 * targets share: append_paged_kv_cache (wgsl/hnd_cache_write.wgsl) and
 * copy-on-write page copies, plus the input checks they share with the
 * read-backs (hnd_readback.ts). Inputs are validated before
 * anything reaches the GPU; both only submit, never wait.
 *
 * @module
 */

import type { WriteInput } from "../core/backend.ts";
import {
  type BackendIdentity,
  checkCopyPairs,
  checkWriteInput,
} from "../core/backend_checks.ts";
import type { LayerConfig } from "../core/layer.ts";
import type { LayerKvScales } from "../core/scales.ts";
import {
  checkDeviceWriteIo,
  type DeviceWork,
  type DeviceWriteIo,
  webGpuShapeError,
} from "./device_attention.ts";
import { fp32Bits, grid2d, packParams, Submission } from "./submission.ts";

/**
 * What the HND cache operations read from a layer's cache: the paged K/V
 * buffers in the layout flashinfer's and fa3's WebGPU targets share
 * ([numPages, numKvHeads, pageSize, headDim] codes packed into u32 words,
 * K and V in separate buffers, per-token-head scales beside them).
 */
export interface HndPagedCache {
  /** The backend that made it: the typed errors of its checks name it. */
  readonly backend: BackendIdentity;
  readonly config: LayerConfig;
  readonly numBlocks: number;
  readonly numSlots: number;
  readonly scales: LayerKvScales;
  readonly device: GPUDevice;
  readonly pipelines: { readonly cacheWrite: GPUComputePipeline };
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
  /** Records a validation scope's outcome for throwTrackedErrors(). */
  track(what: string, scope: Promise<GPUError | null>): void;
  /** Throws the first error a tracked scope reported. */
  throwTrackedErrors(): Promise<void>;
}

/** Throws a BackendShapeError when a tensor's length is not the expected one. */
export function checkLength(
  cache: HndPagedCache,
  name: string,
  got: number,
  want: number,
): void {
  if (got !== want) {
    throw webGpuShapeError(
      cache,
      `${name} has ${got} elements, expected ${want}`,
    );
  }
}

/**
 * Quantizes K/V into the cache through the slot mapping; submits, never
 * waits. Uploads the inputs and records the same work as
 * {@linkcode encodeCacheWrite}, so host and device writes are one path.
 * GPU-side errors are kept on the cache and thrown by its next attend or
 * read-back (see the cache's track()).
 */
export function writeCache(cache: HndPagedCache, input: WriteInput): void {
  checkWriteInput(cache.backend, cache, input);
  const { keys, values, slotMapping } = input;
  if (slotMapping.length === 0) return;
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  const work = encodeCacheWrite(job.encoder, cache, {
    keys: job.storage(keys),
    values: job.storage(values),
    slotMapping: job.storage(slotMapping),
    numTokens: slotMapping.length,
  });
  job.submit();
  work.release();
  cache.track("write()", cache.device.popErrorScope());
}

/**
 * Records the cache write of K/V already on the device into `encoder`
 * (DeviceResidentAttention.encodeWrite); nothing is submitted. Long batches
 * go in chunks of tokens whose K (or V) fits one storage binding, chunk
 * starts kept at aligned offsets. Slots outside the cache are skipped like
 * -1 by the kernel: host callers check them first.
 */
export function encodeCacheWrite(
  encoder: GPUCommandEncoder,
  cache: HndPagedCache,
  io: DeviceWriteIo,
): DeviceWork {
  const { numKvHeads, headDim, blockSize } = cache.config;
  const row = numKvHeads * headDim;
  checkDeviceWriteIo(cache, io, row);
  const n = io.numTokens;
  if (n === 0) return { release() {} };
  const s = cache.scales;
  // per_token_head int8 is symmetric: its zero point is 0 (core/int8.ts).
  const zp = (z: number) => cache.perTokenHead ? 0 : z;
  const { limits } = cache.device;
  // A chunk of a multiple of align/4 tokens keeps every chunk start aligned.
  const step = limits.minStorageBufferOffsetAlignment / 4;
  const chunk = Math.max(
    step,
    Math.floor(limits.maxStorageBufferBindingSize / (row * 4) / step) * step,
  );
  const job = new Submission(cache.device, encoder);
  const range = (buffer: GPUBuffer, at: number, bytes: number) => ({
    buffer,
    offset: at,
    size: Math.max(4, bytes),
  });
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const c = Math.min(chunk, n - t0);
    const params = job.uniform(packParams([
      ["u32", c],
      ["u32", numKvHeads],
      ["u32", headDim],
      ["u32", blockSize],
      ["u32", cache.numSlots],
      ["u32", fp32Bits(s.kScale)],
      ["u32", fp32Bits(s.vScale)],
      ["i32", zp(s.kZeroPoint)],
      ["i32", zp(s.vZeroPoint)],
    ]));
    job.dispatch(
      cache.pipelines.cacheWrite,
      [
        params,
        range(io.keys, (io.keysOffset ?? 0) + t0 * row * 4, c * row * 4),
        range(io.values, (io.valuesOffset ?? 0) + t0 * row * 4, c * row * 4),
        range(io.slotMapping, (io.slotMappingOffset ?? 0) + t0 * 4, c * 4),
        cache.kPages,
        cache.vPages,
        cache.tokenScales,
      ],
      grid2d(c * numKvHeads, limits.maxComputeWorkgroupsPerDimension),
    );
  }
  return { release: job.detach() };
}

/**
 * Copies whole pages, pairs in order (a later pair sees earlier copies).
 * WebGPU cannot copy a buffer region onto the same buffer, so each page
 * goes through a one-page scratch buffer.
 */
export function copyCachePages(
  cache: HndPagedCache,
  pairs: Int32Array,
): void {
  checkCopyPairs(cache.backend, cache, pairs);
  if (pairs.length === 0) return;
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const scratch = job.scratch(cache.pageBytes, usage);
  const regions: [GPUBuffer, number, number][] = [
    [cache.kPages, 0, cache.pageBytes],
    [cache.vPages, 0, cache.pageBytes],
  ];
  if (cache.perTokenHead) {
    const half = cache.numBlocks * cache.pageScaleBytes;
    regions.push([cache.tokenScales, 0, cache.pageScaleBytes]);
    regions.push([cache.tokenScales, half, cache.pageScaleBytes]);
  }
  for (let i = 0; i < pairs.length; i += 2) {
    if (pairs[i] === pairs[i + 1]) continue;
    for (const [buffer, base, size] of regions) {
      const e = job.encoder;
      e.copyBufferToBuffer(buffer, base + pairs[i] * size, scratch, 0, size);
      e.copyBufferToBuffer(
        scratch,
        0,
        buffer,
        base + pairs[i + 1] * size,
        size,
      );
    }
  }
  job.submit();
  cache.track("copyBlocks()", cache.device.popErrorScope());
}
