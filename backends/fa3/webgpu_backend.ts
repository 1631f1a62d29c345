/**
 * The fa3 backend on WebGPU: 8-bit QK^T and PV (dot4I8Packed for int8,
 * bit-decoded e4m3 for fp8) with two-level accumulation, switchable
 * (settings.ts). The KV cache lives in GPU buffers (webgpu_cache.ts);
 * plan() uploads a batch's metadata once for every layer; attention can be
 * recorded into a caller's encoder with no read-back (encodeAttend,
 * webgpu/device_attention.ts), and attend() is that recording plus one
 * read-back.
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
import { FA3_CAPABILITIES } from "./capabilities.ts";
import { attendFa3, encodeFa3Attend } from "./webgpu_attend.ts";
import { fa3BytesPerBlock, Fa3Cache } from "./webgpu_cache.ts";
import {
  copyCachePages,
  encodeCacheWrite,
  writeCache,
} from "../../webgpu/hnd_cache_ops.ts";
import { fa3Pipelines, resolvePackedDot } from "./webgpu_kernels.ts";
import { buildFa3Plan, type Fa3Plan } from "./webgpu_plan.ts";
import { readCache } from "../../webgpu/hnd_readback.ts";
import { resolveSettings } from "../../core/settings.ts";
import { FA3_SETTINGS, type Fa3Settings } from "./settings.ts";

/** What the WebGPU target serves: everything fa3 declares. */
export const FA3_WEBGPU_CAPABILITIES: BackendCapabilities = FA3_CAPABILITIES;

/** The fa3 WebGPU version. */
export const FA3_WEBGPU_VERSION = "0.1.0";

const NAME = "fa3";

/** The live WebGPU backend. */
export interface Fa3WebGpuBackend
  extends
    AttentionBackend<Fa3Cache, Fa3Plan>,
    DeviceResidentAttention<Fa3Cache, Fa3Plan> {
  /** The settings in force, defaults filled in. */
  readonly settings: Fa3Settings;
  /** The int8 dot product path the kernels were built with. */
  readonly packedDot: "builtin" | "shift";
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): Promise<Fa3Cache>;
  write(cache: Fa3Cache, input: WriteInput): void;
  encodeWrite(
    encoder: GPUCommandEncoder,
    cache: Fa3Cache,
    io: DeviceWriteIo,
  ): DeviceWork;
  plan(batch: PlannedBatch): Fa3Plan;
  attend(cache: Fa3Cache, plan: Fa3Plan, input: AttendInput): Promise<void>;
  copyBlocks(cache: Fa3Cache, pairs: Int32Array): void;
  readCache(cache: Fa3Cache, slots: Int32Array): Promise<CacheReadout>;
  disposeCache(cache: Fa3Cache): void;
  dispose(): void;
}

/** Options for {@linkcode createFa3WebGpuBackend}. */
export interface Fa3WebGpuOptions {
  /** The device to run on. @default the shared device (sharedWebGpuDevice()) */
  readonly device?: GPUDevice;
  /** The WebGPU settings of FA3_SETTINGS (settings.ts). @default {} */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/**
 * Creates the backend on a WebGPU device.
 *
 * @throws {TypeError} On a bad setting.
 * @throws {WebGpuUnavailableError} When no device is given and none can be had.
 *
 * @example Usage
 * ```ts
 * import { createFa3WebGpuBackend } from "./webgpu_backend.ts";
 * import { probeWebGpu } from "../../webgpu/mod.ts";
 * import assert from "node:assert/strict";
 *
 * if ((await probeWebGpu()).available) {
 *   const backend = await createFa3WebGpuBackend({
 *     settings: { accumulationPromotion: false },
 *   });
 *   assert.equal(backend.settings.accumulationPromotion, false);
 *   backend.dispose();
 *   assert.throws(() => backend.cacheBytesPerBlock({} as never), /disposed/);
 * }
 * ```
 */
export async function createFa3WebGpuBackend(
  options: Fa3WebGpuOptions = {},
): Promise<Fa3WebGpuBackend> {
  // The definition's create() has checked these already; a direct call
  // gets the same schema check and defaults.
  const settings = resolveSettings(
    { name: NAME, settings: FA3_SETTINGS },
    "webgpu",
    options.settings,
  ) as unknown as Fa3Settings;
  const packedDot = resolvePackedDot(settings.packedDot);
  const device = options.device ?? (await sharedWebGpuDevice()).device;
  const caches = new Set<Fa3Cache>();
  // Plans this instance made; their metadata buffers are freed when a plan
  // is collected, or all at once by dispose().
  const plans = new WeakSet<Fa3Plan>();
  const planBuffers = new Set<GPUBuffer>();
  const collector = new FinalizationRegistry<GPUBuffer>((buffer) => {
    planBuffers.delete(buffer);
    buffer.destroy();
  });
  let disposed = false;
  const checkDevice = watchDeviceLoss(device, NAME);
  const live = (cache?: Fa3Cache) => {
    if (disposed) {
      throw new BackendDisposedError({ backend: NAME, target: "webgpu" });
    }
    checkDevice();
    cache?.assertLive(NAME);
  };
  const checkPlan = (plan: Fa3Plan) => {
    if (!plans.has(plan)) {
      throw new ForeignHandleError(
        `The plan passed to ${NAME} attend() was not made by this backend instance: call plan(batch) on the instance that attends, once per batch, and pass its result to every layer`,
        { backend: NAME, target: "webgpu" },
      );
    }
    assertBatchSupported(NAME, FA3_WEBGPU_CAPABILITIES, plan);
  };

  // The core guard checks disposal, support, cache provenance and the
  // arguments of every contract member before these run; the checks below
  // remain for the members it does not know (encodeWrite, encodeAttend,
  // readCodes) and the device.
  return guardBackend<Fa3WebGpuBackend>({
    name: NAME,
    target: "webgpu",
    version: FA3_WEBGPU_VERSION,
    capabilities: FA3_WEBGPU_CAPABILITIES,
    device,
    settings,
    packedDot,

    cacheBytesPerBlock(config) {
      live();
      return fa3BytesPerBlock(config);
    },

    async createCache(config, options) {
      // Support (with extraReasons) is checked by the core guard.
      live();
      if (!Number.isInteger(options.numBlocks) || options.numBlocks < 1) {
        throw new RangeError(
          `numBlocks must be a positive integer, got ${options.numBlocks}`,
        );
      }
      const pipelines = await fa3Pipelines(device, config, settings, packedDot);
      live();
      const cache = new Fa3Cache(
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
      const plan = buildFa3Plan(device, batch);
      plans.add(plan);
      planBuffers.add(plan.meta);
      collector.register(plan, plan.meta);
      return plan;
    },

    encodeAttend(
      encoder: GPUCommandEncoder,
      cache: Fa3Cache,
      plan: Fa3Plan,
      io: DeviceAttendIo,
    ): DeviceWork {
      live(cache);
      checkPlan(plan);
      return encodeFa3Attend(encoder, cache, plan, io);
    },

    async attend(cache, plan, input) {
      live(cache);
      checkPlan(plan);
      await attendFa3(cache, plan, input);
    },

    copyBlocks(cache, pairs) {
      live(cache);
      copyCachePages(cache, pairs);
    },

    async readCache(cache, slots) {
      live(cache);
      return await readCache(cache, slots);
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
