// Merges the split-KV chunks of each decode token (FlashInfer's
// MergeStates, attention/state.cuh): one workgroup per (query head, decode
// token); lane g owns output dims 4g..4g+3. Each chunk c brings (m_c, l_c,
// acc_c) from decode_split.wgsl, natural base: l_c = sum exp(s - m_c),
// acc_c = sum exp(s - m_c) v. The merge is the online-softmax one:
//   m = max(m_a, m_b)
//   l = l_a exp(m_a - m) + l_b exp(m_b - m)
//   acc = acc_a exp(m_a - m) + acc_b exp(m_b - m)
// and the output is acc / l.
//
// The NaN edge case (state.cuh comments it too): a chunk that saw no key
// (all masked by the sliding window) has l = 0 and m = the -inf sentinel;
// with a true -inf, merging two such states computes exp(-inf - (-inf)) =
// NaN. Here the sentinel is finite and, further, empty chunks are skipped,
// so they contribute exactly nothing and never move m. Every decode token
// sees at least itself, so some chunk is non-empty and l > 0; the select()
// still writes 0, not NaN, if that ever failed.

// Shaped for long contexts (hundreds of chunks per token): first all lanes
// find the largest m together, so every chunk's weight exp(m_c - m) is
// known up front and the chunks' sums are independent; then lane (subset
// t, g) sums the chunks c = t (mod S) of dims 4g..4g+3, and the S subsets
// are added through workgroup memory.

const WG: u32 = 64u; // lanes; head_dim / 4 divides WG
const NO_LOGIT: f32 = -3.0e38;

struct Params {
  num_q_heads: u32,
  head_dim: u32,
  num_items: u32, // decode tokens
  items_at: u32, // (token, first chunk, chunk count) triples in plan_meta
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> plan_meta: array<i32>;
@group(0) @binding(2) var<storage, read> part_acc: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]

var<workgroup> max_s: array<f32, WG>;
var<workgroup> acc_s: array<vec4<f32>, WG>;
var<workgroup> l_s: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let item = wid.y;
  if (head >= params.num_q_heads || item >= params.num_items) { return; }
  let groups = params.head_dim / 4u;
  let subsets = WG / groups;
  let at = params.items_at + 3u * item;
  let token = u32(plan_meta[at]);
  let first = u32(plan_meta[at + 1u]);
  let count = u32(plan_meta[at + 2u]);
  // 1. The largest m of the non-empty chunks (empty ones: see above).
  var m = NO_LOGIT;
  for (var c = lid; c < count; c += WG) {
    let ml = part_ml[(first + c) * params.num_q_heads + head];
    if (ml.y != 0.0) { m = max(m, ml.x); }
  }
  max_s[lid] = m;
  workgroupBarrier();
  for (var i = 0u; i < WG; i++) { m = max(m, max_s[i]); }
  // 2. This lane's chunks, each weighted by exp(m_c - m) <= 1.
  let t = lid / groups;
  let g = lid % groups;
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  for (var c = t; c < count; c += subsets) {
    let row = (first + c) * params.num_q_heads + head;
    let ml = part_ml[row];
    if (ml.y == 0.0) { continue; }
    let b = exp(ml.x - m);
    l += ml.y * b;
    acc += part_acc[row * groups + g] * b;
  }
  // 3. The subsets' sums, added in subset 0.
  acc_s[lid] = acc;
  l_s[lid] = l;
  workgroupBarrier();
  if (lid >= groups) { return; }
  for (var u = 1u; u < subsets; u++) {
    acc += acc_s[u * groups + g];
    l += l_s[u * groups + g];
  }
  out[(token * params.num_q_heads + head) * groups + g] = select(vec4<f32>(0.0), acc / l, l > 0.0);
}
