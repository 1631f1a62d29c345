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

/** A KV cache dtype name, as core/dtype.ts spells it. */
export type NativeKvDtype =
  | "fp32"
  | "fp16"
  | "bf16"
  | "fp8_e4m3"
  | "fp8_e5m2"
  | "int8";

/**
 * One layer's cache in the xformers native layout, with the layer facts the
 * kernels need. Built once per cache by backends/xformers; the addon reads
 * it in place on every call. Codes are `[numBlocks, numKvHeads, blockSize,
 * headDim]`; per-row scales (int8 per_token_head only) `[numBlocks,
 * numKvHeads, blockSize]`.
 */
export interface NativeXformersCache {
  readonly dtype: NativeKvDtype;
  readonly numQHeads: number;
  /** numQHeads must be a multiple of it. */
  readonly numKvHeads: number;
  /** A multiple of 8. */
  readonly headDim: number;
  readonly blockSize: number;
  readonly numBlocks: number;
  /** Softmax scale applied to q.k. */
  readonly softmaxScale: number;
  /** Keys a query sees, itself included; 0 = the whole prefix. */
  readonly slidingWindow: number;
  /** Per-tensor scales and zero points (8-bit only; ignored otherwise). */
  readonly kScale: number;
  readonly vScale: number;
  readonly kZeroPoint: number;
  readonly vZeroPoint: number;
  /** fp32: Float32Array; fp16/bf16: Uint16Array; fp8: Uint8Array; int8: Int8Array. */
  readonly keys: Float32Array | Uint16Array | Uint8Array | Int8Array;
  readonly values: Float32Array | Uint16Array | Uint8Array | Int8Array;
  /** int8 per_token_head only, else null. shape [numBlocks, numKvHeads, blockSize], float32 */
  readonly keyScales: Float32Array | null;
  readonly valueScales: Float32Array | null;
}

/** The page tables of one batch (a core `PlannedBatch` is one). */
export interface NativeBatch {
  /** shape [numSeqs + 1], int32 */
  readonly queryStartLoc: Int32Array;
  /** shape [numSeqs], int32 */
  readonly seqLens: Int32Array;
  /** shape [numSeqs, maxBlocksPerSeq], int32 */
  readonly blockTables: Int32Array;
  readonly maxBlocksPerSeq: number;
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
  /**
   * Asks Linux to back the array's memory with transparent huge pages
   * (`madvise(MADV_HUGEPAGE)`), so that reads scattered by block tables miss
   * the TLB less; call it before the array is first written. A hint: false
   * when not taken (other systems, small arrays), and results never change.
   *
   * @param array Any typed array.
   */
  adviseHugePages(
    array: Float32Array | Uint16Array | Uint8Array | Int8Array,
  ): boolean;
  /**
   * Threads of the addon's persistent pool: `KVPLUG_NATIVE_THREADS` when it
   * is a positive integer, else the CPU's parallelism; read once, when the
   * pool starts.
   */
  poolThreads(): number;
  /**
   * xformers reshape_and_cache: encodes each token's K and V (core's exact
   * formats) into its slot; slot -1 is skipped.
   *
   * @param keys shape [numTokens, numKvHeads, headDim], float32
   * @param values shape [numTokens, numKvHeads, headDim], float32
   * @param slotMapping shape [numTokens], int32
   * @throws {Error} On any size, slot or type mismatch, or overlapping arrays.
   */
  xformersWrite(
    cache: NativeXformersCache,
    keys: Float32Array,
    values: Float32Array,
    slotMapping: Int32Array,
  ): void;
  /**
   * xformers paged attention (decode and prefill, mixed) over the addon's
   * thread pool.
   *
   * @param query shape [numTokens, numQHeads, headDim], float32
   * @param out shape [numTokens, numQHeads, headDim], float32; written in full
   * @param kernelPath A kernel path to run (downgrades only, as
   * `KVPLUG_NATIVE_PATH`), or null for the one `kernelPath()` names.
   * @returns The kernel path that ran.
   */
  xformersAttend(
    cache: NativeXformersCache,
    batch: NativeBatch,
    query: Float32Array,
    out: Float32Array,
    kernelPath: KernelPathName | null,
  ): KernelPathName;
  /**
   * Dequantized copy of cache slots, bit-exact with core's decoders.
   *
   * @param slots shape [numSlots], int32
   * @param keysOut shape [numSlots, numKvHeads, headDim], float32
   * @param valuesOut shape [numSlots, numKvHeads, headDim], float32
   */
  xformersRead(
    cache: NativeXformersCache,
    slots: Int32Array,
    keysOut: Float32Array,
    valuesOut: Float32Array,
  ): void;
  /**
   * For tests: dequantizes `codes` through one kernel path's SIMD loaders
   * (the ones attention uses), so each path can be checked bit for bit
   * against core's decoders.
   *
   * @param codes shape [n], the dtype's code array type
   * @param out shape [n], float32
   * @param kernelPath As for `xformersAttend`.
   * @returns The kernel path that ran.
   */
  dequantizeCodes(
    dtype: NativeKvDtype,
    codes: Float32Array | Uint16Array | Uint8Array | Int8Array,
    scale: number,
    zeroPoint: number,
    out: Float32Array,
    kernelPath: KernelPathName | null,
  ): KernelPathName;

  // --- Memory bandwidth (native/src/bandwidth.rs) ---

  /**
   * Streams all of `data` from memory `passes` times over the addon's
   * thread pool (every 64-bit word XORed into a checksum) and times each
   * pass: the machine's read bandwidth as the attention kernels see it.
   * `data` must be larger than the caches for the figure to mean DRAM.
   *
   * @param data Bytes to read: shape [n], uint8, n a multiple of 8, 8-byte aligned.
   * @param passes Passes over `data`, 1..1000000.
   * @returns The fastest pass's seconds, and the XOR of every 32-bit word of `data`.
   * @throws {TypeError} When `data` is not a Uint8Array, misaligned, or not whole words.
   */
  streamRead(
    data: Uint8Array,
    passes: number,
  ): { readonly bestSeconds: number; readonly checksum: number };
}

// ---------------------------------------------------------------------------
// Model ops (native/src/exports_ops.rs): the engine's matmul on the native
// target. Declared apart so other exports can be added without touching it.

/** The model-ops exports of the native addon. */
export interface NativeOpsAddon {
  /**
   * Elements of the packed form of a `[rows, cols]` weight: rows rounded up
   * to a whole number of 16-row panels, times cols.
   */
  opsPackedLength(rows: number, cols: number): number;
  /**
   * Packs a weight once, at load, into the panel layout `opsMatmul` reads
   * (the same layout on every kernel path).
   *
   * @param weight shape [rows, cols], float32 (PyTorch's [out, in])
   * @param out shape [opsPackedLength(rows, cols)]: a Float32Array stores
   * f32, a Uint16Array bf16 bits (rounded to nearest even); written in full
   */
  opsPackWeights(
    weight: Float32Array,
    rows: number,
    cols: number,
    out: Float32Array | Uint16Array,
  ): void;
  /**
   * out = x W^T (+ bias), blocked and spread over the addon's thread pool,
   * f32 accumulation in one fused multiply-add chain per output in k order
   * (avx2 and avx512 give identical bits; scalar rounds each product).
   *
   * @param x shape [m, cols], float32
   * @param packed W [rows, cols] packed by `opsPackWeights` (f32 or bf16)
   * @param bias shape [rows], float32, or null
   * @param out shape [m, rows], float32; must not share memory with the inputs
   * @param kernelPath As for `xformersAttend`: a downgrade, or null for `kernelPath()`.
   * @returns The kernel path that ran.
   */
  opsMatmul(
    x: Float32Array,
    packed: Float32Array | Uint16Array,
    rows: number,
    cols: number,
    bias: Float32Array | null,
    out: Float32Array,
    kernelPath: KernelPathName | null,
  ): KernelPathName;
}

// ---------------------------------------------------------------------------
// flashinfer (native/src/exports_flashinfer.rs). Declared as a merged part of
// NativeAddon so that each backend's exports stay in their own section.
// ---------------------------------------------------------------------------

/**
 * One layer's cache in the flashinfer native layout (FlashInfer's HND):
 * K and V codes `[numPages, numKvHeads, pageSize, headDim]`, a row per
 * token; per-row scales (int8 per_token_head only) `[numPages, numKvHeads,
 * pageSize]`. Built once per cache by backends/flashinfer.
 */
export interface NativeFlashinferCache {
  readonly dtype: NativeKvDtype;
  readonly numQHeads: number;
  /** numQHeads must be a multiple of it. */
  readonly numKvHeads: number;
  /** A multiple of 64, at most 512. */
  readonly headDim: number;
  /** 16, 32 or 64. */
  readonly pageSize: number;
  readonly numPages: number;
  /** Softmax scale applied to q.k. */
  readonly softmaxScale: number;
  /** Keys a query sees, itself included; 0 = the whole prefix. */
  readonly slidingWindow: number;
  /** Logits become `softCap * tanh(x / softCap)`; 0 = no cap. */
  readonly softCap: number;
  /** Per-tensor scales and zero points (8-bit only; ignored otherwise). */
  readonly kScale: number;
  readonly vScale: number;
  readonly kZeroPoint: number;
  readonly vZeroPoint: number;
  /** fp32: Float32Array; fp16/bf16: Uint16Array; fp8: Uint8Array; int8: Int8Array. */
  readonly keys: Float32Array | Uint16Array | Uint8Array | Int8Array;
  readonly values: Float32Array | Uint16Array | Uint8Array | Int8Array;
  /** int8 per_token_head only, else null. shape [numPages, numKvHeads, pageSize], float32 */
  readonly keyScales: Float32Array | null;
  readonly valueScales: Float32Array | null;
}

/** The page tables and work partition of one batch (flashinfer's plan). */
export interface NativeFlashinferPlan {
  /** shape [numSeqs + 1], int32 */
  readonly queryStartLoc: Int32Array;
  readonly pageSize: number;
  /** shape [numSeqs + 1], int32 */
  readonly kvIndptr: Int32Array;
  /** shape [kvIndptr[numSeqs]], int32 */
  readonly kvIndices: Int32Array;
  /** shape [numSeqs], int32, each 1..pageSize */
  readonly kvLastPageLen: Int32Array;
  /** (token, sequence, first key, end key): shape [numChunks, 4], int32 */
  readonly decodeChunks: Int32Array;
  /** (token, first chunk, chunk count): shape [numDecodes, 3], int32 */
  readonly decodeItems: Int32Array;
  /** (first token, token count <= 16, sequence, first position): shape [numTiles, 4], int32 */
  readonly prefillTiles: Int32Array;
}

/** The flashinfer exports (present in addons built from this version on). */
export interface NativeAddon {
  /**
   * Quantize on write: encodes each token's K and V (core's exact formats)
   * into its slot's row; slot -1 is skipped.
   *
   * @param keys shape [numTokens, numKvHeads, headDim], float32
   * @param values shape [numTokens, numKvHeads, headDim], float32
   * @param slotMapping shape [numTokens], int32
   */
  flashinferWrite(
    cache: NativeFlashinferCache,
    keys: Float32Array,
    values: Float32Array,
    slotMapping: Int32Array,
  ): void;
  /**
   * Runs a plan for one layer: split-KV decode chunks and prefill tiles on
   * the addon's pool, then the log-sum-exp merge.
   *
   * @param query shape [numTokens, numQHeads, headDim], float32
   * @param out shape [numTokens, numQHeads, headDim], float32; written in full
   * @param kernelPath A kernel path (downgrades only), or null for `kernelPath()`.
   * @returns The kernel path that ran.
   */
  flashinferRun(
    cache: NativeFlashinferCache,
    plan: NativeFlashinferPlan,
    query: Float32Array,
    out: Float32Array,
    kernelPath: KernelPathName | null,
  ): KernelPathName;
  /**
   * Dequantized copy of cache slots, bit-exact with core's decoders.
   *
   * @param slots shape [numSlots], int32
   * @param keysOut shape [numSlots, numKvHeads, headDim], float32
   * @param valuesOut shape [numSlots, numKvHeads, headDim], float32
   */
  flashinferRead(
    cache: NativeFlashinferCache,
    slots: Int32Array,
    keysOut: Float32Array,
    valuesOut: Float32Array,
  ): void;
  /**
   * For tests: the split-KV merge. Joins n attention states, each a
   * normalised output and its log-sum-exp in base e, into `out`.
   *
   * @param v shape [n, d], float32
   * @param s shape [n], float32 (natural log)
   * @param out shape [d], float32
   * @returns The merged log-sum-exp (base e).
   */
  flashinferMergeStates(
    v: Float32Array,
    s: Float32Array,
    out: Float32Array,
  ): number;
}

// ---------------------------------------------------------------------------
// fa3 (native/src/exports_fa3.rs): 8-bit attention compute.

/**
 * One layer's cache in the fa3 native layout (see native/src/fa3/mod.rs):
 * K codes `[numBlocks, numKvHeads, headDim / 2, blockSize, 2]`, V codes
 * `[numBlocks, numKvHeads, blockSize / 2, headDim, 2]`, per-row scales
 * (int8 per_token_head only) `[numBlocks, numKvHeads, blockSize]`. Built
 * once per cache by backends/fa3; the addon reads it in place.
 */
export interface NativeFa3Cache {
  readonly dtype: "fp8_e4m3" | "int8";
  readonly numQHeads: number;
  readonly numKvHeads: number;
  /** A multiple of 16 up to 256. */
  readonly headDim: number;
  /** 16, 32 or 64. */
  readonly blockSize: number;
  readonly numBlocks: number;
  readonly softmaxScale: number;
  /** Keys a query sees, itself included; 0 = the whole prefix. */
  readonly slidingWindow: number;
  /** Logit soft-cap; 0 = off. */
  readonly softCap: number;
  readonly kScale: number;
  readonly vScale: number;
  readonly kZeroPoint: number;
  readonly vZeroPoint: number;
  /** fp8_e4m3: Uint8Array; int8: Int8Array. */
  readonly keys: Uint8Array | Int8Array;
  readonly values: Uint8Array | Int8Array;
  /** int8 per_token_head only, else null. shape [numBlocks, numKvHeads, blockSize], float32 */
  readonly keyScales: Float32Array | null;
  readonly valueScales: Float32Array | null;
}

/** The numerics switches of one fa3 attend call. */
export interface NativeFa3Settings {
  /** 1: two-level accumulation (fp32 promotion); 0: a bf16 accumulator throughout. */
  readonly promotion: 0 | 1;
  /** Blocks a partial spans before promotion, 1 to 4. */
  readonly promoteEveryBlocks: number;
}

/** The fa3 exports (merged into {@linkcode NativeAddon}). */
export interface NativeAddon {
  /**
   * fa3 reshape_and_cache: quantizes each token's K and V into its slot
   * with core's exact encoders (int8 per_token_head: a scale per row);
   * slot -1 is skipped.
   *
   * @param keys shape [numTokens, numKvHeads, headDim], float32
   * @param values shape [numTokens, numKvHeads, headDim], float32
   * @param slotMapping shape [numTokens], int32
   */
  fa3Write?(
    cache: NativeFa3Cache,
    keys: Float32Array,
    values: Float32Array,
    slotMapping: Int32Array,
  ): void;
  /**
   * fa3 paged attention in 8 bits (decode and prefill, mixed) over the
   * addon's thread pool.
   *
   * @param query shape [numTokens, numQHeads, headDim], float32
   * @param out shape [numTokens, numQHeads, headDim], float32; written in full
   * @param kernelPath As for `xformersAttend`.
   * @returns The kernel path that ran.
   */
  fa3Attend?(
    cache: NativeFa3Cache,
    batch: NativeBatch,
    query: Float32Array,
    out: Float32Array,
    kernelPath: KernelPathName | null,
    settings: NativeFa3Settings,
  ): KernelPathName;
  /**
   * Dequantized copy of cache slots, bit-exact with core's decoders.
   *
   * @param slots shape [numSlots], int32
   * @param keysOut shape [numSlots, numKvHeads, headDim], float32
   * @param valuesOut shape [numSlots, numKvHeads, headDim], float32
   */
  fa3Read?(
    cache: NativeFa3Cache,
    slots: Int32Array,
    keysOut: Float32Array,
    valuesOut: Float32Array,
  ): void;
}
