/**
 * The fa3 WebGPU cache writes: wgsl/cache_write.wgsl and copy-on-write page
 * copies, plus the input checks they share with the read-backs (the same
 * operations as flashinfer's WebGPU target, on the same layout, duplicated
 * because a backend never imports another). Inputs are validated before
 * anything reaches the GPU; both only submit, never wait.
 *
 * @module
 */

import type { WriteInput } from "../../core/backend.ts";
import { fp32Bits, grid2d, packParams, Submission } from "../../webgpu/mod.ts";
import type { Fa3Cache } from "./webgpu_cache.ts";

/** Throws when a slot is outside the cache (callers skip -1 padding first). */
export function checkSlot(
  cache: Fa3Cache,
  slot: number,
  where: string,
): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= cache.numSlots) {
    throw new RangeError(
      `${where} is ${slot}, outside the cache's ${cache.numSlots} slots (${cache.numBlocks} blocks of ${cache.config.blockSize}): use -1 for padding`,
    );
  }
}

/** Throws when a tensor's length is not the expected one. */
export function checkLength(name: string, got: number, want: number): void {
  if (got !== want) {
    throw new RangeError(`${name} has ${got} elements, expected ${want}`);
  }
}

/**
 * Quantizes K/V into the cache through the slot mapping. Long batches go in
 * chunks of tokens whose K (or V) fits one storage binding. GPU-side errors
 * are kept on the cache and thrown by its next attend or read-back.
 */
export function writeCache(cache: Fa3Cache, input: WriteInput): void {
  const { keys, values, slotMapping } = input;
  const { numKvHeads, headDim, blockSize } = cache.config;
  const row = numKvHeads * headDim;
  checkLength("keys", keys.length, slotMapping.length * row);
  checkLength("values", values.length, slotMapping.length * row);
  slotMapping.forEach((slot, t) => {
    if (slot !== -1) checkSlot(cache, slot, `slotMapping[${t}]`);
  });
  if (slotMapping.length === 0) return;
  const s = cache.scales;
  // per_token_head int8 is symmetric: its zero point is 0 (core/int8.ts).
  const zp = (z: number) => cache.perTokenHead ? 0 : z;
  const { limits } = cache.device;
  const chunk = Math.floor(limits.maxStorageBufferBindingSize / (row * 4));
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  for (let t0 = 0; t0 < slotMapping.length; t0 += chunk) {
    const n = Math.min(chunk, slotMapping.length - t0);
    const params = job.uniform(packParams([
      ["u32", n],
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
        job.storage(keys.subarray(t0 * row, (t0 + n) * row)),
        job.storage(values.subarray(t0 * row, (t0 + n) * row)),
        job.storage(slotMapping.subarray(t0, t0 + n)),
        cache.kPages,
        cache.vPages,
        cache.tokenScales,
      ],
      grid2d(n * numKvHeads, limits.maxComputeWorkgroupsPerDimension),
    );
  }
  job.submit();
  cache.track("write()", cache.device.popErrorScope());
}

/**
 * Copies whole pages, pairs in order (a later pair sees earlier copies).
 * WebGPU cannot copy a buffer region onto the same buffer, so each page
 * goes through a one-page scratch buffer.
 */
export function copyCachePages(
  cache: Fa3Cache,
  pairs: Int32Array,
): void {
  if (pairs.length % 2 !== 0) {
    throw new RangeError(
      `pairs must hold [src, dst] pairs, got an odd length ${pairs.length}`,
    );
  }
  for (let i = 0; i < pairs.length; i++) {
    const b = pairs[i];
    if (!Number.isInteger(b) || b < 0 || b >= cache.numBlocks) {
      throw new RangeError(
        `Block ${b} at pairs[${i}] is outside 0..${cache.numBlocks - 1}`,
      );
    }
  }
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
