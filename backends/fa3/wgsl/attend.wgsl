// fa3 paged attention in 8 bits, one workgroup per (query token, query
// head), for decode and prefill tokens alike (a token sees the keys of its
// sequence up to its own position, within the sliding window). Q comes
// quantized from quantize_q.wgsl; K and V are the cache's 8-bit codes.
// Online softmax over the cache's blocks (pages), natural base (the
// per-key steps 1 and 3 are in paged_q8.wgsl):
//
// 1. S: lane c scores key c of the block. int8: dot_i8x4 (dot4I8Packed or
//    its shift fallback) sums exactly in i32, minus zp * sum(q codes) for a
//    K zero point, then * q_scale * k_scale * sm_scale in f32. fp8_e4m3:
//    codes decoded by bit operations; exact f32 products, each added into
//    the 16-bit accumulator (accumulate.wgsl), promoted to an f32 sum every
//    DOT_CHUNK_WORDS words (32 elements) when PROMOTE is on.
// 2. When the block's max m grows: PROMOTE on: pending partials are
//    promoted first, then O and l (f32) are scaled by exp(m_old - m_new);
//    off: O and l, kept in the 16-bit accumulator, are scaled and rounded.
// 3. P = exp(S - m) quantized to 8 bits: int8 round(p * 127) (half up),
//    fp8_e4m3 to nearest even with scale 1. O and l use the quantized P.
// 4. PV, lane g owning dims 4g..4g+3. int8: the block's sums are exact in
//    i32 (minus zp * sum(P) for a V zero point); per_token_head int8 scales
//    each exact product by its token's V scale in f32. fp8_e4m3: each exact
//    product is added into the 16-bit accumulator.
//    - PROMOTE on (two-level): partials (i32, or the 16-bit accumulator)
//      are added into f32 O and l every EVERY blocks (counted by absolute
//      page index), at the last block, and before any rescale.
//    - PROMOTE off: each block's sums (int8) or products (fp8) go straight
//      into O and l in the 16-bit accumulator, for the whole sequence.
// 5. out = O * v_scale / l (per_token_head: O / l, V scales already in O).
//
// Bounded loops: llvmpipe ends loops after 65,535 iterations per
// invocation in all, so keys go in passes [pass_begin, pass_end) whose
// length is a multiple of block_size * EVERY (so a pass never splits a
// promotion group). Two ways to run them:
// - carry (split = 0): one dispatch per pass, in order; each row's (m, l,
//   O) is carried in `state`, the last pass writes the output;
// - split-KV (split = 1, PROMOTE only): one dispatch, pass wid.z, every
//   pass in parallel writing its (m, l, O) to state slot [wid.z, row];
//   merge.wgsl then merges the slots in f32 (O and l are f32 with PROMOTE,
//   and a pass ends with nothing pending), as FlashInfer's MergeStates.

override DTYPE: u32 = 3u;
override PER_TOKEN_HEAD: bool = false;
override PROMOTE: bool = true;
override EVERY: u32 = 2u; // blocks per promotion
const WG: u32 = 64u;
const DOT_CHUNK_WORDS: u32 = 8u; // fp8 QK^T: 32 elements per promoted partial
const NO_LOGIT: f32 = -3.0e38; // finite: exp(NO_LOGIT - m) is 0, never NaN

struct Params {
  num_q_heads: u32,
  num_kv_heads: u32,
  head_dim: u32,
  block_size: u32,
  num_slots: u32,
  window: u32, // sliding window W; 0 = full attention
  num_tokens: u32,
  max_blocks_per_seq: u32,
  token_seq_at: u32, // offsets into plan_meta
  token_pos_at: u32,
  tables_at: u32,
  pass_begin: u32,
  pass_end: u32,
  k_scale: f32,
  v_scale: f32,
  k_zero_point: i32, // 0 for per_token_head
  v_zero_point: i32,
  sm_scale: f32,
  soft_cap: f32, // 0 = none
  split: u32, // 1: split-KV (see the header)
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<u32>; // quantize_q.wgsl's output
@group(0) @binding(2) var<storage, read> k_cache: array<u32>;
@group(0) @binding(3) var<storage, read> v_cache: array<u32>;
@group(0) @binding(4) var<storage, read> token_scales: array<u32>;
@group(0) @binding(5) var<storage, read> plan_meta: array<i32>;
// Per (pass slot, token, query head), 1 + head_dim / 4 vec4s: (m, l, -, -),
// then O; one slot when carrying.
@group(0) @binding(6) var<storage, read_write> state: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> out: array<vec4<f32>>; // [num_tokens, num_q_heads, head_dim / 4]

var<workgroup> q_s: array<u32, 64>; // the row's Q codes
var<workgroup> s_s: array<f32, 64>; // the block's logits, then quantized P

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let token = wid.y;
  if (head >= params.num_q_heads || token >= params.num_tokens) { return; }
  let seq = u32(plan_meta[params.token_seq_at + token]);
  let pos = u32(plan_meta[params.token_pos_at + token]);
  let lo = window_start(pos);
  // Pass wid.z (split-KV; always 0 when carrying).
  let span = params.pass_end - params.pass_begin;
  let pass_begin = params.pass_begin + wid.z * span;
  let pass_end = pass_begin + span;
  if (pos < pass_begin || lo >= pass_end) { return; } // merge.wgsl skips it too
  let kv_head = head / (params.num_q_heads / params.num_kv_heads);
  let words = params.head_dim / 4u;
  let row = token * params.num_q_heads + head;
  if (lid < words) { q_s[lid] = q_in[row * words + lid]; }
  let meta_at = params.num_tokens * params.num_q_heads * words + 2u * row;
  let q_scale = bitcast<f32>(q_in[meta_at]);
  let q_sum = bitcast<i32>(q_in[meta_at + 1u]);
  var logit_scale = q_scale * params.sm_scale;
  if (!PER_TOKEN_HEAD) { logit_scale *= params.k_scale; }
  let g = min(lid, words - 1u); // lanes past head_dim / 4 idle in PV

  // O and l: f32 with PROMOTE, the 16-bit accumulator without; pending
  // partials: exact i32 (int8 per tensor) or f32 (the others).
  var m = NO_LOGIT;
  var l = 0.0;
  var o = vec4<f32>(0.0);
  var pend_o = vec4<f32>(0.0);
  var pend_l = 0.0;
  var pend_oi = vec4<i32>(0);
  var pend_li = 0;
  let state_row = (wid.z * params.num_tokens * params.num_q_heads + row) * (1u + words);
  if (params.split == 0u && lo < pass_begin) { // an earlier pass started this row
    let ml = state[state_row];
    m = ml.x;
    l = ml.y;
    o = state[state_row + 1u + g];
  }
  workgroupBarrier(); // q_s is loaded

  let last = min(pos, pass_end - 1u);
  let last_block = pos / params.block_size;
  for (var b = max(lo, pass_begin) / params.block_size; b <= last / params.block_size; b++) {
    let k0 = max(b * params.block_size, lo);
    let n = min(b * params.block_size + params.block_size - 1u, last) + 1u - k0;
    if (lid < n) { s_s[lid] = score(seq, k0 + lid, kv_head, q_sum, logit_scale); }
    workgroupBarrier();
    var m_new = m;
    for (var c = 0u; c < n; c++) { m_new = max(m_new, s_s[c]); }
    workgroupBarrier(); // every lane has read the logits
    if (m_new > m) {
      let alpha = exp(m - m_new);
      if (PROMOTE) {
        o = (o + vec4<f32>(pend_oi) + pend_o) * alpha;
        l = (l + f32(pend_li) + pend_l) * alpha;
        pend_o = vec4<f32>(0.0);
        pend_l = 0.0;
        pend_oi = vec4<i32>(0);
        pend_li = 0;
      } else {
        o = acc_round4(o * alpha);
        l = acc_round(l * alpha);
      }
      m = m_new;
    }
    if (lid < n) { s_s[lid] = quantize_p(exp(s_s[lid] - m)); }
    workgroupBarrier();
    // PV for dims 4g..4g+3 (step 4).
    var part_i = vec4<i32>(0);
    var part_f = vec4<f32>(0.0);
    var p_sum = 0;
    for (var c = 0u; c < select(0u, n, lid < words); c++) {
      let p = s_s[c];
      if (p == 0.0) { continue; } // a key P rounds to 0 adds nothing
      let vrow = key_row(seq, k0 + c, kv_head);
      let word = v_cache[vrow * words + g];
      if (DTYPE == DT_INT8) {
        let pi = i32(p);
        p_sum += pi;
        if (PER_TOKEN_HEAD) {
          part_f += vec4<f32>(pi * unpack_i8x4(word)) * token_scale(1u, vrow);
        } else {
          part_i += pi * unpack_i8x4(word);
        }
      } else if (PROMOTE) {
        pend_o = acc_round4(pend_o + p * e4m3x4(word));
        pend_l = acc_round(pend_l + p);
      } else {
        o = acc_round4(o + p * e4m3x4(word));
        l = acc_round(l + p);
      }
    }
    if (DTYPE == DT_INT8) {
      part_i -= vec4<i32>(params.v_zero_point * p_sum);
      if (PROMOTE) {
        pend_oi += part_i;
        pend_o += part_f;
        pend_li += p_sum;
      } else {
        o = acc_round4(o + vec4<f32>(part_i) + part_f);
        l = acc_round(l + f32(p_sum));
      }
    }
    if (PROMOTE && ((b + 1u) % EVERY == 0u || b == last_block)) {
      o += vec4<f32>(pend_oi) + pend_o;
      l += f32(pend_li) + pend_l;
      pend_o = vec4<f32>(0.0);
      pend_l = 0.0;
      pend_oi = vec4<i32>(0);
      pend_li = 0;
    }
    workgroupBarrier(); // s_s is rewritten by the next block
  }
  if (lid >= words) { return; }
  if (params.split == 0u && pos < pass_end) {
    let v_scale = select(params.v_scale, 1.0, PER_TOKEN_HEAD);
    out[row * words + lid] = o * v_scale / l;
  } else {
    // A pass ends on a promotion boundary: nothing is pending here.
    if (lid == 0u) { state[state_row] = vec4<f32>(m, l, 0.0, 0.0); }
    state[state_row + 1u + lid] = o;
  }
}
