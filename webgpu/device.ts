/**
 * One place that asks for a WebGPU adapter and device. Kernels need large
 * storage bindings (a layer's K or V cache is one binding), so the two
 * buffer-size limits are raised to whatever the adapter offers; optional
 * features are requested when the adapter has them and never required, so
 * every kernel must also run without them.
 *
 * @module
 */

import { WebGpuUnavailableError } from "./errors.ts";

/** Features a kernel may use when present; never required. */
export const OPTIONAL_FEATURES: readonly GPUFeatureName[] = [
  "shader-f16",
  "subgroups" as GPUFeatureName,
  "timestamp-query",
];

/** Limits raised from the WebGPU defaults to the adapter's own values. */
export const RAISED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
] as const;

/** A device together with what was learned while requesting it. */
export interface WebGpuDeviceInfo {
  readonly device: GPUDevice;
  /** The adapter's description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  readonly adapterName: string;
  /** The optional features the device was created with. */
  readonly features: readonly GPUFeatureName[];
  /** True for software adapters (llvmpipe, lavapipe, WARP). */
  readonly isFallbackAdapter: boolean;
}

/** Options for {@linkcode requestWebGpuDevice}. */
export interface RequestDeviceOptions {
  /** @default "high-performance" */
  readonly powerPreference?: GPUPowerPreference;
}

/** Describes an adapter for messages: its description, else vendor and device. */
export function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info;
  return info.description ||
    [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unnamed adapter";
}

/**
 * Requests an adapter and a device with the limits and optional features the
 * kernels want.
 *
 * @throws {WebGpuUnavailableError} When WebGPU is missing or no adapter or
 * device can be had; the message says why.
 *
 * @example Usage
 * ```ts
 * import { requestWebGpuDevice, WebGpuUnavailableError } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * try {
 *   const { device, features } = await requestWebGpuDevice();
 *   assert.ok(device.limits.maxStorageBufferBindingSize >= 1 << 27);
 *   assert.ok(features.every((f) => device.features.has(f)));
 *   device.destroy();
 * } catch (e) {
 *   assert.ok(e instanceof WebGpuUnavailableError);
 * }
 * ```
 */
export async function requestWebGpuDevice(
  options: RequestDeviceOptions = {},
): Promise<WebGpuDeviceInfo> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (gpu === undefined) {
    throw new WebGpuUnavailableError(
      "no WebGPU adapter found: navigator.gpu is undefined in this runtime (Deno 2 has it by default; older versions need --unstable-webgpu)",
    );
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({
      powerPreference: options.powerPreference ?? "high-performance",
    });
  } catch (e) {
    throw new WebGpuUnavailableError(
      `no WebGPU adapter found: requestAdapter() failed: ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  if (adapter === null) {
    throw new WebGpuUnavailableError(
      "no WebGPU adapter found: requestAdapter() returned null; install a GPU driver, or Mesa (llvmpipe via GL, or lavapipe: apt-get install mesa-vulkan-drivers) for a software adapter",
    );
  }
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const name = adapterName(adapter);
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits,
    });
  } catch (e) {
    throw new WebGpuUnavailableError(
      `WebGPU adapter "${name}" refused a device: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return {
    device,
    adapterName: name,
    features,
    isFallbackAdapter: adapter.info.isFallbackAdapter ?? false,
  };
}
