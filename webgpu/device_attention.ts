/**
 * The device-resident side of a WebGPU attention backend: attention
 * recorded into the caller's command encoder, reading Q from and writing
 * the output to GPU buffers, with no submission and no read-back.
 *
 * The contract's `attend()` takes and fills host arrays, so every call ends
 * in a mapAsync, which has a latency floor in Deno. A decode step that keeps
 * its activations on the GPU (the engine's WebGPU path, the kernel
 * benchmark) records every layer's work into encoders through this
 * interface and reads back once, at the end. The new K/V of a step are
 * on the device too, so the cache write can be recorded the same way
 * (`encodeWrite`, optional: a backend without it cannot serve such a step).
 *
 * @example Checking for the interface
 * ```ts
 * import { isDeviceResident } from "./device_attention.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isDeviceResident({ name: "x" }), false);
 * ```
 *
 * @module
 */

import { BackendError, BackendShapeError } from "../core/backend_errors.ts";
import type { BackendIdentity } from "../core/backend_checks.ts";
import type { LayerConfig } from "../core/layer.ts";

/**
 * What a WebGPU cache carries so that its checks throw the typed errors
 * (core/backend_errors.ts) naming its backend and layer: every built-in
 * WebGPU cache has it, and the shared checks of core/backend_checks.ts
 * take it with the cache (`checkWriteInput(cache.backend, cache, input)`).
 */
export interface WebGpuCacheIdentity {
  /** The backend instance's name and target ("webgpu"). */
  readonly backend: BackendIdentity;
  /** The layer the cache serves (its index is the error's layer). */
  readonly config: LayerConfig;
  /** The device its buffers live on. */
  readonly device: GPUDevice;
}

/**
 * A {@linkcode BackendShapeError} for `cache`'s backend and layer: an input
 * the GPU must never see (a length, offset, usage, block id or a grid past
 * the device's limits).
 *
 * @example Usage
 * ```ts
 * import { webGpuShapeError } from "./device_attention.ts";
 * import { BackendShapeError } from "../core/backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   backend: { name: "mine", target: "webgpu" },
 *   config: { index: 2 },
 * } as never;
 * const error = webGpuShapeError(cache, "query has 3 elements, expected 4");
 * assert.ok(error instanceof BackendShapeError);
 * assert.equal(error.where, "backend mine (webgpu), layer 2");
 * ```
 */
export function webGpuShapeError(
  cache: Pick<WebGpuCacheIdentity, "backend" | "config">,
  message: string,
): BackendShapeError {
  return new BackendShapeError(message, {
    backend: cache.backend.name,
    target: cache.backend.target,
    layer: cache.config.index,
  });
}

/**
 * A {@linkcode BackendError} for `cache`'s backend and layer: submitted work
 * or a read-back that the device refused while it is alive (a lost device is
 * a DeviceLostError, raised by the backend's loss check first).
 *
 * @example Usage
 * ```ts
 * import { webGpuBackendError } from "./device_attention.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   backend: { name: "mine", target: "webgpu" },
 *   config: { index: 0 },
 * } as never;
 * const error = webGpuBackendError(cache, "WebGPU attention failed: bad binding");
 * assert.equal(error.name, "BackendError");
 * assert.equal(error.layer, 0);
 * ```
 */
export function webGpuBackendError(
  cache: Pick<WebGpuCacheIdentity, "backend" | "config">,
  message: string,
  cause?: unknown,
): BackendError {
  return new BackendError(message, {
    backend: cache.backend.name,
    target: cache.backend.target,
    layer: cache.config.index,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Where one batch's Q comes from and its output goes, on the device. */
export interface DeviceAttendIo {
  /**
   * Q, shape [numTokens, numQHeads, headDim], float32, with STORAGE usage;
   * numTokens is the planned batch's.
   */
  readonly query: GPUBuffer;
  /** Byte offset of Q in `query` (a multiple of the device's minStorageBufferOffsetAlignment). @default 0 */
  readonly queryOffset?: number;
  /** Output, same shape as Q, float32, with STORAGE usage; written in full. */
  readonly out: GPUBuffer;
  /** Byte offset of the output in `out` (aligned like queryOffset). @default 0 */
  readonly outOffset?: number;
}

/** Where one batch's new K/V and their slots come from, on the device. */
export interface DeviceWriteIo {
  /** K, shape [numTokens, numKvHeads, headDim], float32, with STORAGE usage. */
  readonly keys: GPUBuffer;
  /** Byte offset of K in `keys` (a multiple of minStorageBufferOffsetAlignment). @default 0 */
  readonly keysOffset?: number;
  /** V, shape [numTokens, numKvHeads, headDim], float32, with STORAGE usage. */
  readonly values: GPUBuffer;
  /** Byte offset of V in `values` (aligned like keysOffset). @default 0 */
  readonly valuesOffset?: number;
  /**
   * Cache slot of each token, shape [numTokens], int32, with STORAGE usage;
   * -1 = padding. The GPU cannot throw, so a slot outside the cache is
   * skipped like -1: callers holding the slots on the host check them first
   * ({@linkcode checkHostSlots}).
   */
  readonly slotMapping: GPUBuffer;
  /** Byte offset of the slots in `slotMapping` (aligned like keysOffset). @default 0 */
  readonly slotMappingOffset?: number;
  /** Tokens to write (rows of keys, values and slotMapping). */
  readonly numTokens: number;
}

/** Work recorded by {@linkcode DeviceResidentAttention.encodeAttend}. */
export interface DeviceWork {
  /**
   * Frees what the recorded work needed for itself (uniforms, scratch).
   * Call it once the submission holding the work has completed
   * (`queue.onSubmittedWorkDone()`), never before.
   */
  release(): void;
}

/**
 * A WebGPU attention backend whose attention can be recorded on the device.
 * `C` and `P` are the backend's cache and plan types, as in the contract.
 */
export interface DeviceResidentAttention<C = unknown, P = unknown> {
  /** The device the backend's caches live on; buffers passed in must be from it. */
  readonly device: GPUDevice;
  /**
   * Records attention for the planned batch into `encoder`: the same result
   * `attend()` produces, left in `io.out`. Nothing is submitted or read.
   * @throws {Error} When the buffers are too small for the plan or from another device.
   */
  encodeAttend(
    encoder: GPUCommandEncoder,
    cache: C,
    plan: P,
    io: DeviceAttendIo,
  ): DeviceWork;
  /**
   * (optional) Records the cache write (reshape_and_cache) of K/V that are
   * already on the device: the same codes `write()` stores, bit for bit.
   * Nothing is submitted or read; work recorded after it in the same
   * encoder (encodeAttend) sees the new K/V.
   * @throws {Error} When a buffer is too small, unaligned or lacks STORAGE.
   */
  encodeWrite?(
    encoder: GPUCommandEncoder,
    cache: C,
    io: DeviceWriteIo,
  ): DeviceWork;
}

/** Whether a live backend offers {@linkcode DeviceResidentAttention}. */
export function isDeviceResident(
  backend: object,
): backend is DeviceResidentAttention {
  return typeof (backend as Partial<DeviceResidentAttention>).encodeAttend ===
      "function" &&
    typeof (backend as Partial<DeviceResidentAttention>).device === "object";
}

/** Whether a live backend can also record its cache write on the device. */
export function canWriteOnDevice(
  backend: object,
): backend is DeviceResidentAttention & {
  encodeWrite: NonNullable<DeviceResidentAttention["encodeWrite"]>;
} {
  return isDeviceResident(backend) &&
    typeof (backend as DeviceResidentAttention).encodeWrite === "function";
}

/**
 * The checks every encodeWrite runs before recording: STORAGE usage,
 * aligned offsets, and buffers long enough for `numTokens` rows of
 * `rowFloats` float32 (K, V) and one int32 slot each.
 *
 * @example A buffer without STORAGE is refused
 * ```ts
 * import { checkDeviceWriteIo } from "./device_attention.ts";
 * import { BackendShapeError } from "../core/backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const cache = {
 *   backend: { name: "mine", target: "webgpu" },
 *   config: { index: 0 },
 *   device: { limits: { minStorageBufferOffsetAlignment: 256 } },
 * } as never;
 * const buffer = { size: 64, usage: 0 } as GPUBuffer;
 * const io = { keys: buffer, values: buffer, slotMapping: buffer, numTokens: 1 };
 * assert.throws(
 *   () => checkDeviceWriteIo(cache, io, 8),
 *   (e) => e instanceof BackendShapeError &&
 *     /io\.keys was created without GPUBufferUsage\.STORAGE/.test(e.message),
 * );
 * ```
 */
export function checkDeviceWriteIo(
  cache: WebGpuCacheIdentity,
  io: DeviceWriteIo,
  rowFloats: number,
): void {
  const { device } = cache;
  const n = io.numTokens;
  if (!Number.isInteger(n) || n < 0) {
    throw webGpuShapeError(
      cache,
      `io.numTokens must be a non-negative integer, got ${n}`,
    );
  }
  const align = device.limits.minStorageBufferOffsetAlignment;
  for (
    const [name, buffer, offset, bytes] of [
      ["keys", io.keys, io.keysOffset ?? 0, n * rowFloats * 4],
      ["values", io.values, io.valuesOffset ?? 0, n * rowFloats * 4],
      ["slotMapping", io.slotMapping, io.slotMappingOffset ?? 0, n * 4],
    ] as const
  ) {
    if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) {
      throw webGpuShapeError(
        cache,
        `io.${name} was created without GPUBufferUsage.STORAGE: add it to the buffer's usage`,
      );
    }
    if (offset % align !== 0) {
      throw webGpuShapeError(
        cache,
        `io.${name}Offset is ${offset}, not a multiple of this device's minStorageBufferOffsetAlignment ${align}`,
      );
    }
    if (buffer.size < offset + bytes) {
      throw webGpuShapeError(
        cache,
        `io.${name} holds ${buffer.size} bytes but ${n} tokens need ${bytes} from offset ${offset}`,
      );
    }
  }
}

/**
 * Throws naming the first slot outside a cache of `numSlots` slots (-1,
 * padding, is allowed): the host-side check that encodeWrite's GPU cannot do.
 *
 * @example Usage
 * ```ts
 * import { checkHostSlots } from "./device_attention.ts";
 * import assert from "node:assert/strict";
 *
 * checkHostSlots(Int32Array.of(0, -1, 15), 16);
 * assert.throws(() => checkHostSlots(Int32Array.of(16), 16), /slotMapping\[0\] is 16/);
 * ```
 *
 * @param slots shape [numTokens], int32
 */
export function checkHostSlots(slots: Int32Array, numSlots: number): void {
  slots.forEach((slot, t) => {
    if (slot !== -1 && !(slot >= 0 && slot < numSlots)) {
      throw new RangeError(
        `slotMapping[${t}] is ${slot}, outside the cache's ${numSlots} slots: use -1 for padding`,
      );
    }
  });
}
