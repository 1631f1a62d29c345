/**
 * The xformers WebGPU cache writes: reshape_and_cache (cache_write.wgsl) and
 * copy-on-write block copies, plus the input checks they share with the
 * read-backs. Inputs are validated before anything reaches the GPU.
 *
 * @module
 */

import type { WriteInput } from "../../core/backend.ts";
import { checkCopyPairs, checkWriteInput } from "../../core/backend_checks.ts";
import type { CodeArray } from "../../core/codec.ts";
import type { WebGpuCache } from "./webgpu_cache.ts";
import {
  checkDeviceWriteIo,
  type DeviceWork,
  type DeviceWriteIo,
  webGpuShapeError,
} from "../../webgpu/device_attention.ts";
import {
  fp32Bits,
  grid2d,
  packParams,
  Submission,
} from "../../webgpu/submission.ts";

/** Raw codes of some slots, in core's storage types (see codecFor()). */
export interface CodeReadout {
  /** shape [numSlots, numKvHeads, headDim], the dtype's code array type */
  readonly keys: CodeArray;
  /** shape [numSlots, numKvHeads, headDim], the dtype's code array type */
  readonly values: CodeArray;
  /** per_token_head int8 only: shape [numSlots, numKvHeads], float32 */
  readonly keyScales?: Float32Array;
  /** per_token_head int8 only: shape [numSlots, numKvHeads], float32 */
  readonly valueScales?: Float32Array;
}

/** Throws a BackendShapeError when a tensor's length is not the expected one. */
export function checkLength(
  cache: WebGpuCache,
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
export function writeCache(cache: WebGpuCache, input: WriteInput): void {
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
  cache: WebGpuCache,
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
        cache.kCodes,
        cache.vCodes,
        cache.tokenScales,
      ],
      grid2d(c * numKvHeads, limits.maxComputeWorkgroupsPerDimension),
    );
  }
  return { release: job.detach() };
}

/**
 * Copies whole blocks, pairs in order (a later pair sees earlier copies, as
 * sequential copies would). WebGPU cannot copy a buffer onto itself, so each
 * block goes through a one-block scratch buffer; copies run in order.
 */
export function copyCacheBlocks(cache: WebGpuCache, pairs: Int32Array): void {
  checkCopyPairs(cache.backend, cache, pairs);
  if (pairs.length === 0) return;
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const scratch = job.scratch(cache.blockBytes, usage);
  const regions: [GPUBuffer, number, number][] = [
    [cache.kCodes, 0, cache.blockBytes],
    [cache.vCodes, 0, cache.blockBytes],
  ];
  if (cache.perTokenHead) {
    const half = cache.numBlocks * cache.blockScaleBytes;
    regions.push([cache.tokenScales, 0, cache.blockScaleBytes]);
    regions.push([cache.tokenScales, half, cache.blockScaleBytes]);
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
