// Memory-efficient prefill: one workgroup per (query head, tile of up to BQ
// consecutive query tokens of one sequence), walking the keys in tiles of
// BK with an online softmax per query row (running max m, running sum l), in
// fp32. Memory is O(tile), never O(sequence). Lane (r, c) = (lid / BK,
// lid % BK) scores query r against key c of the tile and owns output dims
// 4(c + BK i)..4(c + BK i)+3 of row r, so head_dim <= 4 * 64 with no fixed
// head size.
//
// K and V are dequantized straight from the cache, not staged in workgroup
// memory: WebGPU zero-fills workgroup memory, and for an 8 KiB tile the
// zero-fill naga emits for GL makes llvmpipe's JIT take seconds per
// pipeline. The BQ rows of a tile read the same keys, so the re-reads hit
// the cache hierarchy instead.
//
// Long contexts run as several dispatches over keys_per_pass keys each,
// carrying each row's (m, l, acc) in `state`, as decode.wgsl explains.

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
const BQ: u32 = 8u;
const BK: u32 = 8u;
const WG: u32 = BQ * BK;
const MAX_LANE_GROUPS: u32 = 8u; // 4 * BK * 8 = 256 dims
const NO_LOGIT: f32 = -3.0e38; // see decode.wgsl

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  block_size: u32,
  max_blocks: u32,
  num_slots: u32,
  window: u32, // 0 = full attention
  num_items: u32, // query tiles
  seq_lens_at: u32,
  tables_at: u32,
  token_seq_at: u32,
  token_pos_at: u32,
  items_at: u32, // tiles: (first token, token count) pairs
  k_scale: f32,
  v_scale: f32,
  k_zero_point: i32,
  v_zero_point: i32,
  sm_scale: f32,
  pass_begin: u32, // this dispatch covers keys [pass_begin, pass_begin + keys_per_pass)
  keys_per_pass: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> token_scales: array<u32>;
@group(0) @binding(6) var<storage, read> batch_meta: array<i32>; // see webgpu_batch_meta.ts
// Per (token, query head), 1 + head_dim / 4 vec4s: (m, l, -, -), then acc.
@group(0) @binding(7) var<storage, read_write> state: array<vec4<f32>>;

var<workgroup> score_s: array<f32, WG>; // scores, then probabilities

fn load_word(which: u32, i: u32) -> u32 {
  if (which == 0u) { return k_cache[i]; }
  return v_cache[i];
}

// (row index in words, scale bits, zero point bits) of key j of a sequence.
fn kv_row(which: u32, seq: u32, j: u32, kv_head: u32) -> vec3<u32> {
  let block = u32(batch_meta[params.tables_at + seq * params.max_blocks + j / params.block_size]);
  let row = (block * params.num_kv_heads + kv_head) * params.block_size + j % params.block_size;
  var scale = select(params.k_scale, params.v_scale, which == 1u);
  var zp = select(params.k_zero_point, params.v_zero_point, which == 1u);
  if (PER_TOKEN_HEAD) {
    scale = bitcast<f32>(token_scales[which * params.num_slots * params.num_kv_heads + row]);
    zp = 0;
  }
  return vec3<u32>(row * (params.head_dim / elems_per_word(DTYPE)), bitcast<u32>(scale), bitcast<u32>(zp));
}

// Key j is visible from position p when p - W < j <= p.
fn visible(j: u32, p: u32) -> bool {
  return j <= p && (params.window == 0u || j + params.window > p);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let item = wid.y;
  if (head >= params.num_q_heads || item >= params.num_items) { return; }
  let t0 = u32(batch_meta[params.items_at + 2u * item]);
  let count = u32(batch_meta[params.items_at + 2u * item + 1u]);
  let seq = u32(batch_meta[params.token_seq_at + t0]);
  let pos0 = u32(batch_meta[params.token_pos_at + t0]); // positions are consecutive
  let last = pos0 + count - 1u;
  let kv_head = head / (params.num_q_heads / params.num_kv_heads);
  let groups = params.head_dim / 4u;
  let r = lid / BK;
  let c = lid % BK;
  let row_ok = r < count;
  let pos = pos0 + r;
  let q_row = ((t0 + min(r, count - 1u)) * params.num_q_heads + head) * groups;
  // A run-time bound, so that the shader compiler does not unroll it.
  let lane_groups = (groups + BK - 1u - c) / BK;

  // Keys from the first row's window start to the last row, in this pass.
  var first = 0u;
  if (params.window > 0u && pos0 + 1u > params.window) { first = pos0 + 1u - params.window; }
  let pass_end = params.pass_begin + params.keys_per_pass;
  if (last < params.pass_begin || first >= pass_end) { return; }
  let state_row = ((t0 + min(r, count - 1u)) * params.num_q_heads + head) * (1u + groups);
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
    score_s[lid] = s * params.sm_scale;
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
    for (var i = 0u; i < lane_groups; i++) { out[q_row + c + BK * i] = acc[i] / l; }
  } else {
    if (c == 0u) { state[state_row] = vec4<f32>(m, l, 0.0, 0.0); }
    for (var i = 0u; i < lane_groups; i++) { state[state_row + 1u + c + BK * i] = acc[i]; }
  }
}
