/**
 * The backend contract: what a module must provide for the framework to
 * serve attention through it. Two levels, as vLLM separates a backend class
 * from its implementation object:
 *
 * - {@linkcode BackendDefinition}: what a module exports. Capabilities per
 *   target are plain data, so the selector can decide without creating a GPU
 *   device or loading an addon.
 * - {@linkcode AttentionBackend}: a live instance on one target, with the
 *   kernels: cache allocation, write, plan, attend, dispose.
 *
 * Optional members are marked (optional); the core supplies the fallback.
 *
 * @module
 */

import type { PlannedBatch } from "./batch.ts";
import type { BackendCapabilities } from "./capabilities.ts";
import type { LayerConfig } from "./layer.ts";
import type { LayerKvScales } from "./scales.ts";
import type { BackendSetting } from "./settings.ts";

/**
 * The contract version. A module built against another version is refused
 * with both numbers in the message (ggml's GGML_BACKEND_API_VERSION rule).
 */
export const BACKEND_API_VERSION = 1;

/** Where a backend's kernels run. */
export type Target = "reference" | "native" | "webgpu";

/** Every target, in the order `--target auto` prefers them. */
export const TARGETS: readonly Target[] = ["native", "webgpu", "reference"];

/** A value or a promise of it: CPU targets answer at once, WebGPU may not. */
export type MaybePromise<T> = T | Promise<T>;

/** Whether a target can run here, and if not, what the user can do. */
export type Availability =
  | {
    readonly available: true;
    readonly detail?: string;
    /**
     * Runs, but in software on the CPU (a WebGPU fallback adapter such as
     * llvmpipe): `--target auto` uses it only when no other target serves
     * the layer.
     */
    readonly software?: boolean;
  }
  | { readonly available: false; readonly reason: string };

/** One layer's cache in a backend's own layout. Opaque to the core. */
export interface LayerCache {
  /** The layer this cache was created for, dtype and block size included. */
  readonly config: LayerConfig;
  /** Blocks allocated; valid block ids are 0..numBlocks-1. */
  readonly numBlocks: number;
}

/** Options for {@linkcode AttentionBackend.createCache}. */
export interface CreateCacheOptions {
  /** Blocks to allocate; block ids are 0..numBlocks-1, shared by all layers. */
  readonly numBlocks: number;
  /** This layer's k/v scales (ignored by 16/32-bit caches). */
  readonly scales: LayerKvScales;
}

/** New keys and values to store (reshape_and_cache). */
export interface WriteInput {
  /** shape [numTokens, numKvHeads, headDim], float32 */
  readonly keys: Float32Array;
  /** shape [numTokens, numKvHeads, headDim], float32 */
  readonly values: Float32Array;
  /** Cache slot of each token, block * blockSize + offset; -1 = padding, skipped. shape [numTokens], int32 */
  readonly slotMapping: Int32Array;
}

/** Queries in, attention output out. */
export interface AttendInput {
  /** shape [numTokens, numQHeads, headDim], float32 */
  readonly query: Float32Array;
  /** Written in full by attend. shape [numTokens, numQHeads, headDim], float32 */
  readonly out: Float32Array;
}

/** A dequantized copy of some cache slots (for tests and conformance). */
export interface CacheReadout {
  /** shape [numSlots, numKvHeads, headDim], float32 */
  readonly keys: Float32Array;
  /** shape [numSlots, numKvHeads, headDim], float32 */
  readonly values: Float32Array;
}

/**
 * The members of {@linkcode AttentionBackend} that act (everything but its
 * identity fields), in one list for the code that wraps or traces an
 * instance: the core guard, and conformance's phase names.
 *
 * @example Usage
 * ```ts
 * import { BACKEND_MEMBERS } from "./backend.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(BACKEND_MEMBERS.includes("attend"));
 * ```
 */
export const BACKEND_MEMBERS = [
  "cacheBytesPerBlock",
  "createCache",
  "write",
  "plan",
  "attend",
  "copyBlocks",
  "readCache",
  "disposeCache",
  "dispose",
] as const;

/** One of {@linkcode BACKEND_MEMBERS}. */
export type BackendMember = typeof BACKEND_MEMBERS[number];

/** A live backend on one target. */
export interface AttentionBackend<
  C extends LayerCache = LayerCache,
  P extends PlannedBatch = PlannedBatch,
> {
  /** The definition's name, as `--backend` and reports spell it. */
  readonly name: string;
  /** Where this instance's kernels run. */
  readonly target: Target;
  /** The definition's version, shown in conformance reports. */
  readonly version: string;
  /** What this instance serves: the target's declared capabilities. */
  readonly capabilities: BackendCapabilities;
  /** Bytes one block of this layer takes in this backend's layout, scales included. */
  cacheBytesPerBlock(config: LayerConfig): number;
  /** Allocates this layer's cache for numBlocks blocks. */
  createCache(
    config: LayerConfig,
    options: CreateCacheOptions,
  ): MaybePromise<C>;
  /** Stores new K/V through the slot mapping, quantizing with the cache's scales. */
  write(cache: C, input: WriteInput): MaybePromise<void>;
  /**
   * (optional) Derives this backend's own per-batch metadata from the core
   * plan, once per batch; every layer's attend reuses it. Fallback: the core
   * plan itself.
   */
  plan?(batch: PlannedBatch): P;
  /**
   * Paged attention for a batch mixing prefill and decode (causal, GQA).
   * Honour the layer's softmax `scale`, `slidingWindow`, `softCap` and
   * `int8Scheme`; a sequence's query tokens are its last positions (a
   * chunked prefill attends over the context already cached).
   */
  attend(cache: C, plan: P, input: AttendInput): MaybePromise<void>;
  /**
   * Copies whole blocks (copy on write after a fork), scales stored beside
   * the codes included. pairs: [src0, dst0, src1, dst1, ...], shape
   * [numPairs * 2], int32. Pairs apply in order, as if each copy finished
   * before the next began: [a, b, b, c] leaves a's data in both b and c (a
   * kernel that reads every source before writing breaks chains).
   */
  copyBlocks(cache: C, pairs: Int32Array): MaybePromise<void>;
  /**
   * (optional) Dequantized readout of slots, decoded as fp32(code * scale)
   * (int8: fp32((q - zeroPoint) * scale)). Conformance compares it bit for bit
   * with the core codecs; without it, the exact write cases are skipped and
   * writes are checked through attention only (one-hot probes and the
   * attention cases: weaker, docs/CONFORMANCE.md says how much).
   */
  readCache?(cache: C, slots: Int32Array): MaybePromise<CacheReadout>;
  /** (optional) Releases one cache early. Fallback: released by dispose(). */
  disposeCache?(cache: C): MaybePromise<void>;
  /**
   * Releases everything this instance holds. Afterwards every member but
   * cacheBytesPerBlock(), disposeCache() and dispose() itself must throw
   * (conformance calls each one).
   */
  dispose(): MaybePromise<void>;
}

/** Options a backend may receive when it is created. */
export interface CreateBackendOptions {
  /**
   * Backend-specific switches (e.g. fa3's accumulation promotion), as the
   * definition's `settings` schema declares them. Through a definition made
   * by defineBackend() (or loaded by the registry), create() receives them
   * checked, with every default filled in (core/settings.ts).
   */
  readonly settings?: Readonly<Record<string, unknown>>;
}

/** One target a backend ships, with its capabilities as data. */
export interface BackendTarget {
  /** Where this entry's kernels run. */
  readonly target: Target;
  /** What it serves, as data: the selector decides without creating it. */
  readonly capabilities: BackendCapabilities;
  /**
   * (optional) Reasons beyond the capability lists why a layer is refused
   * (e.g. a GQA ratio a kernel cannot fuse). Empty or absent means none.
   */
  extraReasons?(layer: LayerConfig): readonly string[];
  /** Is this target usable on this machine? Cheap; may load an addon or request an adapter. */
  probe(): MaybePromise<Availability>;
  /** A live instance on this target (a GPU device, a thread pool, ...). */
  create(options?: CreateBackendOptions): MaybePromise<AttentionBackend>;
}

/** What a backend module exports (see defineBackend()). */
export interface BackendDefinition {
  /** The contract version it was built against: set it to BACKEND_API_VERSION. */
  readonly apiVersion: number;
  /** Unique among loaded backends; `--backend NAME` and reports use it. */
  readonly name: string;
  /** The module's own version, for reports and bug reports. */
  readonly version: string;
  /** One line for `deno task select` and error messages. */
  readonly description: string;
  /** Only used when asked for by name; never picked automatically (e.g. fa3's 8-bit compute). */
  readonly optIn?: boolean;
  /** Each target it ships, in the order it prefers them. */
  readonly targets: readonly BackendTarget[];
  /**
   * (optional) The settings create() takes, as data: type, domain, default,
   * description and targets (core/settings.ts). Absent: none; any setting
   * given is refused with the fix.
   */
  readonly settings?: readonly BackendSetting[];
}
