/**
 * The sizes a backend's cases use when a case does not vary them: the most
 * common value the backend declares.
 *
 * @module
 */

import { type BackendCapabilities, sizeInSet } from "../core/capabilities.ts";
import type { KvCacheDtype } from "../core/dtype.ts";

/** Head dims the suite tries, in order of preference for the default. */
export const HEAD_DIMS = [128, 64, 256, 72] as const;
/** Block sizes the suite tries. */
export const BLOCK_SIZES = [16, 8, 32, 1] as const;

/** The defaults for one backend target. */
export interface CaseDefaults {
  readonly headDim: number;
  readonly blockSize: number;
  readonly kvDtype: KvCacheDtype;
}

/**
 * Picks each default from what the capabilities declare.
 *
 * @example Usage
 * ```ts
 * import { caseDefaults } from "./defaults.ts";
 * import { REFERENCE_CAPABILITIES } from "../backends/reference/mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(caseDefaults(REFERENCE_CAPABILITIES), { headDim: 128, blockSize: 16, kvDtype: "bf16" });
 * ```
 */
export function caseDefaults(caps: BackendCapabilities): CaseDefaults {
  const headDim = HEAD_DIMS.find((d) => sizeInSet(d, caps.headDims)) ??
    firstOf(caps.headDims);
  const blockSize = BLOCK_SIZES.find((b) => sizeInSet(b, caps.blockSizes)) ??
    firstOf(caps.blockSizes);
  const preferred: KvCacheDtype[] = [
    "bf16",
    "fp16",
    "fp32",
    "fp8_e4m3",
    "int8",
    "fp8_e5m2",
  ];
  const kvDtype = preferred.find((d) => caps.kvDtypes.includes(d)) ??
    caps.kvDtypes[0];
  return { headDim, blockSize, kvDtype };
}

function firstOf(set: BackendCapabilities["headDims"]): number {
  if (Array.isArray(set)) return set[0];
  const r = set as { multipleOf: number; min: number };
  return Math.ceil(r.min / r.multipleOf) * r.multipleOf;
}
