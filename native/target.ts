/**
 * The native target factory: a backend's native {@linkcode BackendTarget}
 * from the few things that differ between backends (its name, capabilities,
 * the addon export that proves its kernels are built, and how to create an
 * instance over the loaded addon). The factory owns what every native
 * target repeated: the probe (addon built, ABI, kernels present, with the
 * fix in the reason), the probe detail (kernel path and threads), the
 * refusal to create without kernels, and the hand-off of the checked
 * settings.
 *
 * @example A backend's native target
 * ```ts
 * import { nativeTarget } from "./target.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const target = nativeTarget({
 *   backend: "xformers",
 *   capabilities: REFERENCE_CAPABILITIES,
 *   kernels: "xformersAttend",
 *   create: () => {
 *     throw new Error("not called in this example");
 *   },
 * });
 * assert.equal(target.target, "native");
 * const probe = await target.probe();
 * if (probe.available) assert.match(probe.detail ?? "", /^kernel path /);
 * else assert.match(probe.reason, /^native addon /);
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
import { loadNativeAddon } from "./load.ts";
import { type NativeProbe, probeNativeAddon } from "./probe.ts";
import type { NativeAddon } from "./types.ts";

/** An addon member whose presence says a backend's kernels were built in. */
export type NativeKernelExport = {
  [K in keyof NativeAddon]-?: NonNullable<NativeAddon[K]> extends
    (...args: never[]) => unknown ? K : never;
}[keyof NativeAddon];

/** What differs between backends' native targets: see {@linkcode nativeTarget}. */
export interface NativeTargetSpec {
  /** The backend's name, as probe reasons and errors spell it. */
  readonly backend: string;
  /** What the native kernels serve. */
  readonly capabilities: BackendCapabilities;
  /**
   * The addon function whose presence says this backend's kernels are in the
   * build (an older addon lacks them; the probe then says to rebuild).
   */
  readonly kernels: NativeKernelExport;
  /**
   * (optional) Reasons beyond the capability lists why a layer is refused
   * (BackendTarget.extraReasons).
   */
  readonly extraReasons?: (layer: LayerConfig) => readonly string[];
  /**
   * A live instance over the loaded addon. Called only once the probe
   * passed; `options.settings` arrive checked and defaulted through the
   * definition's schema (core/settings.ts).
   */
  create(
    addon: NativeAddon,
    options: CreateBackendOptions | undefined,
  ): MaybePromise<AttentionBackend>;
}

/**
 * The availability of one backend's native kernels, from the addon's probe:
 * the addon's own reason when it cannot load, "native addon has no X
 * kernels (an older build): rebuild with deno task build:native" when the
 * export is missing, else available with the kernel path and thread count.
 *
 * @param backend The backend's name, for the reason.
 * @param kernels The addon function that proves the kernels are built.
 * @param probe What {@linkcode probeNativeAddon} answered.
 *
 * @example An older addon without the kernels says how to fix it
 * ```ts
 * import { nativeKernelsAvailability } from "./target.ts";
 * import type { NativeAddon } from "./types.ts";
 * import type { NativeProbe } from "./probe.ts";
 * import assert from "node:assert/strict";
 *
 * const addon = { poolThreads: () => 4 } as unknown as NativeAddon;
 * const probe: NativeProbe = {
 *   available: true,
 *   addon,
 *   kernelPath: "scalar",
 *   kernelReason: "forced",
 *   features: [],
 * };
 * assert.deepEqual(nativeKernelsAvailability("fa3", "fa3Attend", probe), {
 *   available: false,
 *   reason:
 *     "native addon has no fa3 kernels (an older build): rebuild with deno task build:native",
 * });
 * ```
 */
export function nativeKernelsAvailability(
  backend: string,
  kernels: NativeKernelExport,
  probe: NativeProbe,
): Availability {
  if (!probe.available) return probe;
  if (typeof probe.addon[kernels] !== "function") {
    return {
      available: false,
      reason:
        `native addon has no ${backend} kernels (an older build): rebuild with deno task build:native`,
    };
  }
  return {
    available: true,
    detail:
      `kernel path ${probe.kernelPath}, ${probe.addon.poolThreads()} threads`,
  };
}

/**
 * Builds a backend's native target: the probe loads the addon and checks
 * that `spec.kernels` is there (see {@linkcode nativeKernelsAvailability});
 * create() refuses with that reason when it is not, and otherwise calls
 * `spec.create` with the loaded addon and the settings as received.
 *
 * @param spec What differs between backends.
 * @returns The entry for the definition's `targets`.
 */
export function nativeTarget(spec: NativeTargetSpec): BackendTarget {
  const probe = (): Availability =>
    nativeKernelsAvailability(spec.backend, spec.kernels, probeNativeAddon());
  return {
    target: "native",
    capabilities: spec.capabilities,
    ...(spec.extraReasons ? { extraReasons: spec.extraReasons } : {}),
    probe,
    create: (options?: CreateBackendOptions) => {
      const availability = probe();
      if (!availability.available) {
        throw new Error(
          `Backend ${spec.backend} cannot be created on native: ${availability.reason}`,
        );
      }
      return spec.create(loadNativeAddon(), options);
    },
  };
}
