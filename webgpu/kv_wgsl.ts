/**
 * WGSL helpers that every backend's kernels share: the KV dtype numbering
 * and word packing (kv_dtype.wgsl), exact quantization on integer bits
 * (kv_encode.wgsl, bit-exact with core's codecs) and dequantization on load
 * (kv_decode.wgsl, which expects the kernel to define
 * `load_word(which: u32, i: u32) -> u32`). They live here, not in a backend,
 * because a backend must never import another backend; a kernel source is
 * these snippets joined in front of its own file.
 *
 * @example Prepending the helpers
 * ```ts
 * import { KV_DTYPE_IDS, KV_DTYPE_WGSL, KV_ENCODE_WGSL } from "./kv_wgsl.ts";
 * import assert from "node:assert/strict";
 *
 * const source = [KV_DTYPE_WGSL, KV_ENCODE_WGSL, "// my kernel"].join("\n");
 * assert.match(source, /fn encode_code/);
 * assert.equal(KV_DTYPE_IDS.int8, 5);
 * ```
 *
 * @module
 */

import type { KvCacheDtype } from "../core/dtype.ts";
import kvDtype from "./wgsl/kv_dtype.wgsl" with { type: "text" };
import kvEncode from "./wgsl/kv_encode.wgsl" with { type: "text" };
import kvDecode from "./wgsl/kv_decode.wgsl" with { type: "text" };

/** The `DT_*` constants and `elems_per_word()` of every KV dtype. */
export const KV_DTYPE_WGSL: string = kvDtype;
/** `encode_code(dtype, x_bits, scale_bits, zp)` and `div_rn()`: exact quantization. */
export const KV_ENCODE_WGSL: string = kvEncode;
/** `dequant4(dtype, which, row, g, scale, zp)`: four elements dequantized on load. */
export const KV_DECODE_WGSL: string = kvDecode;

/** The number each dtype has in kv_dtype.wgsl (`DT_*`), for `override DTYPE`. */
export const KV_DTYPE_IDS: Readonly<Record<KvCacheDtype, number>> = {
  fp32: 0,
  fp16: 1,
  bf16: 2,
  fp8_e4m3: 3,
  fp8_e5m2: 4,
  int8: 5,
};
