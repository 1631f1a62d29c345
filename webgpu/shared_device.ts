/**
 * The process-wide WebGPU device. Every backend and every layer shares one
 * device, so buffers made by one can be bound by another and pipelines are
 * compiled once; it is requested on first use and requested again after a
 * loss.
 *
 * @module
 */

import { requestWebGpuDevice, type WebGpuDeviceInfo } from "./device.ts";

let shared: Promise<WebGpuDeviceInfo> | undefined;

/**
 * The shared device, requested once. A failed request is not cached, so a
 * later call tries again; a lost device is dropped so that the next call gets
 * a fresh one.
 *
 * @throws {WebGpuUnavailableError} When no device can be had.
 *
 * @example Usage
 * ```ts
 * import { sharedWebGpuDevice } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const a = await sharedWebGpuDevice().catch(() => undefined);
 * const b = await sharedWebGpuDevice().catch(() => undefined);
 * assert.equal(a?.device, b?.device);
 * ```
 */
export function sharedWebGpuDevice(): Promise<WebGpuDeviceInfo> {
  if (shared !== undefined) return shared;
  const request = requestWebGpuDevice();
  shared = request;
  request.then(
    (info) => {
      info.device.lost.then((lost) => {
        if (shared === request) shared = undefined;
        if (lost.reason !== "destroyed") {
          console.error(`WebGPU device lost: ${lost.message}`);
        }
      });
      // Destroying the device before the runtime tears down sidesteps a
      // driver teardown race: with Mesa llvmpipe via GL, about one `deno
      // test` run in 30 aborted ("double free") after all tests passed.
      globalThis.addEventListener("unload", () => info.device.destroy());
      // Errors that no error scope caught would otherwise vanish.
      info.device.addEventListener("uncapturederror", (event) => {
        console.error(
          `WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`,
        );
      });
    },
    () => {
      if (shared === request) shared = undefined;
    },
  );
  return request;
}
