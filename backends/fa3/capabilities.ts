/**
 * What the fa3 backend serves: 8-bit compute. Q is quantized too and QK^T /
 * PV run as packed int8 dot products, so the cache must already be 8-bit.
 * Opt-in only: it changes the numerics.
 *
 * @module
 */

import type { BackendCapabilities } from "../../core/capabilities.ts";

/** fa3 capabilities, the same on both targets. */
export const FA3_CAPABILITIES: BackendCapabilities = {
  kvDtypes: ["fp8_e4m3", "int8"],
  int8Schemes: ["per_tensor", "per_token_head"],
  headDims: [64, 128, 256],
  blockSizes: [16, 32, 64],
  layerKinds: ["full", "sliding_window"],
  softCap: true,
  lowPrecisionCompute: true,
  prefill: true,
  decode: true,
  mixedBatches: true,
};
