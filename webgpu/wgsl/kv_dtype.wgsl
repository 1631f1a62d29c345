// KV cache element types, numbered as webgpu_kernels.ts numbers them. Each
// kernel that includes this file declares `override DTYPE: u32`, so one
// pipeline per dtype is compiled with the other branches folded away.
//
// Storage: codes are packed little-endian into u32 words, element i of a
// row in the low bits first; a row (head_dim elements, a multiple of 8) is
// always a whole number of words, so one invocation can own whole words.
const DT_FP32: u32 = 0u;
const DT_FP16: u32 = 1u;
const DT_BF16: u32 = 2u;
const DT_FP8_E4M3: u32 = 3u;
const DT_FP8_E5M2: u32 = 4u;
const DT_INT8: u32 = 5u;

// Elements stored in one u32 word for a dtype: 1, 2 or 4.
fn elems_per_word(dtype: u32) -> u32 {
  if (dtype == DT_FP32) { return 1u; }
  if (dtype == DT_FP16 || dtype == DT_BF16) { return 2u; }
  return 4u;
}
