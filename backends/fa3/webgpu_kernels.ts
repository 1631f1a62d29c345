/**
 * The fa3 WGSL kernels as sources and compiled pipelines. Each .wgsl file
 * holds one kernel or one helper (imported as text); the shared format
 * helpers of webgpu/wgsl/ are prepended. The dtype, the int8 scheme and
 * the accumulation settings are override constants, and the int8 dot
 * product is chosen by source (dot_builtin.wgsl or dot_shift.wgsl), so
 * each combination is one pipeline, compiled once per device by the shared
 * pipeline cache however many layers and instances ask for it.
 *
 * @module
 */

import type { LayerConfig } from "../../core/layer.ts";
import {
  KV_DECODE_WGSL,
  KV_DTYPE_IDS,
  KV_DTYPE_WGSL,
  KV_ENCODE_WGSL,
  pipelineCacheFor,
} from "../../webgpu/mod.ts";
import type { Fa3Settings, PackedDot } from "./settings.ts";
import cacheWrite from "../../webgpu/wgsl/hnd_cache_write.wgsl" with {
  type: "text",
};
import quantizeQ from "./wgsl/quantize_q.wgsl" with { type: "text" };
import accumulate from "./wgsl/accumulate.wgsl" with { type: "text" };
import dotBuiltin from "./wgsl/dot_builtin.wgsl" with { type: "text" };
import dotShift from "./wgsl/dot_shift.wgsl" with { type: "text" };
import pagedQ8 from "./wgsl/paged_q8.wgsl" with { type: "text" };
import attend from "./wgsl/attend.wgsl" with { type: "text" };
import merge from "./wgsl/merge.wgsl" with { type: "text" };

/** The WGSL language feature that gives dot4I8Packed and unpack4xI8. */
export const PACKED_DOT_FEATURE = "packed_4x8_integer_dot_product";

/**
 * Keys per attention dispatch. attend.wgsl does at most about head_dim / 4
 * + 2 * block_size loop iterations per block per invocation (~200 at
 * head_dim 256, block 64), so 2048 keys stay near 13k, well under
 * llvmpipe's 65,535 per invocation; a power of two, so every promotion
 * group (block_size * promoteEveryBlocks keys) ends inside one pass.
 */
export const KEYS_PER_PASS = 2048;

/**
 * Keys per pass in split-KV mode (passes run in parallel; merge.wgsl
 * merges them), before rounding up to whole promotion groups: a 32k
 * context gives 64 passes, so even one decode fills a large GPU.
 */
export const SPLIT_KEYS = 512;
/** The most bytes split-KV's per-pass states may take; larger batches carry. */
export const SPLIT_STATE_BYTES = 256 * 1024 * 1024;

/** The four kernels' full sources. */
export interface Fa3Sources {
  readonly cacheWrite: string;
  readonly quantizeQ: string;
  readonly attend: string;
  readonly merge: string;
}

const joinedSources = new Map<"builtin" | "shift", Fa3Sources>();

/** Full WGSL sources, helpers first, then the kernel (joined once per dot path). */
export function fa3Wgsl(dot: "builtin" | "shift"): Fa3Sources {
  let joined = joinedSources.get(dot);
  if (joined === undefined) {
    joined = join(dot);
    joinedSources.set(dot, joined);
  }
  return joined;
}

function join(dot: "builtin" | "shift"): Fa3Sources {
  return {
    cacheWrite: [KV_DTYPE_WGSL, KV_ENCODE_WGSL, cacheWrite].join("\n"),
    quantizeQ: [KV_DTYPE_WGSL, KV_ENCODE_WGSL, quantizeQ].join("\n"),
    attend: [
      KV_DTYPE_WGSL,
      KV_ENCODE_WGSL,
      KV_DECODE_WGSL,
      accumulate,
      dot === "builtin" ? dotBuiltin : dotShift,
      pagedQ8,
      attend,
    ].join("\n"),
    merge,
  };
}

/** Whether this runtime's WGSL has dot4I8Packed. */
export function hasPackedDot(): boolean {
  // Not in Deno's GPU types yet, though the runtime has it.
  const gpu = (globalThis.navigator as {
    gpu?: { wgslLanguageFeatures?: ReadonlySet<string> };
  } | undefined)?.gpu;
  return gpu?.wgslLanguageFeatures?.has(PACKED_DOT_FEATURE) ?? false;
}

/**
 * The int8 dot product path a setting resolves to here.
 *
 * @throws {Error} When "builtin" is asked for and the runtime lacks it.
 */
export function resolvePackedDot(choice: PackedDot): "builtin" | "shift" {
  if (choice === "shift") return "shift";
  if (hasPackedDot()) return "builtin";
  if (choice === "builtin") {
    throw new Error(
      `fa3 setting packedDot is "builtin" but this runtime's WGSL lacks the language feature ${PACKED_DOT_FEATURE}: use packedDot "auto" or "shift"`,
    );
  }
  return "shift";
}

/** The pipelines a layer's cache uses. */
export interface Fa3Pipelines {
  readonly cacheWrite: GPUComputePipeline;
  readonly quantizeQ: GPUComputePipeline;
  readonly attend: GPUComputePipeline;
  readonly merge: GPUComputePipeline;
  /** The settings attend runs with (split-KV needs promotion). */
  readonly promote: boolean;
  readonly promoteEveryBlocks: number;
  readonly splitKv: boolean;
}

/** True when this layer's int8 cache carries a scale per token and head. */
export function isPerTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}

/**
 * The pipelines for a layer and the backend's settings, from the device's
 * pipeline cache (compiled on first use).
 *
 * @throws {WgslCompileError} With the compiler's messages.
 */
export async function fa3Pipelines(
  device: GPUDevice,
  config: LayerConfig,
  settings: Fa3Settings,
  dot: "builtin" | "shift",
): Promise<Fa3Pipelines> {
  const cache = pipelineCacheFor(device);
  const sources = fa3Wgsl(dot);
  const DTYPE = KV_DTYPE_IDS[config.kvDtype];
  const PER_TOKEN_HEAD = isPerTokenHead(config) ? 1 : 0;
  const label = (name: string) => `fa3 ${name} ${config.kvDtype}`;
  const [cacheWrite, quantizeQ, attend, merge] = await Promise.all([
    cache.compute(sources.cacheWrite, {
      constants: { DTYPE, PER_TOKEN_HEAD },
      label: label("cacheWrite"),
    }),
    cache.compute(sources.quantizeQ, {
      constants: { DTYPE },
      label: label("quantizeQ"),
    }),
    cache.compute(sources.attend, {
      constants: {
        DTYPE,
        PER_TOKEN_HEAD,
        PROMOTE: settings.accumulationPromotion ? 1 : 0,
        EVERY: settings.promoteEveryBlocks,
      },
      label: label(`attend ${dot}`),
    }),
    cache.compute(sources.merge, { label: label("merge") }),
  ]);
  return {
    cacheWrite,
    quantizeQ,
    attend,
    merge,
    promote: settings.accumulationPromotion,
    promoteEveryBlocks: settings.promoteEveryBlocks,
    splitKv: settings.splitKv,
  };
}
