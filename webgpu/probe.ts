/**
 * Whether WebGPU can run here, as data: a device when it can, a reason a user
 * can act on when it cannot.
 *
 * @module
 */

import type { WebGpuDeviceInfo } from "./device.ts";
import { sharedWebGpuDevice } from "./shared_device.ts";

/** The answer of {@linkcode probeWebGpu}. */
export type WebGpuProbe =
  | ({ readonly available: true } & WebGpuDeviceInfo)
  | { readonly available: false; readonly reason: string };

/**
 * Requests the shared device (see {@linkcode sharedWebGpuDevice}) and reports
 * it, or why there is none ("no WebGPU adapter found: ..."). Never throws.
 *
 * @example Usage
 * ```ts
 * import { probeWebGpu } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = await probeWebGpu();
 * if (probe.available) assert.equal(typeof probe.adapterName, "string");
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 */
export async function probeWebGpu(): Promise<WebGpuProbe> {
  try {
    return { available: true, ...await sharedWebGpuDevice() };
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
}
