// PagedAttention-v1-style decode: one workgroup per (query token, query
// head), one pass over the sequence's blocks in tiles of WG keys. Each lane
// scores one key of the tile (dequantizing K on load), the tile's max and
// sum are reduced in workgroup memory, and the output is rescaled online
// (running max m, running sum l), all in fp32. Lane i owns output dims
// 4i..4i+3, so head_dim <= 4 * WG = 256 with no fixed head size.
//
// Workgroup memory is kept to two WG-float arrays: WebGPU zero-fills it, and
// the zero-fill naga emits for GL costs llvmpipe's JIT time that grows with
// its size (seconds at 8 KiB). The query row is read from the buffer by
// every lane instead; they all read the same row, which caches serve.
//
// Long contexts run as several dispatches ("passes"), each over at most
// keys_per_pass keys, carrying (m, l, acc) between them in `state`: work per
// invocation stays bounded, which llvmpipe needs (it ends every loop of an
// invocation after 65535 iterations in all, gallivm's loop limiter) and
// which keeps any GPU's watchdog away.

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
const WG: u32 = 64u;
// Below every real logit; a finite start keeps exp(m_old - m_new) free of
// inf - inf (WGSL has no infinity literal either).
const NO_LOGIT: f32 = -3.0e38;

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  block_size: u32,
  max_blocks: u32, // block table row width
  num_slots: u32,
  window: u32, // sliding window W; 0 = full attention
  num_items: u32, // query tokens this dispatch serves
  seq_lens_at: u32, // offsets into `batch_meta`
  tables_at: u32,
  token_seq_at: u32,
  token_pos_at: u32,
  items_at: u32,
  k_scale: f32,
  v_scale: f32,
  k_zero_point: i32,
  v_zero_point: i32,
  sm_scale: f32,
  pass_begin: u32, // this dispatch covers keys [pass_begin, pass_begin + keys_per_pass)
  keys_per_pass: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> query: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>; // same shape
@group(0) @binding(3) var<storage, read> k_cache: array<u32>;
@group(0) @binding(4) var<storage, read> v_cache: array<u32>;
@group(0) @binding(5) var<storage, read> token_scales: array<u32>;
@group(0) @binding(6) var<storage, read> batch_meta: array<i32>; // see webgpu_batch_meta.ts
// Per (token, query head), 1 + head_dim / 4 vec4s: (m, l, -, -), then acc.
@group(0) @binding(7) var<storage, read_write> state: array<vec4<f32>>;

var<workgroup> p_s: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

fn load_word(which: u32, i: u32) -> u32 {
  if (which == 0u) { return k_cache[i]; }
  return v_cache[i];
}

// (row index in words, scale, zero point) of key j of a sequence.
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

// Tree reduction over red_s (max when `take_max`, else sum); every lane gets it.
fn reduce(v: f32, take_max: bool, lid: u32) -> f32 {
  red_s[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let o = red_s[lid + stride];
      red_s[lid] = select(red_s[lid] + o, max(red_s[lid], o), take_max);
    }
    workgroupBarrier();
  }
  let r = red_s[0];
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let item = wid.y;
  if (head >= params.num_q_heads || item >= params.num_items) { return; }
  let token = u32(batch_meta[params.items_at + item]);
  let seq = u32(batch_meta[params.token_seq_at + token]);
  let pos = u32(batch_meta[params.token_pos_at + token]);
  let kv_head = head / (params.num_q_heads / params.num_kv_heads);
  let groups = params.head_dim / 4u;
  let q_row = (token * params.num_q_heads + head) * groups;

  // Keys p - W < j <= p (the layer's window), else 0 <= j <= p; this pass
  // takes those in [pass_begin, pass_end).
  var first = 0u;
  if (params.window > 0u && pos + 1u > params.window) { first = pos + 1u - params.window; }
  let pass_end = params.pass_begin + params.keys_per_pass;
  if (pos < params.pass_begin || first >= pass_end) { return; }
  let state_row = (token * params.num_q_heads + head) * (1u + groups);
  var m = NO_LOGIT;
  var l = 0.0;
  var acc = vec4<f32>(0.0);
  if (first < params.pass_begin) { // an earlier pass started this row
    let ml = state[state_row];
    m = ml.x;
    l = ml.y;
    if (lid < groups) { acc = state[state_row + 1u + lid]; }
  }
  let last = min(pos, pass_end - 1u);
  for (var tile = max(first, params.pass_begin); tile <= last; tile += WG) {
    let j = tile + lid;
    var s = NO_LOGIT;
    if (j <= last) {
      let k = kv_row(0u, seq, j, kv_head);
      var qk = 0.0;
      for (var g = 0u; g < groups; g++) {
        qk += dot(query[q_row + g], dequant4(DTYPE, 0u, k.x, g, bitcast<f32>(k.y), bitcast<i32>(k.z)));
      }
      s = qk * params.sm_scale;
    }
    let m_new = max(m, reduce(s, true, lid));
    // Keys past `last` get p = 0 and their values are never loaded (they
    // may be another sequence's data or poison).
    let p = select(0.0, exp(s - m_new), j <= last);
    p_s[lid] = p;
    let alpha = exp(m - m_new);
    l = l * alpha + reduce(p, false, lid);
    acc *= alpha;
    if (lid < groups) {
      let n = min(WG, last + 1u - tile);
      for (var jj = 0u; jj < n; jj++) {
        let v = kv_row(1u, seq, tile + jj, kv_head);
        acc += p_s[jj] * dequant4(DTYPE, 1u, v.x, lid, bitcast<f32>(v.y), bitcast<i32>(v.z));
      }
    }
    m = m_new;
    workgroupBarrier(); // p_s is rewritten by the next tile
  }
  if (pos < pass_end) {
    if (lid < groups) { out[q_row + lid] = acc / l; }
  } else {
    if (lid == 0u) { state[state_row] = vec4<f32>(m, l, 0.0, 0.0); }
    if (lid < groups) { state[state_row + 1u + lid] = acc; }
  }
}
