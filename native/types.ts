/**
 * The shape of the native addon as seen from TypeScript, and the names it
 * may report. Mirrors native/src/exports.rs.
 *
 * @module
 */

/**
 * The addon ABI this TypeScript expects. native/src/lib.rs defines the same
 * number as `ADDON_ABI_VERSION`; both change together whenever an export is
 * removed or changes meaning, and a mismatch is refused at load.
 */
export const ADDON_ABI_VERSION = 1;

/** Kernel paths, slowest first. Each one needs the features of those before it. */
export const KERNEL_PATHS = [
  "scalar",
  "avx2",
  "avx512",
  "avx512_vnni",
] as const;

/** A kernel path the native kernels can run. */
export type KernelPathName = typeof KERNEL_PATHS[number];

/** Every CPU feature name `cpuFeatures()` may report, in reporting order. */
export const CPU_FEATURES = [
  "avx512f",
  "avx512bw",
  "avx512vnni",
  "avx512bf16",
  "avx2",
  "fma",
  "f16c",
] as const;

/** A CPU feature the native kernels care about. */
export type CpuFeature = typeof CPU_FEATURES[number];

/** How `kernelSelection()` chose its path. */
export interface KernelSelection {
  /** The path the kernels run. */
  readonly path: KernelPathName;
  /** The fastest path this CPU supports. */
  readonly best: KernelPathName;
  /** The value of `KVPLUG_NATIVE_PATH`, or `null` when unset or empty. */
  readonly requested: string | null;
  /**
   * `"auto"`: no request, the best path; `"override"`: the requested
   * downgrade; `"fallback"`: the request was unknown or unavailable, so the
   * best path instead.
   */
  readonly status: "auto" | "override" | "fallback";
  /** Why, in words, e.g. `KVPLUG_NATIVE_PATH=avx2 selects avx2 (best available: avx512_vnni)`. */
  readonly reason: string;
}

/** The functions the native addon exports (ABI {@linkcode ADDON_ABI_VERSION}). */
export interface NativeAddon {
  /** The ABI the addon was built with; must equal {@linkcode ADDON_ABI_VERSION}. */
  abiVersion(): number;
  /** The CPU features detected at run time; empty on non-x86 machines. */
  cpuFeatures(): CpuFeature[];
  /**
   * The kernel path in use: the best this CPU supports, or a downgrade
   * requested by `KVPLUG_NATIVE_PATH`. Reads the variable on every call.
   */
  kernelPath(): KernelPathName;
  /** `kernelPath()` with the reason for it; reads `KVPLUG_NATIVE_PATH` on every call. */
  kernelSelection(): KernelSelection;
  /** `std::thread::available_parallelism()`, or 1 when unknown. */
  threads(): number;
  /**
   * Sums the elements of `a` in order, in f64, reading the array in place.
   *
   * @param a Values to sum: shape [n], dtype float32; a subarray sums only its own elements.
   * @throws {TypeError} When `a` is not a Float32Array.
   */
  sumF32(a: Float32Array): number;
}
