/**
 * Read-back of cache slots in the HND paged layout (hnd_cache_ops.ts),
 * dequantized on the host with core's codecs (the same products the kernels
 * compute), for readCache() and tests. Each
 * distinct page is gathered into one scratch buffer, read back once.
 *
 * @module
 */

import type { CacheReadout } from "../core/backend.ts";
import { type CodeArray, codecFor } from "../core/codec.ts";
import { dequantizeInt8PerTokenHead } from "../core/int8.ts";
import { checkReadSlots } from "../core/backend_checks.ts";
import { webGpuBackendError } from "./device_attention.ts";
import type { HndPagedCache } from "./hnd_cache_ops.ts";
import { Submission } from "./submission.ts";

/** Raw codes of some slots, in core's code array types (see codecFor()). */
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

/** Raw codes (and per_token_head scales) of `slots`. slots: shape [n], int32 */
export async function readCodes(
  cache: HndPagedCache,
  slots: Int32Array,
): Promise<CodeReadout> {
  checkReadSlots(cache.backend, cache, slots);
  const { blockSize, numKvHeads, headDim, kvDtype } = cache.config;
  const pages = [...new Set([...slots].map((s) => Math.floor(s / blockSize)))];
  const at = new Map(pages.map((b, i) => [b, i]));
  // Gathered: [K pages][V pages][K scale pages][V scale pages].
  const pb = cache.pageBytes, sb = cache.pageScaleBytes, n = pages.length;
  const size = n * 2 * (pb + sb);
  cache.device.pushErrorScope("validation");
  const job = new Submission(cache.device);
  const gather = job.scratch(
    size,
    GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  );
  const half = cache.numBlocks * sb;
  pages.forEach((b, i) => {
    const e = job.encoder;
    e.copyBufferToBuffer(cache.kPages, b * pb, gather, i * pb, pb);
    e.copyBufferToBuffer(cache.vPages, b * pb, gather, (n + i) * pb, pb);
    if (sb > 0) {
      const to = 2 * n * pb;
      e.copyBufferToBuffer(cache.tokenScales, b * sb, gather, to + i * sb, sb);
      e.copyBufferToBuffer(
        cache.tokenScales,
        half + b * sb,
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
  const scaleWords = new Float32Array(bytes.buffer, 2 * n * pb);
  const keyScales = sb > 0
    ? new Float32Array(slots.length * numKvHeads)
    : undefined;
  const valueScales = sb > 0
    ? new Float32Array(slots.length * numKvHeads)
    : undefined;
  slots.forEach((slot, i) => {
    const pi = at.get(Math.floor(slot / blockSize))!;
    const off = slot % blockSize;
    for (let h = 0; h < numKvHeads; h++) {
      const src = pi * pb + (h * blockSize + off) * rowBytes;
      const dst = (i * numKvHeads + h) * rowBytes;
      kOut.set(bytes.subarray(src, src + rowBytes), dst);
      vOut.set(bytes.subarray(n * pb + src, n * pb + src + rowBytes), dst);
      if (keyScales && valueScales) {
        const s = pi * (sb / 4) + h * blockSize + off;
        keyScales[i * numKvHeads + h] = scaleWords[s];
        valueScales[i * numKvHeads + h] = scaleWords[n * (sb / 4) + s];
      }
    }
  });
  return { keys, values, keyScales, valueScales };
}

/** Dequantized K/V of `slots`. slots: shape [n], int32 */
export async function readCache(
  cache: HndPagedCache,
  slots: Int32Array,
): Promise<CacheReadout> {
  const codes = await readCodes(cache, slots);
  const { numKvHeads, headDim, kvDtype } = cache.config;
  const keys = new Float32Array(codes.keys.length);
  const values = new Float32Array(codes.values.length);
  if (codes.keyScales && codes.valueScales) {
    const args = [slots.length, numKvHeads, headDim] as const;
    const k = codes.keys as Int8Array, v = codes.values as Int8Array;
    dequantizeInt8PerTokenHead(k, codes.keyScales, ...args, keys);
    dequantizeInt8PerTokenHead(v, codes.valueScales, ...args, values);
  } else {
    const codec = codecFor(kvDtype);
    const s = cache.scales;
    codec.decodeArray(codes.keys, keys, s.kScale, s.kZeroPoint);
    codec.decodeArray(codes.values, values, s.vScale, s.vZeroPoint);
  }
  return { keys, values };
}
