/**
 * The flashinfer WGSL kernels as sources and compiled pipelines. Each .wgsl
 * file holds one kernel (imported as text: offline, checked by `deno
 * check`); the shared format helpers of webgpu/wgsl/ and the page-table
 * helpers of wgsl/paged_kv.wgsl are prepended; the dtype and int8 scheme
 * are override constants, so each (kernel, dtype, scheme) is one pipeline,
 * compiled once per device whatever the number of layers.
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
import pagedKv from "./wgsl/paged_kv.wgsl" with { type: "text" };
import cacheWrite from "../../webgpu/wgsl/hnd_cache_write.wgsl" with {
  type: "text",
};
import decodeSplit from "./wgsl/decode_split.wgsl" with { type: "text" };
import decodeReduce from "./wgsl/decode_reduce.wgsl" with { type: "text" };
import prefill from "./wgsl/prefill.wgsl" with { type: "text" };

/** Full WGSL sources: helpers first, then the kernel. */
export const FLASHINFER_WGSL = {
  cacheWrite: [KV_DTYPE_WGSL, KV_ENCODE_WGSL, cacheWrite].join("\n"),
  decodeSplit: [KV_DTYPE_WGSL, KV_DECODE_WGSL, pagedKv, decodeSplit].join(
    "\n",
  ),
  decodeReduce,
  prefill: [KV_DTYPE_WGSL, KV_DECODE_WGSL, pagedKv, prefill].join("\n"),
} as const;

/** The largest number of query heads one decode_split workgroup fuses. */
export const MAX_FUSED_HEADS = 8;

/** decode_split.wgsl's shape overrides for a layer (see its header). */
export interface DecodeShape {
  /** Query heads one workgroup fuses (HEADS). */
  readonly heads: number;
  /** Workgroups per kv head: ceil(group / heads). */
  readonly slices: number;
  /** Keys per tile (TK). */
  readonly tileKeys: number;
  /** Lanes per (key, head) dot product (PARTS). */
  readonly parts: number;
  /** PV lanes per V element, each for its own heads (HEAD_SETS): 1 or 2. */
  readonly headSets: number;
}

/** Lanes of one decode_split workgroup (WG in the WGSL). */
export const DECODE_LANES = 256;

/**
 * decode_split's overrides: the GQA group split into even slices of at
 * most 8 heads (4 at head_dim 256, so Q fits workgroup memory), tiles of up
 * to 16 keys whose dequantized K fits 528 vec4s, each dot product split
 * over enough lanes to keep all 256 busy, and the PV lanes split by head
 * only where the key subsets' final sum needs it.
 *
 * @example
 * ```ts
 * import { decodeShape } from "./webgpu_kernels.ts";
 * import assert from "node:assert/strict";
 * // Llama-3.1-8B: GQA 4 at head_dim 128.
 * assert.deepEqual(
 *   decodeShape({ numQHeads: 32, numKvHeads: 8, headDim: 128 }),
 *   { heads: 4, slices: 1, tileKeys: 16, parts: 4, headSets: 1 },
 * );
 * assert.throws(
 *   () => decodeShape({ numQHeads: 8, numKvHeads: 8, headDim: 96 }),
 *   /head_dim 64, 128 or 256, got 96/,
 * );
 * ```
 */
export function decodeShape(
  config: Pick<LayerConfig, "numQHeads" | "numKvHeads" | "headDim">,
): DecodeShape {
  const { headDim } = config;
  if (headDim !== 64 && headDim !== 128 && headDim !== 256) {
    throw new RangeError(
      `flashinfer's WebGPU decode supports head_dim 64, 128 or 256, got ${headDim}: use one of those or another backend`,
    );
  }
  const g = headDim / 4;
  const group = config.numQHeads / config.numKvHeads;
  const slices = Math.ceil(group / (g <= 32 ? MAX_FUSED_HEADS : 4));
  const heads = Math.ceil(group / slices);
  const tileKeys = Math.min(16, Math.floor(528 / (g + 1)));
  let parts = 1;
  while (parts < g && 2 * parts * tileKeys * heads <= DECODE_LANES) {
    parts *= 2;
  }
  // One head set (each V element dequantized by one lane) unless the
  // final sum of the key subsets would overflow k_s (528 vec4s).
  let headSets = 1;
  while ((DECODE_LANES / g / headSets / 2) * heads * g > 528) headSets *= 2;
  return { heads, slices, tileKeys, parts, headSets };
}

/** Query tokens per prefill tile (the plan's tiles; prefill.wgsl packs them with the group). */
export const PREFILL_TOKEN_TILE = 8;
/**
 * The longest KV chunk decode_split.wgsl may get: ~20 loop iterations per
 * key per invocation at most (its header), so 512 keys stay near 10k, well
 * under llvmpipe's 65,535 per invocation (gallivm's
 * LP_MAX_TGSI_LOOP_ITERATIONS silently ends longer loops).
 */
export const MAX_CHUNK_KEYS = 512;
/** Keys per prefill dispatch (~20k iterations per invocation at head_dim 256). */
export const PREFILL_KEYS_PER_PASS = 1024;

/** The four pipelines a layer's cache uses. */
export interface FlashinferPipelines {
  readonly cacheWrite: GPUComputePipeline;
  readonly decodeSplit: GPUComputePipeline;
  readonly decodeReduce: GPUComputePipeline;
  readonly prefill: GPUComputePipeline;
}

/** True when this layer's int8 cache carries a scale per token and head. */
export function isPerTokenHead(config: LayerConfig): boolean {
  return config.kvDtype === "int8" && config.int8Scheme === "per_token_head";
}

/**
 * The pipelines for a layer's dtype and int8 scheme, from the device's
 * pipeline cache (compiled on first use).
 *
 * @throws {WgslCompileError} With the compiler's messages.
 */
export async function flashinferPipelines(
  device: GPUDevice,
  config: LayerConfig,
): Promise<FlashinferPipelines> {
  const cache = pipelineCacheFor(device);
  const constants = {
    DTYPE: KV_DTYPE_IDS[config.kvDtype],
    PER_TOKEN_HEAD: isPerTokenHead(config) ? 1 : 0,
  };
  const shape = decodeShape(config);
  const split = {
    ...constants,
    HEAD_DIM: config.headDim,
    HEADS: shape.heads,
    TK: shape.tileKeys,
    PARTS: shape.parts,
    HEAD_SETS: shape.headSets,
  };
  const compile = (name: keyof typeof FLASHINFER_WGSL) =>
    cache.compute(FLASHINFER_WGSL[name], {
      constants: name === "decodeReduce"
        ? {}
        : name === "decodeSplit"
        ? split
        : constants,
      label: `flashinfer ${name} ${config.kvDtype}`,
    });
  const [cacheWrite, decodeSplit, decodeReduce, prefill] = await Promise.all([
    compile("cacheWrite"),
    compile("decodeSplit"),
    compile("decodeReduce"),
    compile("prefill"),
  ]);
  return { cacheWrite, decodeSplit, decodeReduce, prefill };
}
