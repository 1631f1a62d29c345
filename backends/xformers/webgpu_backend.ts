/**
 * The xformers backend on WebGPU: cache writes quantize on the GPU
 * (cache_write.wgsl, bit-exact with core's codecs), attention dequantizes on
 * load (decode.wgsl, prefill.wgsl) and computes in fp32. write() and
 * copyBlocks() only submit; attend() and the read-backs are async and read
 * back only their result. encodeAttend() records attention into the
 * caller's encoder with no read-back (DeviceResidentAttention); attend() is
 * that recording plus one upload and one read-back. The layout is in
 * webgpu_cache.ts.
 *
 * @module
 */

import { BackendDisposedError } from "../../core/backend_errors.ts";
import { watchDeviceLoss } from "../../webgpu/device_loss.ts";
import type {
  AttendInput,
  AttentionBackend,
  CacheReadout,
  CreateCacheOptions,
  WriteInput,
} from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import {
  assertBatchSupported,
  assertSupported,
  type BackendCapabilities,
} from "../../core/capabilities.ts";
import type { LayerConfig } from "../../core/layer.ts";
import {
  type DeviceAttendIo,
  type DeviceResidentAttention,
  type DeviceWork,
  type DeviceWriteIo,
  sharedWebGpuDevice,
} from "../../webgpu/mod.ts";
import { XFORMERS_CAPABILITIES } from "./capabilities.ts";
import { webGpuBytesPerBlock, WebGpuCache } from "./webgpu_cache.ts";
import {
  type CodeReadout,
  copyCacheBlocks,
  encodeCacheWrite,
  writeCache,
} from "./webgpu_cache_ops.ts";
import {
  attendCache,
  encodeAttention,
  type KeysPerPass,
} from "./webgpu_attend.ts";
import { xformersPipelines } from "./webgpu_kernels.ts";
import { readCache, readCodes } from "./webgpu_readback.ts";

/**
 * What the WebGPU target serves: everything xformers declares. Kept as its
 * own constant so that this target can narrow it without touching native.
 */
export const XFORMERS_WEBGPU_CAPABILITIES: BackendCapabilities =
  XFORMERS_CAPABILITIES;

const NAME = "xformers";

/** The live WebGPU backend; `readCodes` is extra, for bit-exact tests. */
export interface XformersWebGpuBackend
  extends
    AttentionBackend<WebGpuCache>,
    DeviceResidentAttention<WebGpuCache, PlannedBatch> {
  readonly device: GPUDevice;
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): Promise<WebGpuCache>;
  write(cache: WebGpuCache, input: WriteInput): void;
  encodeWrite(
    encoder: GPUCommandEncoder,
    cache: WebGpuCache,
    io: DeviceWriteIo,
  ): DeviceWork;
  attend(
    cache: WebGpuCache,
    plan: PlannedBatch,
    input: AttendInput,
  ): Promise<void>;
  encodeAttend(
    encoder: GPUCommandEncoder,
    cache: WebGpuCache,
    plan: PlannedBatch,
    io: DeviceAttendIo,
  ): DeviceWork;
  copyBlocks(cache: WebGpuCache, pairs: Int32Array): void;
  readCache(cache: WebGpuCache, slots: Int32Array): Promise<CacheReadout>;
  /** Raw codes of `slots` in core's code array types. slots: shape [n], int32 */
  readCodes(cache: WebGpuCache, slots: Int32Array): Promise<CodeReadout>;
  disposeCache(cache: WebGpuCache): void;
  dispose(): void;
}

/** Options for {@linkcode createXformersWebGpuBackend}. */
export interface XformersWebGpuOptions {
  /** The device to run on. @default the shared device (sharedWebGpuDevice()) */
  readonly device?: GPUDevice;
  /**
   * Keys one attention dispatch covers before the next carries on (tests
   * shrink it to exercise the carry on short sequences).
   * @default { decode: DECODE_KEYS_PER_PASS, prefill: PREFILL_KEYS_PER_PASS }
   */
  readonly keysPerPass?: KeysPerPass;
}

/**
 * Creates the backend on a WebGPU device.
 *
 * @throws {WebGpuUnavailableError} When no device is given and none can be had.
 *
 * @example Usage
 * ```ts
 * import { createXformersWebGpuBackend } from "./webgpu_backend.ts";
 * import { probeWebGpu } from "../../webgpu/mod.ts";
 * import assert from "node:assert/strict";
 *
 * if ((await probeWebGpu()).available) {
 *   const backend = await createXformersWebGpuBackend();
 *   assert.equal(backend.target, "webgpu");
 *   backend.dispose();
 * }
 * ```
 */
export async function createXformersWebGpuBackend(
  options: XformersWebGpuOptions = {},
): Promise<XformersWebGpuBackend> {
  const device = options.device ?? (await sharedWebGpuDevice()).device;
  const caches = new Set<WebGpuCache>();
  let disposed = false;
  const checkDevice = watchDeviceLoss(device, NAME);
  const live = (cache?: WebGpuCache) => {
    if (disposed) {
      throw new BackendDisposedError({ backend: NAME, target: "webgpu" });
    }
    checkDevice();
    cache?.assertLive(NAME);
  };

  return {
    name: NAME,
    target: "webgpu",
    version: "0.1.0",
    capabilities: XFORMERS_WEBGPU_CAPABILITIES,
    device,

    cacheBytesPerBlock: webGpuBytesPerBlock,

    async createCache(config: LayerConfig, options: CreateCacheOptions) {
      live();
      assertSupported(NAME, XFORMERS_WEBGPU_CAPABILITIES, config);
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      const pipelines = await xformersPipelines(device, config);
      live();
      const cache = new WebGpuCache(
        device,
        pipelines,
        config,
        options.numBlocks,
        options.scales,
      );
      caches.add(cache);
      return cache;
    },

    write(cache, input) {
      live(cache);
      writeCache(cache, input);
    },

    encodeWrite(encoder, cache, io) {
      live(cache);
      return encodeCacheWrite(encoder, cache, io);
    },

    async attend(cache, plan, input) {
      live(cache);
      assertBatchSupported(NAME, XFORMERS_WEBGPU_CAPABILITIES, plan);
      // Recorded and submitted before the first await: call order is kept.
      await attendCache(cache, plan, input, options.keysPerPass);
    },

    encodeAttend(encoder, cache, plan, io) {
      live(cache);
      assertBatchSupported(NAME, XFORMERS_WEBGPU_CAPABILITIES, plan);
      return encodeAttention(encoder, cache, plan, io, options.keysPerPass);
    },

    copyBlocks(cache, pairs) {
      live(cache);
      copyCacheBlocks(cache, pairs);
    },

    async readCache(cache, slots) {
      live(cache);
      return await readCache(cache, slots);
    },

    async readCodes(cache, slots) {
      live(cache);
      return await readCodes(cache, slots);
    },

    disposeCache(cache) {
      caches.delete(cache);
      cache.destroy();
    },

    dispose() {
      // The device is shared (or the caller's): release our buffers only.
      disposed = true;
      for (const cache of caches) cache.destroy();
      caches.clear();
    },
  };
}
