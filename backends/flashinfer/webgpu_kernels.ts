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
import cacheWrite from "./wgsl/cache_write.wgsl" with { type: "text" };
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

/** Query heads one decode_split workgroup fuses (MAX_GROUP in the WGSL). */
export const MAX_FUSED_HEADS = 8;
/** Query tokens per prefill tile (the plan's tiles; prefill.wgsl packs them with the group). */
export const PREFILL_TOKEN_TILE = 8;
/**
 * The longest KV chunk decode_split.wgsl may get: ~53 loop iterations per
 * key per invocation at head_dim 256 with 8 fused heads, so 512 keys stay
 * near 27k, well under llvmpipe's 65,535 per invocation (gallivm's
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
  const compile = (name: keyof typeof FLASHINFER_WGSL) =>
    cache.compute(FLASHINFER_WGSL[name], {
      constants: name === "decodeReduce" ? {} : constants,
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
