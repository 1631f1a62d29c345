/**
 * The xformers WGSL kernels as sources and compiled pipelines. The .wgsl
 * files are imported as text (`with { type: "text" }`: offline, no read
 * permission, checked by `deno check`), shared helpers (webgpu/wgsl/, via
 * webgpu/kv_wgsl.ts) are prepended, and
 * the dtype and int8 scheme become override constants, so each (kernel,
 * dtype, scheme) is one pipeline compiled once per device.
 *
 * @module
 */

import type { KvCacheDtype } from "../../core/dtype.ts";
import type { LayerConfig } from "../../core/layer.ts";
import {
  KV_DECODE_WGSL as kvDecode,
  KV_DTYPE_WGSL as kvDtype,
  KV_ENCODE_WGSL as kvEncode,
  pipelineCacheFor,
} from "../../webgpu/mod.ts";
import cacheWrite from "./wgsl/cache_write.wgsl" with { type: "text" };
import decode from "./wgsl/decode.wgsl" with { type: "text" };
import prefill from "./wgsl/prefill.wgsl" with { type: "text" };

/** The number each dtype has in kv_dtype.wgsl (`DT_*`). */
export const DTYPE_IDS: Readonly<Record<KvCacheDtype, number>> = {
  fp32: 0,
  fp16: 1,
  bf16: 2,
  fp8_e4m3: 3,
  fp8_e5m2: 4,
  int8: 5,
};

/** Full WGSL sources: helpers first, then the kernel (one kernel per file). */
export const WGSL_SOURCES = {
  cacheWrite: [kvDtype, kvEncode, cacheWrite].join("\n"),
  decode: [kvDtype, kvDecode, decode].join("\n"),
  prefill: [kvDtype, kvDecode, prefill].join("\n"),
} as const;

/** Query tokens per prefill workgroup (BQ in prefill.wgsl). */
export const PREFILL_QUERY_TILE = 8;

/**
 * Keys one dispatch of decode.wgsl / prefill.wgsl covers; longer contexts
 * take several dispatches that carry the softmax state. This bounds the
 * loop iterations of one invocation: llvmpipe silently ends every loop of an
 * invocation after 65535 iterations in all (gallivm's
 * LP_MAX_TGSI_LOOP_ITERATIONS), which truncated decode past ~37k keys at
 * head_dim 128. Worst case per 64-key decode tile at head_dim 256: ~140
 * iterations (64 x 4096 / 64 = 9k per pass); per 8-key prefill tile ~160
 * (20k per pass of 1024).
 */
export const DECODE_KEYS_PER_PASS = 4096;
/** See {@linkcode DECODE_KEYS_PER_PASS}. */
export const PREFILL_KEYS_PER_PASS = 1024;

/** The three pipelines a layer's cache uses. */
export interface XformersPipelines {
  readonly cacheWrite: GPUComputePipeline;
  readonly decode: GPUComputePipeline;
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
export async function xformersPipelines(
  device: GPUDevice,
  config: LayerConfig,
): Promise<XformersPipelines> {
  const cache = pipelineCacheFor(device);
  const constants = {
    DTYPE: DTYPE_IDS[config.kvDtype],
    PER_TOKEN_HEAD: isPerTokenHead(config) ? 1 : 0,
  };
  const compile = (name: keyof typeof WGSL_SOURCES) =>
    cache.compute(WGSL_SOURCES[name], {
      constants,
      label: `xformers ${name} ${config.kvDtype}`,
    });
  const [w, d, p] = await Promise.all([
    compile("cacheWrite"),
    compile("decode"),
    compile("prefill"),
  ]);
  return { cacheWrite: w, decode: d, prefill: p };
}
