// Rotary embedding, rotate_half layout (engine/rope.ts): dimension i pairs
// with i + head_dim/2; (a, b) -> (a cos - b sin, b cos + a sin), cos and
// sin from the host's table (the same fp32 angles as the oracle). One
// invocation per pair; in place.

const WG: u32 = 64u;

struct Params {
  num_tokens: u32,
  row_size: u32, // elements per token: num_heads * head_dim
  half_dim: u32, // head_dim / 2
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>; // [num_tokens, row_size]
@group(0) @binding(2) var<storage, read> cos_t: array<f32>; // [num_tokens, half_dim]
@group(0) @binding(3) var<storage, read> sin_t: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let pairs_per_token = params.row_size / 2u;
  let p = (wid.x + wid.y * groups.x) * WG + lid;
  if (p >= params.num_tokens * pairs_per_token) { return; }
  let t = p / pairs_per_token;
  let within = p % pairs_per_token;
  let head = within / params.half_dim;
  let i = within % params.half_dim;
  let at = t * params.row_size + head * 2u * params.half_dim + i;
  let c = cos_t[t * params.half_dim + i];
  let s = sin_t[t * params.half_dim + i];
  let a = x[at];
  let b = x[at + params.half_dim];
  x[at] = a * c - b * s;
  x[at + params.half_dim] = b * c + a * s;
}
