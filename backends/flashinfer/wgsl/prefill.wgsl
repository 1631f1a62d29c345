// Tiled online-softmax prefill over the paged cache, with GQA packed into
// the query rows as FlashInfer's prefill does: the rows of a workgroup are
// (token, query head) pairs of ONE kv head, row = token * group + head, so
// a workgroup walks a key range once for several heads of the group
// instead of once per head (group 8: one walk serves 8 heads). One
// workgroup per (kv head, block of BQ packed rows, tile of up to 8 query
// tokens of one sequence); lane (r, c) = (lid / BK, lid % BK) scores row r
// against key c of each BK-key tile and owns output dims 4(c + BK i).. of
// row r. Running max m and sum l per row, natural base, fp32.
//
// K and V are dequantized on load straight from the cache, not staged in
// workgroup memory: WebGPU zero-fills workgroup memory and, on GL llvmpipe,
// the JIT time of that zero-fill grows steeply with its size. The rows of a
// block share their kv head, so their re-reads of a key hit the caches.
//
// Long contexts run as several dispatches of keys_per_pass keys, carrying
// each row's (m, l, acc) in `state` (a pass does ~20k loop iterations per
// invocation at head_dim 256: under llvmpipe's 65,535 limit).

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
const BQ: u32 = 8u; // packed rows per workgroup
const BK: u32 = 8u; // keys per tile
const WG: u32 = BQ * BK;
const MAX_LANE_GROUPS: u32 = 8u; // 4 * BK * 8 = 256 dims
const NO_LOGIT: f32 = -3.0e38; // see decode_split.wgsl

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  page_size: u32,
  num_slots: u32,
  window: u32, // 0 = full attention
  num_tiles: u32,
  kv_indptr_at: u32, // offsets into plan_meta
  kv_indices_at: u32,
  last_page_len_at: u32,
  tiles_at: u32, // (first token, token count, sequence, first position)
  k_scale: f32,
  v_scale: f32,
  k_zero_point: i32,
  v_zero_point: i32,
  sm_scale: f32,
  soft_cap: f32, // 0 = none
  pass_begin: u32, // this dispatch covers keys [pass_begin, pass_begin + keys_per_pass)
  keys_per_pass: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // same shape
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> token_scales: array<u32>;
@group(0) @binding(6) var<storage, read> plan_meta: array<i32>;
// Per (token, query head), 1 + head_dim / 4 vec4s: (m, l, -, -), then acc.
@group(0) @binding(7) var<storage, read_write> state: array<vec4<f32>>;

var<workgroup> score_s: array<f32, WG>; // scores, then probabilities

// Key j is visible from position p when p - W < j <= p.
fn visible(j: u32, p: u32) -> bool {
  return j <= p && (params.window == 0u || j + params.window > p);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = params.num_q_heads / params.num_kv_heads;
  let kv_head = wid.x / group;
  let block = wid.x % group; // <= 8 tokens * group rows: at most `group` blocks
  let item = wid.y;
  if (kv_head >= params.num_kv_heads || item >= params.num_tiles) { return; }
  let at = params.tiles_at + 4u * item;
  let t0 = u32(plan_meta[at]);
  let count = u32(plan_meta[at + 1u]);
  let seq = u32(plan_meta[at + 2u]);
  let pos0 = u32(plan_meta[at + 3u]); // positions are consecutive
  let rows = count * group;
  if (block * BQ >= rows) { return; }
  let r = lid / BK;
  let c = lid % BK;
  let packed = min(block * BQ + r, rows - 1u);
  let row_ok = block * BQ + r < rows;
  let token = t0 + packed / group;
  let head = kv_head * group + packed % group;
  let pos = pos0 + packed / group;
  let groups = params.head_dim / 4u;
  let q_row = (token * params.num_q_heads + head) * groups;
  // A run-time bound, so that the shader compiler does not unroll it.
  let lane_groups = (groups + BK - 1u - c) / BK;

  // Keys from the block's first row's window start to its last row.
  let first = window_start(pos0 + (block * BQ) / group);
  let last = pos0 + min(rows - 1u, block * BQ + BQ - 1u) / group;
  let pass_end = params.pass_begin + params.keys_per_pass;
  if (last < params.pass_begin || first >= pass_end) { return; }
  let state_row = (token * params.num_q_heads + head) * (1u + groups);
  var m = NO_LOGIT;
  var l = 0.0;
  var acc: array<vec4<f32>, MAX_LANE_GROUPS>;
  if (first < params.pass_begin) { // an earlier pass started these rows
    let ml = state[state_row];
    m = ml.x;
    l = ml.y;
    for (var i = 0u; i < lane_groups; i++) { acc[i] = state[state_row + 1u + c + BK * i]; }
  }
  let pass_last = min(last, pass_end - 1u);
  for (var kt = max(first, params.pass_begin); kt <= pass_last; kt += BK) {
    // Keys past `pass_last` are never loaded: they may be poison.
    let n_keys = min(BK, pass_last + 1u - kt);
    var s = 0.0;
    if (c < n_keys) {
      let k = kv_row(0u, seq, kt + c, kv_head);
      for (var g = 0u; g < groups; g++) {
        s += dot(query[q_row + g], dequant4(DTYPE, 0u, k.x, g, bitcast<f32>(k.y), bitcast<i32>(k.z)));
      }
    }
    score_s[lid] = logit(s);
    workgroupBarrier();
    // Every lane of row r runs the same online-softmax update for it, then
    // publishes p for its own key c.
    var m_new = m;
    for (var cc = 0u; cc < n_keys; cc++) {
      if (row_ok && visible(kt + cc, pos)) { m_new = max(m_new, score_s[r * BK + cc]); }
    }
    let p_own = select(0.0, exp(score_s[lid] - m_new), row_ok && c < n_keys && visible(kt + c, pos));
    let alpha = exp(m - m_new);
    m = m_new;
    workgroupBarrier(); // every lane has read the scores
    score_s[lid] = p_own;
    workgroupBarrier();
    var p_sum = 0.0;
    for (var cc = 0u; cc < n_keys; cc++) { p_sum += score_s[r * BK + cc]; }
    l = l * alpha + p_sum;
    for (var i = 0u; i < lane_groups; i++) { acc[i] *= alpha; }
    for (var cc = 0u; cc < n_keys; cc++) {
      let p = score_s[r * BK + cc];
      let v = kv_row(1u, seq, kt + cc, kv_head);
      for (var i = 0u; i < lane_groups; i++) {
        acc[i] += p * dequant4(DTYPE, 1u, v.x, c + BK * i, bitcast<f32>(v.y), bitcast<i32>(v.z));
      }
    }
    workgroupBarrier(); // score_s is rewritten by the next tile
  }
  if (!row_ok) { return; }
  if (last < pass_end) {
    // The block's last pass. Rows finish together so that each row's state
    // is carried exactly when the block's is (first < pass_begin above).
    for (var i = 0u; i < lane_groups; i++) { out[q_row + c + BK * i] = acc[i] / l; }
  } else {
    if (c == 0u) { state[state_row] = vec4<f32>(m, l, 0.0, 0.0); }
    for (var i = 0u; i < lane_groups; i++) { state[state_row + 1u + c + BK * i] = acc[i]; }
  }
}
