// RMSNorm of each row: y = (x * rsqrt(mean(x^2) + eps)) * (add_one + w),
// add_one 1 for Gemma's zero-centred weights, else 0. One workgroup per
// row, the sum of squares reduced in workgroup memory.
// GATHER: row i reads src row rows[i] (the final norm of the rows whose
// logits are wanted). ACCUMULATE: dst += y, the residual add fused after
// Gemma's post-norms (y is rounded to f32 before the add, as the oracle does).

override GATHER: bool = false;
override ACCUMULATE: bool = false;
const WG: u32 = 64u;

struct Params {
  num_rows: u32,
  dim: u32,
  eps: f32,
  add_one: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>; // [*, dim]
@group(0) @binding(2) var<storage, read> weight: array<f32>; // [dim]
@group(0) @binding(3) var<storage, read> rows: array<u32>; // [num_rows] when GATHER
@group(0) @binding(4) var<storage, read_write> dst: array<f32>; // [num_rows, dim]

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  // The row index is uniform across the workgroup, so the early return
  // leaves no invocation behind at the barriers.
  let row = wid.x + wid.y * groups.x;
  if (row >= params.num_rows) { return; }
  var src_row = row;
  if (GATHER) { src_row = rows[row]; }
  let s = src_row * params.dim;
  var ss = 0.0;
  for (var i = lid; i < params.dim; i += WG) {
    let v = src[s + i];
    ss += v * v;
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half) { partial[lid] += partial[lid + half]; }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(partial[0] / f32(params.dim) + params.eps);
  let d = row * params.dim;
  for (var i = lid; i < params.dim; i += WG) {
    let y = (src[s + i] * inv) * (params.add_one + weight[i]);
    if (ACCUMULATE) { dst[d + i] += y; } else { dst[d + i] = y; }
  }
}
