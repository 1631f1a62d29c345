/**
 * Turns a lost WebGPU device into a typed error at the next call: a backend
 * watches its device once and calls the returned check first in every
 * member, so a lost device is reported as a `DeviceLostError` naming the
 * backend (the server answers 503) rather than as whatever validation error
 * the dead device's next call would raise.
 *
 * @module
 */

import { DeviceLostError } from "../core/backend_errors.ts";

/**
 * Watches `device.lost`; the returned function throws a DeviceLostError
 * (the GPUDeviceLostInfo as its cause) once the device is lost for any
 * reason but destroy(), and does nothing before.
 *
 * @example Usage
 * ```ts
 * import { watchDeviceLoss } from "./device_loss.ts";
 * import { DeviceLostError } from "../core/backend_errors.ts";
 * import assert from "node:assert/strict";
 *
 * const { promise: lost, resolve: lose } = Promise.withResolvers<GPUDeviceLostInfo>();
 * const check = watchDeviceLoss({ lost } as unknown as GPUDevice, "mine");
 * check(); // not lost yet
 * lose({ reason: undefined, message: "the driver was reset" } as unknown as GPUDeviceLostInfo);
 * await lost;
 * await 0; // the watcher's then() runs after ours
 * assert.throws(check, DeviceLostError);
 * ```
 */
export function watchDeviceLoss(
  device: GPUDevice,
  backend: string,
): () => void {
  let info: GPUDeviceLostInfo | undefined;
  device.lost.then((lost) => {
    // destroy() is ours (dispose, unload): not a loss to report.
    if (lost.reason !== "destroyed") info = lost;
  });
  return () => {
    if (info) {
      throw new DeviceLostError(info.message || "no reason given", {
        backend,
        target: "webgpu",
        cause: info,
      });
    }
  };
}
