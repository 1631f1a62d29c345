// fa3 split-KV merge: one workgroup per (query head, token); lane g owns
// output dims 4g..4g+3. attend.wgsl (split = 1) left, per pass p that the
// token sees keys of, (m_p, l_p, O_p) in state slot [p, row]: O_p and l_p
// f32 sums of P * V codes and P, relative to the pass's own max m_p. The
// merge is FlashInfer's MergeStates in f32, with m the largest m_p:
//   out = sum_p O_p exp(m_p - m) * v_scale / sum_p l_p exp(m_p - m)
// (per_token_head: v_scale 1, the V scales are in O already).
//
// The passes a token sees are exactly floor(lo / span) ..= floor(pos /
// span) for its keys [lo, pos]: each holds one of them, so each was
// written and has l_p >= 1 (its largest P quantizes to 1 or 127). Every
// other slot was skipped by attend.wgsl and is never read here.

const WG: u32 = 64u; // lanes; head_dim / 4 <= 64

struct Params {
  num_q_heads: u32,
  head_dim: u32,
  num_tokens: u32,
  span: u32, // keys per pass
  window: u32, // sliding window W; 0 = full attention
  token_pos_at: u32, // offset into plan_meta
  v_scale: f32, // 1 for per_token_head
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> plan_meta: array<i32>;
@group(0) @binding(2) var<storage, read> state: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let token = wid.y;
  let words = params.head_dim / 4u;
  if (head >= params.num_q_heads || token >= params.num_tokens || lid >= words) { return; }
  let pos = u32(plan_meta[params.token_pos_at + token]);
  var lo = 0u;
  if (params.window > 0u && pos + 1u > params.window) { lo = pos + 1u - params.window; }
  let row = token * params.num_q_heads + head;
  let rows = params.num_tokens * params.num_q_heads;
  let first = lo / params.span;
  let last = pos / params.span;
  var m = -3.0e38;
  for (var p = first; p <= last; p++) { m = max(m, state[(p * rows + row) * (1u + words)].x); }
  var l = 0.0;
  var o = vec4<f32>(0.0);
  for (var p = first; p <= last; p++) {
    let at = (p * rows + row) * (1u + words);
    let b = exp(state[at].x - m);
    l += state[at].y * b;
    o += state[at + 1u + lid] * b;
  }
  out[row * words + lid] = o * params.v_scale / l;
}
