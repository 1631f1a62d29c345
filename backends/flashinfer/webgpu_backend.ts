/**
 * The flashinfer backend on WebGPU, FlashInfer's plan/run shape: plan()
 * builds the page tables and the split-KV partition of a batch once and
 * uploads them (webgpu_plan.ts); every layer's attend() reuses that plan
 * and checks it came from this instance. Cache writes quantize on the GPU,
 * bit-exact with core's codecs; attention dequantizes in its inner loops.
 * encodeAttend() records attention into the caller's encoder with no
 * read-back (DeviceResidentAttention); attend() is that recording plus one
 * upload and one read-back.
 *
 * @module
 */

import {
  BackendDisposedError,
  ForeignHandleError,
} from "../../core/backend_errors.ts";
import { watchDeviceLoss } from "../../webgpu/device_loss.ts";
import type {
  AttendInput,
  AttentionBackend,
  CacheReadout,
  CreateCacheOptions,
  WriteInput,
} from "../../core/backend.ts";
import type { PlannedBatch } from "../../core/batch.ts";
import { guardBackend } from "../../core/backend_guard.ts";
import {
  assertBatchSupported,
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
import { FLASHINFER_CAPABILITIES } from "./capabilities.ts";
import { attendPaged, encodePaged } from "./webgpu_attend.ts";
import { flashinferBytesPerBlock, FlashinferCache } from "./webgpu_cache.ts";
import {
  copyCachePages,
  encodeCacheWrite,
  writeCache,
} from "../../webgpu/hnd_cache_ops.ts";
import { flashinferPipelines } from "./webgpu_kernels.ts";
import { buildPlan, type FlashinferPlan } from "./webgpu_plan.ts";
import {
  type CodeReadout,
  readCache,
  readCodes,
} from "../../webgpu/hnd_readback.ts";

/** What the WebGPU target serves: everything flashinfer declares. */
export const FLASHINFER_WEBGPU_CAPABILITIES: BackendCapabilities =
  FLASHINFER_CAPABILITIES;

/** The flashinfer WebGPU version. */
export const FLASHINFER_WEBGPU_VERSION = "0.1.0";

const NAME = "flashinfer";

/** The live WebGPU backend; `readCodes` is extra, for bit-exact tests. */
export interface FlashinferWebGpuBackend
  extends
    AttentionBackend<FlashinferCache, FlashinferPlan>,
    DeviceResidentAttention<FlashinferCache, FlashinferPlan> {
  readonly device: GPUDevice;
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): Promise<FlashinferCache>;
  write(cache: FlashinferCache, input: WriteInput): void;
  encodeWrite(
    encoder: GPUCommandEncoder,
    cache: FlashinferCache,
    io: DeviceWriteIo,
  ): DeviceWork;
  plan(batch: PlannedBatch): FlashinferPlan;
  attend(
    cache: FlashinferCache,
    plan: FlashinferPlan,
    input: AttendInput,
  ): Promise<void>;
  encodeAttend(
    encoder: GPUCommandEncoder,
    cache: FlashinferCache,
    plan: FlashinferPlan,
    io: DeviceAttendIo,
  ): DeviceWork;
  copyBlocks(cache: FlashinferCache, pairs: Int32Array): void;
  readCache(cache: FlashinferCache, slots: Int32Array): Promise<CacheReadout>;
  /** Raw codes of `slots` in core's code array types. slots: shape [n], int32 */
  readCodes(cache: FlashinferCache, slots: Int32Array): Promise<CodeReadout>;
  disposeCache(cache: FlashinferCache): void;
  dispose(): void;
}

/** Options for {@linkcode createFlashinferWebGpuBackend}. */
export interface FlashinferWebGpuOptions {
  /** The device to run on. @default the shared device (sharedWebGpuDevice()) */
  readonly device?: GPUDevice;
  /**
   * Longest split-KV chunk, in keys (tests shrink it to merge many chunks
   * on short sequences). @default MAX_CHUNK_KEYS (512)
   */
  readonly maxChunkKeys?: number;
  /** Keys per prefill dispatch. @default PREFILL_KEYS_PER_PASS (1024) */
  readonly prefillKeysPerPass?: number;
}

/**
 * Creates the backend on a WebGPU device.
 *
 * @throws {WebGpuUnavailableError} When no device is given and none can be had.
 *
 * @example Usage
 * ```ts
 * import { createFlashinferWebGpuBackend } from "./webgpu_backend.ts";
 * import { probeWebGpu } from "../../webgpu/mod.ts";
 * import assert from "node:assert/strict";
 *
 * if ((await probeWebGpu()).available) {
 *   const backend = await createFlashinferWebGpuBackend();
 *   assert.equal(backend.target, "webgpu");
 *   backend.dispose();
 *   assert.throws(() => backend.cacheBytesPerBlock({} as never), /disposed/);
 * }
 * ```
 */
export async function createFlashinferWebGpuBackend(
  options: FlashinferWebGpuOptions = {},
): Promise<FlashinferWebGpuBackend> {
  const device = options.device ?? (await sharedWebGpuDevice()).device;
  const caches = new Set<FlashinferCache>();
  // Plans this instance made; their metadata buffers are freed when a plan
  // is collected, or all at once by dispose().
  const plans = new WeakSet<FlashinferPlan>();
  const planBuffers = new Set<GPUBuffer>();
  const collector = new FinalizationRegistry<GPUBuffer>((buffer) => {
    planBuffers.delete(buffer);
    buffer.destroy();
  });
  let disposed = false;
  const checkDevice = watchDeviceLoss(device, NAME);
  const live = (cache?: FlashinferCache) => {
    if (disposed) {
      throw new BackendDisposedError({ backend: NAME, target: "webgpu" });
    }
    checkDevice();
    cache?.assertLive(NAME);
  };

  const ownPlan = (
    cache: FlashinferCache,
    plan: FlashinferPlan,
    call: string,
  ) => {
    live(cache);
    if (!plans.has(plan)) {
      throw new ForeignHandleError(
        `The plan passed to ${NAME} ${call}() was not made by this backend instance: call plan(batch) on the instance that attends, once per batch, and pass its result to every layer`,
        { backend: NAME, target: "webgpu" },
      );
    }
    assertBatchSupported(NAME, FLASHINFER_WEBGPU_CAPABILITIES, plan);
  };

  // The core guard checks disposal, support, cache provenance and the
  // arguments of every contract member before these run; the checks below
  // remain for the members it does not know (encodeWrite, encodeAttend,
  // readCodes) and the device.
  return guardBackend<FlashinferWebGpuBackend>({
    name: NAME,
    target: "webgpu",
    version: FLASHINFER_WEBGPU_VERSION,
    capabilities: FLASHINFER_WEBGPU_CAPABILITIES,
    device,

    cacheBytesPerBlock(config) {
      live();
      return flashinferBytesPerBlock(config);
    },

    async createCache(config, options) {
      // Support (with extraReasons) is checked by the core guard.
      live();
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      const pipelines = await flashinferPipelines(device, config);
      live();
      const cache = new FlashinferCache(
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

    plan(batch) {
      live();
      const plan = buildPlan(device, batch, options.maxChunkKeys);
      plans.add(plan);
      planBuffers.add(plan.meta);
      collector.register(plan, plan.meta);
      return plan;
    },

    async attend(cache, plan, input) {
      ownPlan(cache, plan, "attend");
      // Recorded and submitted before the first await: call order is kept.
      await attendPaged(cache, plan, input, options.prefillKeysPerPass);
    },

    encodeAttend(encoder, cache, plan, io) {
      ownPlan(cache, plan, "encodeAttend");
      return encodePaged(encoder, cache, plan, io, options.prefillKeysPerPass);
    },

    copyBlocks(cache, pairs) {
      live(cache);
      copyCachePages(cache, pairs);
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
      for (const buffer of planBuffers) buffer.destroy();
      planBuffers.clear();
    },
  }, {});
}
