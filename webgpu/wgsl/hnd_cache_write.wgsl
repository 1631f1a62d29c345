// append_paged_kv_cache: quantizes one batch of K and V into the paged
// cache through the slot mapping (slot = page * page_size + offset; -1 is
// padding, skipped). One workgroup per (token, kv head); its invocations
// own whole u32 words of that head's row (webgpu/wgsl/kv_dtype.wgsl), so no
// two invocations write the same word and no atomics touch the cache.
// Inputs are read as bits and webgpu/wgsl/kv_encode.wgsl rounds on
// integers, so the codes equal core's codecs bit for bit.
//
// Cache layout (webgpu_cache.ts), FlashInfer's HND: codes [num_pages,
// num_kv_heads, page_size, words_per_row] u32 for K and for V; int8
// per_token_head scales [2, num_pages, num_kv_heads, page_size] fp32 bits
// (K then V), computed here as fp32(amax / 127) (1 when amax is 0).

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
const WG: u32 = 64u;
const SCALE_ONE: u32 = 0x3f800000u;
const ONE_TWENTY_SEVEN: u32 = 0x42fe0000u; // 127.0

struct Params {
  num_tokens: u32,
  num_kv_heads: u32,
  head_dim: u32,
  page_size: u32,
  num_slots: u32,
  k_scale: u32, // fp32 bits: scales are data, never constants
  v_scale: u32,
  k_zero_point: i32,
  v_zero_point: i32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> keys: array<u32>; // [num_tokens, num_kv_heads, head_dim] fp32 bits
@group(0) @binding(2) var<storage, read> values: array<u32>;
@group(0) @binding(3) var<storage, read> slot_mapping: array<i32>; // [num_tokens], -1 = padding
@group(0) @binding(4) var<storage, read_write> k_cache: array<u32>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<u32>;
@group(0) @binding(6) var<storage, read_write> token_scales: array<u32>;

var<workgroup> amax: array<atomic<u32>, 2>;

fn load_input(which: u32, i: u32) -> u32 {
  if (which == 0u) { return keys[i]; }
  return values[i];
}

// Largest finite |x| of the row, as bits (non-negative floats order like
// their bits); inf and NaN are left out, as core/int8.ts leaves them out.
fn row_amax(which: u32, src: u32, lid: u32) {
  var m = 0u;
  for (var d = lid; d < params.head_dim; d += WG) {
    let a = load_input(which, src + d) & 0x7fffffffu;
    if (a < 0x7f800000u) { m = max(m, a); }
  }
  atomicMax(&amax[which], m);
}

fn store_word(which: u32, i: u32, word: u32) {
  if (which == 0u) { k_cache[i] = word; } else { v_cache[i] = word; }
}

fn write_row(which: u32, src: u32, dst: u32, scale: u32, zp: i32, lid: u32) {
  let per_word = elems_per_word(DTYPE);
  let bits = 32u / per_word;
  for (var w = lid; w < params.head_dim / per_word; w += WG) {
    var word = 0u;
    for (var i = 0u; i < per_word; i++) {
      let code = encode_code(DTYPE, load_input(which, src + w * per_word + i), scale, zp);
      word |= code << (bits * i);
    }
    store_word(which, dst + w, word);
  }
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // Dispatches are 2-D when tokens * heads exceeds one dimension's limit.
  let item = wid.x + wid.y * groups.x;
  if (item >= params.num_tokens * params.num_kv_heads) { return; }
  let token = item / params.num_kv_heads;
  let head = item % params.num_kv_heads;
  let slot = slot_mapping[token];
  if (slot < 0 || u32(slot) >= params.num_slots) { return; }
  let page = u32(slot) / params.page_size;
  let offset = u32(slot) % params.page_size;
  let row = (page * params.num_kv_heads + head) * params.page_size + offset;
  let words_per_row = params.head_dim / elems_per_word(DTYPE);
  let src = (token * params.num_kv_heads + head) * params.head_dim;

  var k_scale = params.k_scale;
  var v_scale = params.v_scale;
  if (PER_TOKEN_HEAD) {
    row_amax(0u, src, lid);
    row_amax(1u, src, lid);
    workgroupBarrier();
    // scale = fp32(amax / 127), 1 when that is 0 (core/int8.ts).
    k_scale = div_rn(atomicLoad(&amax[0]), ONE_TWENTY_SEVEN);
    v_scale = div_rn(atomicLoad(&amax[1]), ONE_TWENTY_SEVEN);
    if (k_scale == 0u) { k_scale = SCALE_ONE; }
    if (v_scale == 0u) { v_scale = SCALE_ONE; }
    if (lid == 0u) {
      token_scales[row] = k_scale;
      token_scales[params.num_slots * params.num_kv_heads + row] = v_scale;
    }
  }
  write_row(0u, src, row * words_per_row, k_scale, params.k_zero_point, lid);
  write_row(1u, src, row * words_per_row, v_scale, params.v_zero_point, lid);
}
