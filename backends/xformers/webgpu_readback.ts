/**
 * Read-backs of cache slots: raw codes (bit-exact tests) and values
 * dequantized on the host with core's codecs (readCache; the same products
 * the kernels compute). Each distinct block is gathered into one scratch
 * buffer, which is read back once.
 *
 * @module
 */

import type { CacheReadout } from "../../core/backend.ts";
import { codecFor } from "../../core/codec.ts";
import { dequantizeInt8PerTokenHead } from "../../core/int8.ts";
import type { WebGpuCache } from "./webgpu_cache.ts";
import type { CodeReadout } from "./webgpu_cache_ops.ts";
import { checkReadSlots } from "../../core/backend_checks.ts";
import { webGpuBackendError } from "../../webgpu/device_attention.ts";
import { Submission } from "../../webgpu/submission.ts";

/** Raw codes (and per_token_head scales) of `slots`. slots: shape [n], int32 */
export async function readCodes(
  cache: WebGpuCache,
  slots: Int32Array,
): Promise<CodeReadout> {
  checkReadSlots(cache.backend, cache, slots);
  const { blockSize, numKvHeads, headDim, kvDtype } = cache.config;
  const blocks = [...new Set([...slots].map((s) => Math.floor(s / blockSize)))];
  const at = new Map(blocks.map((b, i) => [b, i]));
  // Gathered layout: [K blocks][V blocks][K scale blocks][V scale blocks].
  const bb = cache.blockBytes, sb = cache.blockScaleBytes, n = blocks.length;
  const size = n * 2 * (bb + sb);
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  const usage = GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const gather = job.scratch(size, usage);
  const halfScales = cache.numBlocks * sb;
  blocks.forEach((b, i) => {
    const e = job.encoder;
    e.copyBufferToBuffer(cache.kCodes, b * bb, gather, i * bb, bb);
    e.copyBufferToBuffer(cache.vCodes, b * bb, gather, (n + i) * bb, bb);
    if (sb > 0) {
      const to = 2 * n * bb;
      e.copyBufferToBuffer(cache.tokenScales, b * sb, gather, to + i * sb, sb);
      e.copyBufferToBuffer(
        cache.tokenScales,
        halfScales + b * sb,
        gather,
        to + (n + i) * sb,
        sb,
      );
    }
  });
  const read = job.read(gather, 0, size); // submits now, in call order
  const error = await cache.device.popErrorScope();
  await cache.throwTrackedErrors().catch((e) => {
    read.catch(() => {});
    throw e;
  });
  if (error) {
    read.catch(() => {});
    throw webGpuBackendError(
      cache,
      `WebGPU cache read-back failed: ${error.message}`,
      error,
    );
  }
  const bytes = new Uint8Array(await read);

  const codec = codecFor(kvDtype);
  const rowBytes = cache.wordsPerRow * 4;
  const keys = codec.allocate(slots.length * numKvHeads * headDim);
  const values = codec.allocate(keys.length);
  const kOut = new Uint8Array(keys.buffer),
    vOut = new Uint8Array(values.buffer);
  const scaleWords = new Float32Array(bytes.buffer, 2 * n * bb);
  const keyScales = sb > 0
    ? new Float32Array(slots.length * numKvHeads)
    : undefined;
  const valueScales = sb > 0 ? new Float32Array(keyScales!.length) : undefined;
  slots.forEach((slot, i) => {
    const bi = at.get(Math.floor(slot / blockSize))!;
    const off = slot % blockSize;
    for (let h = 0; h < numKvHeads; h++) {
      const src = bi * bb + (h * blockSize + off) * rowBytes;
      const dst = (i * numKvHeads + h) * rowBytes;
      kOut.set(bytes.subarray(src, src + rowBytes), dst);
      vOut.set(bytes.subarray(n * bb + src, n * bb + src + rowBytes), dst);
      if (keyScales && valueScales) {
        const s = bi * (sb / 4) + h * blockSize + off;
        keyScales[i * numKvHeads + h] = scaleWords[s];
        valueScales[i * numKvHeads + h] = scaleWords[n * (sb / 4) + s];
      }
    }
  });
  return { keys, values, keyScales, valueScales };
}

/** Dequantized K/V of `slots`, decoded with core's codecs. slots: shape [n], int32 */
export async function readCache(
  cache: WebGpuCache,
  slots: Int32Array,
): Promise<CacheReadout> {
  const codes = await readCodes(cache, slots);
  const { numKvHeads, headDim, kvDtype } = cache.config;
  const keys = new Float32Array(codes.keys.length);
  const values = new Float32Array(codes.values.length);
  if (codes.keyScales && codes.valueScales) {
    const args = [slots.length, numKvHeads, headDim] as const;
    dequantizeInt8PerTokenHead(
      codes.keys as Int8Array,
      codes.keyScales,
      ...args,
      keys,
    );
    dequantizeInt8PerTokenHead(
      codes.values as Int8Array,
      codes.valueScales,
      ...args,
      values,
    );
  } else {
    const codec = codecFor(kvDtype);
    const s = cache.scales;
    codec.decodeArray(codes.keys, keys, s.kScale, s.kZeroPoint);
    codec.decodeArray(codes.values, values, s.vScale, s.vZeroPoint);
  }
  return { keys, values };
}
