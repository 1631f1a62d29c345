/**
 * What the xformers backend serves: the portable baseline. Every head dim
 * that is a multiple of 8 up to 256 and every KV dtype, by dequantizing on
 * load; no soft-cap (as vLLM's xFormers backend).
 *
 * @module
 */

import type { BackendCapabilities } from "../../core/capabilities.ts";

/** xformers capabilities, the same on both targets. */
export const XFORMERS_CAPABILITIES: BackendCapabilities = {
  kvDtypes: ["fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"],
  int8Schemes: ["per_tensor", "per_token_head"],
  headDims: { multipleOf: 8, min: 8, max: 256 },
  blockSizes: [8, 16, 32],
  layerKinds: ["full", "sliding_window"],
  softCap: false,
  lowPrecisionCompute: false,
  prefill: true,
  decode: true,
  mixedBatches: true,
};
