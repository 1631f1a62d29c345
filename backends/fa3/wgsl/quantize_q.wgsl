// Q quantized to 8 bits per (token, query head), once per attend(): the
// row's scale is fp32(amax / format max) (1 when amax is 0), as
// bench/accuracy/low_precision_emulation.ts defines it, and each element
// becomes the code of fp32(q / scale), rounded on integer bits
// (webgpu/wgsl/kv_encode.wgsl): int8 to nearest even, clamped to
// -127..127 by the scale; fp8_e4m3 to nearest even. Codes are packed four
// to a u32, element 0 in the low byte, like the cache. One workgroup per
// row; lane w owns word w (head_dim / 4 <= 64).
//
// Output `q_out`: [num_rows, head_dim / 4] code words, then per row two
// words: the scale's fp32 bits and the sum of the row's int8 codes (i32),
// which the attention kernel needs to subtract a K zero point exactly.

override DTYPE: u32 = 3u;
const WG: u32 = 64u;
const INT8_MAX: u32 = 0x42fe0000u; // 127.0
const E4M3_MAX: u32 = 0x43e00000u; // 448.0
const SCALE_ONE: u32 = 0x3f800000u;

struct Params {
  num_rows: u32, // tokens * query heads
  head_dim: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<u32>; // [num_rows, head_dim] fp32 bits
@group(0) @binding(2) var<storage, read_write> q_out: array<u32>;

var<workgroup> amax: atomic<u32>;
var<workgroup> code_sum: atomic<i32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * groups.x;
  if (row >= params.num_rows) { return; }
  let words = params.head_dim / 4u;
  let src = row * params.head_dim + 4u * lid;
  if (lid < words) {
    // Finite magnitudes order like their bits; inf and NaN are left out.
    var m = 0u;
    for (var i = 0u; i < 4u; i++) {
      let a = query[src + i] & 0x7fffffffu;
      if (a < 0x7f800000u) { m = max(m, a); }
    }
    atomicMax(&amax, m);
  }
  workgroupBarrier();
  var scale = div_rn(atomicLoad(&amax), select(E4M3_MAX, INT8_MAX, DTYPE == DT_INT8));
  if (scale == 0u) { scale = SCALE_ONE; }
  if (lid < words) {
    var word = 0u;
    var sum = 0;
    for (var i = 0u; i < 4u; i++) {
      let y = div_rn(query[src + i], scale);
      var code = 0u;
      if (DTYPE == DT_INT8) {
        code = encode_int8(y, 0);
        sum += extractBits(i32(code << 24u), 24u, 8u);
      } else {
        code = encode_e4m3(y);
      }
      word |= code << (8u * i);
    }
    q_out[row * words + lid] = word;
    atomicAdd(&code_sum, sum);
  }
  workgroupBarrier();
  if (lid == 0u) {
    let meta_at = params.num_rows * words + 2u * row;
    q_out[meta_at] = scale;
    q_out[meta_at + 1u] = bitcast<u32>(atomicLoad(&code_sum));
  }
}
