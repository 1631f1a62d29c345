/**
 * The WebGPU target factory: a backend's webgpu {@linkcode BackendTarget}
 * from the few things that differ between backends (capabilities, the
 * create function, and optionally what the probe's detail adds after the
 * adapter's name). The factory owns what every WebGPU target repeated: the
 * probe through the shared device ({@linkcode probeWebGpu}), its reason when
 * there is no adapter, the detail line, and the `software` flag of a
 * fallback adapter (llvmpipe), which `--target auto` ranks last.
 *
 * @example A backend's WebGPU target
 * ```ts
 * import { webGpuTarget } from "./target.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const target = webGpuTarget({
 *   capabilities: REFERENCE_CAPABILITIES,
 *   create: () => {
 *     throw new Error("not called in this example");
 *   },
 * });
 * assert.equal(target.target, "webgpu");
 * const probe = await target.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^WebGPU adapter /);
 * else assert.match(probe.reason, /WebGPU/);
 * ```
 *
 * @module
 */

import type {
  AttentionBackend,
  Availability,
  BackendTarget,
  CreateBackendOptions,
  MaybePromise,
} from "../core/backend.ts";
import type { BackendCapabilities } from "../core/capabilities.ts";
import type { LayerConfig } from "../core/layer.ts";
import { probeWebGpu, type WebGpuProbe } from "./probe.ts";

/** A probe that found a device. */
export type AvailableWebGpuProbe = Extract<WebGpuProbe, { available: true }>;

/** What differs between backends' WebGPU targets: see {@linkcode webGpuTarget}. */
export interface WebGpuTargetSpec {
  /** What the WGSL kernels serve. */
  readonly capabilities: BackendCapabilities;
  /**
   * (optional) Reasons beyond the capability lists why a layer is refused
   * (BackendTarget.extraReasons).
   */
  readonly extraReasons?: (layer: LayerConfig) => readonly string[];
  /**
   * (optional) What the probe's detail says after `WebGPU adapter "NAME"`,
   * leading space included (fa3: which int8 dot it uses). Default: the
   * device's optional features, ` with f1, f2` (nothing when none).
   */
  readonly detail?: (probe: AvailableWebGpuProbe) => string;
  /**
   * A live instance on the shared device; `options.settings` arrive checked
   * and defaulted through the definition's schema (core/settings.ts).
   */
  create(
    options: CreateBackendOptions | undefined,
  ): MaybePromise<AttentionBackend>;
}

/** The default detail suffix: the device's optional features, if any. */
function featuresDetail(probe: AvailableWebGpuProbe): string {
  return probe.features.length > 0 ? ` with ${probe.features.join(", ")}` : "";
}

/**
 * A target's availability from the shared WebGPU probe: its reason when
 * there is no adapter, else `WebGPU adapter "NAME"` and the detail suffix,
 * marked `software` on a fallback adapter.
 *
 * @param probe What {@linkcode probeWebGpu} answered.
 * @param detail The suffix after the adapter's name (default: its features).
 *
 * @example A software adapter is available but marked so
 * ```ts
 * import { webGpuAvailability, type AvailableWebGpuProbe } from "./target.ts";
 * import assert from "node:assert/strict";
 *
 * const probe = {
 *   available: true,
 *   device: {} as GPUDevice,
 *   adapterName: "llvmpipe",
 *   features: ["shader-f16"],
 *   isFallbackAdapter: true,
 * } as AvailableWebGpuProbe;
 * assert.deepEqual(webGpuAvailability(probe), {
 *   available: true,
 *   detail: 'WebGPU adapter "llvmpipe" with shader-f16',
 *   software: true,
 * });
 * ```
 */
export function webGpuAvailability(
  probe: WebGpuProbe,
  detail: (probe: AvailableWebGpuProbe) => string = featuresDetail,
): Availability {
  if (!probe.available) return probe;
  return {
    available: true,
    detail: `WebGPU adapter "${probe.adapterName}"${detail(probe)}`,
    software: probe.isFallbackAdapter,
  };
}

/**
 * Builds a backend's WebGPU target: the probe asks for the shared device
 * (see {@linkcode webGpuAvailability}); create() passes the settings on to
 * `spec.create` as received.
 *
 * @param spec What differs between backends.
 * @returns The entry for the definition's `targets`.
 */
export function webGpuTarget(spec: WebGpuTargetSpec): BackendTarget {
  return {
    target: "webgpu",
    capabilities: spec.capabilities,
    ...(spec.extraReasons ? { extraReasons: spec.extraReasons } : {}),
    probe: async () => webGpuAvailability(await probeWebGpu(), spec.detail),
    create: (options?: CreateBackendOptions) => spec.create(options),
  };
}
