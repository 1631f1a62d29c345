/**
 * What the flashinfer backend serves: the fast paged path. Head dims 64, 128
 * and 256 (the kernels are specialised per head dim), every KV dtype with
 * dequantization fused into the inner loop, sliding window and soft-cap.
 *
 * @module
 */

import type { BackendCapabilities } from "../../core/capabilities.ts";

/** flashinfer capabilities, the same on both targets. */
export const FLASHINFER_CAPABILITIES: BackendCapabilities = {
  kvDtypes: ["fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8"],
  int8Schemes: ["per_tensor", "per_token_head"],
  headDims: [64, 128, 256],
  blockSizes: [16, 32, 64],
  layerKinds: ["full", "sliding_window"],
  softCap: true,
  lowPrecisionCompute: false,
  prefill: true,
  decode: true,
  mixedBatches: true,
};
