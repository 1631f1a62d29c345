/**
 * The device-resident side of a WebGPU attention backend: attention
 * recorded into the caller's command encoder, reading Q from and writing
 * the output to GPU buffers, with no submission and no read-back.
 *
 * The contract's `attend()` takes and fills host arrays, so every call ends
 * in a mapAsync, which has a latency floor in Deno. A decode step that keeps
 * its activations on the GPU (the engine's WebGPU path, the kernel
 * benchmark) records every layer's work into encoders through this
 * interface and reads back once, at the end.
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
}

/** Whether a live backend offers {@linkcode DeviceResidentAttention}. */
export function isDeviceResident(
  backend: object,
): backend is DeviceResidentAttention {
  return typeof (backend as Partial<DeviceResidentAttention>).encodeAttend ===
      "function" &&
    typeof (backend as Partial<DeviceResidentAttention>).device === "object";
}
