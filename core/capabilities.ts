/**
 * Backend capabilities as data, and the reasons a layer falls outside them.
 * Everything a backend does not list is unsupported (vLLM v1's convention).
 *
 * @module
 */

import type { Int8Scheme, KvCacheDtype } from "./dtype.ts";
import type { LayerConfig, LayerKind } from "./layer.ts";

/** A set of sizes: an explicit list, or every multiple of a step in a range. */
export type SizeSet =
  | readonly number[]
  | { readonly multipleOf: number; readonly min: number; readonly max: number };

/** What a backend (on one target) can do. */
export interface BackendCapabilities {
  /** Cache element types the backend can store and attend over. */
  readonly kvDtypes: readonly KvCacheDtype[];
  /** int8 scale granularities; empty when int8 is not in kvDtypes. */
  readonly int8Schemes: readonly Int8Scheme[];
  /** Supported head sizes (`headDim`); kernels are often specialised per size. */
  readonly headDims: SizeSet;
  /** Supported tokens per cache block. */
  readonly blockSizes: SizeSet;
  /** Attention patterns the backend masks for (full, sliding window). */
  readonly layerKinds: readonly LayerKind[];
  /** Whether the backend applies a logit soft-cap; without it such layers go elsewhere. */
  readonly softCap: boolean;
  /** Computes QK^T and PV in 8 bits (changes numerics: opt-in only). */
  readonly lowPrecisionCompute: boolean;
  /** Batches with query length > 1 per sequence. */
  readonly prefill: boolean;
  /** Batches with query length 1 per sequence. */
  readonly decode: boolean;
  /** One batch holding both prefill and decode sequences. */
  readonly mixedBatches: boolean;
}

/**
 * Whether a size belongs to a set.
 *
 * @example Usage
 * ```ts
 * import { sizeInSet } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(sizeInSet(72, { multipleOf: 8, min: 8, max: 256 }));
 * assert.ok(!sizeInSet(72, [64, 128, 256]));
 * ```
 */
export function sizeInSet(size: number, set: SizeSet): boolean {
  if (Array.isArray(set)) return set.includes(size);
  const range = set as Exclude<SizeSet, readonly number[]>;
  return Number.isInteger(size) && size >= range.min && size <= range.max &&
    size % range.multipleOf === 0;
}

/**
 * Describes a size set for messages: "64, 128, 256" or "multiples of 8 in 8..256".
 *
 * @example Usage
 * ```ts
 * import { describeSizeSet } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(describeSizeSet([64, 128]), "64, 128");
 * ```
 */
export function describeSizeSet(set: SizeSet): string {
  if (Array.isArray(set)) return set.join(", ");
  const range = set as Exclude<SizeSet, readonly number[]>;
  return `multiples of ${range.multipleOf} in ${range.min}..${range.max}`;
}

/**
 * Every reason (not just the first) why capabilities cannot serve a layer;
 * empty when they can. Each reason is a sentence a user can act on.
 *
 * @example Usage
 * ```ts
 * import { unsupportedReasons } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * const caps = {
 *   kvDtypes: ["bf16"], int8Schemes: [], headDims: [128], blockSizes: [16],
 *   layerKinds: ["full"], softCap: false, lowPrecisionCompute: false,
 *   prefill: true, decode: true, mixedBatches: true,
 * } as const;
 * const layer = {
 *   index: 3, kind: "full", numQHeads: 8, numKvHeads: 8, headDim: 256,
 *   scale: 1 / 16, kvDtype: "fp8_e4m3", blockSize: 16,
 * } as const;
 * assert.deepEqual(unsupportedReasons(caps, layer), [
 *   "kv cache dtype fp8_e4m3 is not supported (supported: bf16)",
 *   "head_dim 256 is not supported (supported: 128)",
 * ]);
 * ```
 */
export function unsupportedReasons(
  caps: BackendCapabilities,
  layer: LayerConfig,
): string[] {
  const reasons: string[] = [];
  if (!caps.kvDtypes.includes(layer.kvDtype)) {
    reasons.push(
      `kv cache dtype ${layer.kvDtype} is not supported (supported: ${
        caps.kvDtypes.join(", ")
      })`,
    );
  } else if (layer.kvDtype === "int8") {
    const scheme = layer.int8Scheme ?? "per_tensor";
    if (!caps.int8Schemes.includes(scheme)) {
      reasons.push(
        `int8 scale scheme ${scheme} is not supported (supported: ${
          caps.int8Schemes.join(", ") || "none"
        })`,
      );
    }
  }
  if (!sizeInSet(layer.headDim, caps.headDims)) {
    reasons.push(
      `head_dim ${layer.headDim} is not supported (supported: ${
        describeSizeSet(caps.headDims)
      })`,
    );
  }
  if (!sizeInSet(layer.blockSize, caps.blockSizes)) {
    reasons.push(
      `block size ${layer.blockSize} is not supported (supported: ${
        describeSizeSet(caps.blockSizes)
      })`,
    );
  }
  if (!caps.layerKinds.includes(layer.kind)) {
    reasons.push(`${layer.kind} attention layers are not supported`);
  }
  if (layer.softCap !== undefined && !caps.softCap) {
    reasons.push(`logit soft-cap (${layer.softCap}) is not supported`);
  }
  return reasons;
}

/**
 * A layer given to a backend that does not declare support for it: the
 * capability refusal, a configuration problem the user fixes by choosing
 * another backend or dtype. It is not a `BackendError` (backend_errors.ts),
 * which a live instance raises for a bad call or its own failure; raised
 * during a serving step, the engine reports it as one (attributeBackendError).
 */
export class UnsupportedLayerError extends RangeError {
  /** Creates the error; pass `{ cause }` to keep the underlying error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnsupportedLayerError";
  }
}

/**
 * Throws an {@linkcode UnsupportedLayerError} naming the backend, the layer and
 * every reason when the capabilities cannot serve it. Backends call this in
 * createCache so that an undeclared combination is an error, never a wrong
 * answer.
 *
 * @example Usage
 * ```ts
 * import { assertSupported } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * const caps = {
 *   kvDtypes: ["bf16"], int8Schemes: [], headDims: [128], blockSizes: [16],
 *   layerKinds: ["full"], softCap: false, lowPrecisionCompute: false,
 *   prefill: true, decode: true, mixedBatches: true,
 * } as const;
 * const layer = {
 *   index: 0, kind: "full", numQHeads: 8, numKvHeads: 8, headDim: 128,
 *   scale: 1, kvDtype: "int8", blockSize: 16,
 * } as const;
 * assert.throws(() => assertSupported("mine", caps, layer), /layer 0.*int8/);
 * ```
 */
export function assertSupported(
  backend: string,
  caps: BackendCapabilities,
  layer: LayerConfig,
  extra: readonly string[] = [],
): void {
  const reasons = [...unsupportedReasons(caps, layer), ...extra];
  if (reasons.length > 0) {
    throw new UnsupportedLayerError(
      `Backend ${backend} cannot serve layer ${layer.index}: ${
        reasons.join("; ")
      }`,
    );
  }
}

/**
 * Throws when a batch needs a mode (prefill, decode, mixed) the capabilities
 * lack.
 *
 * @example Usage
 * ```ts
 * import { assertBatchSupported } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * const caps = {
 *   kvDtypes: ["bf16"], int8Schemes: [], headDims: [128], blockSizes: [16],
 *   layerKinds: ["full"], softCap: false, lowPrecisionCompute: false,
 *   prefill: false, decode: true, mixedBatches: false,
 * } as const;
 * assert.throws(
 *   () => assertBatchSupported("mine", caps, { numPrefills: 1, numDecodes: 0 }),
 *   /prefill/,
 * );
 * ```
 */
export function assertBatchSupported(
  backend: string,
  caps: BackendCapabilities,
  plan: { readonly numPrefills: number; readonly numDecodes: number },
): void {
  const reasons: string[] = [];
  if (plan.numPrefills > 0 && !caps.prefill) {
    reasons.push("prefill sequences are not supported");
  }
  if (plan.numDecodes > 0 && !caps.decode) {
    reasons.push("decode sequences are not supported");
  }
  if (plan.numPrefills > 0 && plan.numDecodes > 0 && !caps.mixedBatches) {
    reasons.push(
      "batches that mix prefill and decode are not supported: split the batch",
    );
  }
  if (reasons.length > 0) {
    throw new UnsupportedLayerError(
      `Backend ${backend} cannot run this batch: ${reasons.join("; ")}`,
    );
  }
}
