/**
 * The cache variants the suite covers: each KV dtype, and int8 in its three
 * scalings (symmetric per tensor, per tensor with a zero point, per token
 * and head).
 *
 * @module
 */

import type { Int8Scheme, KvCacheDtype } from "../core/dtype.ts";

/** A cache variant's name as it appears in case addresses. */
export type CacheKind =
  | KvCacheDtype
  | "int8_zp"
  | "int8_pth";

/** Every cache variant, in address order. */
export const CACHE_KINDS: readonly CacheKind[] = [
  "fp32",
  "fp16",
  "bf16",
  "fp8_e4m3",
  "fp8_e5m2",
  "int8",
  "int8_zp",
  "int8_pth",
];

/** What a cache variant means for a layer and its scales. */
export interface CacheKindInfo {
  /** The layer's KV cache dtype. */
  readonly dtype: KvCacheDtype;
  /** For int8 only: the scale granularity. */
  readonly int8Scheme?: Int8Scheme;
  /** Per-tensor int8 calibrated with a zero point (asymmetric data). */
  readonly zeroPoint: boolean;
}

/**
 * Resolves a cache variant.
 *
 * @example Usage
 * ```ts
 * import { cacheKindInfo } from "./cache_kinds.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(cacheKindInfo("int8_pth"), { dtype: "int8", int8Scheme: "per_token_head", zeroPoint: false });
 * ```
 */
export function cacheKindInfo(kind: CacheKind): CacheKindInfo {
  if (kind === "int8_zp") {
    return { dtype: "int8", int8Scheme: "per_tensor", zeroPoint: true };
  }
  if (kind === "int8_pth") {
    return { dtype: "int8", int8Scheme: "per_token_head", zeroPoint: false };
  }
  if (kind === "int8") {
    return { dtype: "int8", int8Scheme: "per_tensor", zeroPoint: false };
  }
  return { dtype: kind, zeroPoint: false };
}
