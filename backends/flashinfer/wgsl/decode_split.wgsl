// Split-KV decode with GQA group fusion (FlashInfer's BatchDecode with
// split-KV): one workgroup per (kv head, up to MAX_GROUP query heads of its
// group, KV chunk of one decode token). The plan cut every decode
// sequence's keys into page-aligned chunks (`work` in plan_meta: token,
// sequence, first key, end key); this kernel writes, per (chunk, query
// head), the chunk's unnormalized output `acc` and its softmax state (m, l)
// = (max logit, sum of exp(logit - m)), natural base: exp(), not exp2().
// decode_reduce.wgsl merges the chunks.
//
// Fusion: in each tile of TK keys, lane c < TK dequantizes key c once and
// scores it against every query head of the group; lane g < head_dim / 4
// then dequantizes V's dims 4g..4g+3 of each key once and accumulates them
// into every head's output. So each K/V element is loaded once for up to
// MAX_GROUP heads (larger groups take ceil(group / MAX_GROUP) workgroups).
//
// Bounded work: a chunk is at most MAX_CHUNK_KEYS (512) keys, and one
// invocation does about 53 loop iterations per key at head_dim 256 with 8
// heads, so ~27k per chunk: under llvmpipe's 65,535-iteration limit per
// invocation. Workgroup memory is TK * MAX_GROUP floats = 512 bytes.

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
const WG: u32 = 64u;
const TK: u32 = 16u; // keys per tile
const MAX_GROUP: u32 = 8u; // query heads fused per workgroup
// Below every real logit; a finite start keeps exp(m_old - m_new) free of
// inf - inf (WGSL has no infinity literal either).
const NO_LOGIT: f32 = -3.0e38;

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  page_size: u32,
  num_slots: u32,
  window: u32, // sliding window W; 0 = full attention
  num_chunks: u32,
  kv_indptr_at: u32, // offsets into plan_meta
  kv_indices_at: u32,
  last_page_len_at: u32,
  work_at: u32,
  k_scale: f32,
  v_scale: f32,
  k_zero_point: i32,
  v_zero_point: i32,
  sm_scale: f32,
  soft_cap: f32, // 0 = none
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]
@group(0) @binding(2) var<storage, read> k_cache: array<u32>;
@group(0) @binding(3) var<storage, read> v_cache: array<u32>;
@group(0) @binding(4) var<storage, read> token_scales: array<u32>;
@group(0) @binding(5) var<storage, read> plan_meta: array<i32>;
// Per (chunk, query head): acc [head_dim / 4] vec4s, and (m, l).
@group(0) @binding(6) var<storage, read_write> part_acc: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> part_ml: array<vec2<f32>>;

var<workgroup> s_s: array<f32, MAX_GROUP * TK>; // logits [head][key]

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = params.num_q_heads / params.num_kv_heads;
  let slices = (group + MAX_GROUP - 1u) / MAX_GROUP;
  let kv_head = wid.x / slices;
  let chunk = wid.y;
  if (kv_head >= params.num_kv_heads || chunk >= params.num_chunks) { return; }
  let h0 = kv_head * group + (wid.x % slices) * MAX_GROUP; // first query head
  let nh = min(MAX_GROUP, group - (wid.x % slices) * MAX_GROUP);
  let w = params.work_at + 4u * chunk;
  let token = u32(plan_meta[w]);
  let seq = u32(plan_meta[w + 1u]);
  let pos = kv_len(seq) - 1u; // a decode token is the sequence's last
  // This chunk's keys, clipped to what the token sees; the window may leave
  // nothing (lo >= hi): the chunk then reports l = 0 (see decode_reduce).
  let lo = max(u32(plan_meta[w + 2u]), window_start(pos));
  let hi = min(u32(plan_meta[w + 3u]), pos + 1u);
  let groups = params.head_dim / 4u;

  var m: array<f32, MAX_GROUP>;
  var l: array<f32, MAX_GROUP>;
  var acc: array<vec4<f32>, MAX_GROUP>;
  for (var h = 0u; h < nh; h++) { m[h] = NO_LOGIT; }
  for (var tile = lo; tile < hi; tile += TK) {
    let n = min(TK, hi - tile);
    if (lid < n) {
      // Key tile + lid, dequantized once, scored against every head.
      let k = kv_row(0u, seq, tile + lid, kv_head);
      // Zeroed by hand: naga hoists a loop-local `var` to the function's
      // start, so its implicit zero-init would run once, not every tile.
      var s: array<f32, MAX_GROUP>;
      for (var h = 0u; h < nh; h++) { s[h] = 0.0; }
      for (var g = 0u; g < groups; g++) {
        let kv = dequant4(DTYPE, 0u, k.x, g, bitcast<f32>(k.y), bitcast<i32>(k.z));
        for (var h = 0u; h < nh; h++) {
          s[h] += dot(query[(token * params.num_q_heads + h0 + h) * groups + g], kv);
        }
      }
      for (var h = 0u; h < nh; h++) { s_s[h * TK + lid] = logit(s[h]); }
    }
    workgroupBarrier();
    if (lid < groups) {
      // Online softmax per head: rescale by exp(m_old - m_new) once a tile.
      for (var h = 0u; h < nh; h++) {
        var m_new = m[h];
        for (var c = 0u; c < n; c++) { m_new = max(m_new, s_s[h * TK + c]); }
        let alpha = exp(m[h] - m_new);
        m[h] = m_new;
        l[h] *= alpha;
        acc[h] *= alpha;
      }
      // Keys past `n` are never loaded: they may be poison.
      for (var c = 0u; c < n; c++) {
        let v = kv_row(1u, seq, tile + c, kv_head);
        let vv = dequant4(DTYPE, 1u, v.x, lid, bitcast<f32>(v.y), bitcast<i32>(v.z));
        for (var h = 0u; h < nh; h++) {
          let p = exp(s_s[h * TK + c] - m[h]);
          l[h] += p;
          acc[h] += p * vv;
        }
      }
    }
    workgroupBarrier(); // s_s is rewritten by the next tile
  }
  for (var h = 0u; h < nh; h++) {
    let row = chunk * params.num_q_heads + h0 + h;
    if (lid < groups) { part_acc[row * groups + lid] = acc[h]; }
    if (lid == 0u) { part_ml[row] = vec2<f32>(m[h], l[h]); }
  }
}
