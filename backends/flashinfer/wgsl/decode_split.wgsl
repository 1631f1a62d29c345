// Split-KV decode with GQA group fusion (FlashInfer's BatchDecode with
// split-KV): one workgroup per (kv head, HEADS query heads of its group,
// KV chunk of one decode token). The plan cut every decode sequence's keys
// into page-aligned chunks (`work` in plan_meta: token, sequence, first
// key, end key); this kernel writes, per (chunk, query head), the chunk's
// unnormalized output `acc` and its softmax state (m, l) = (max logit, sum
// of exp(logit - m)), natural base: exp(), not exp2(). decode_reduce.wgsl
// merges the chunks.
//
// Shaped for a GPU's memory system: 256 lanes, all working in every step
// of a tile of TK keys.
// 1. Stage K and V: consecutive lanes load consecutive words of the tile (a
//    page holds one kv head's keys contiguously, so the loads coalesce;
//    8-bit codes come four per u32 load). K is dequantized ONCE into k_s;
//    each lane keeps its V elements in registers (v_r), so K and V loads
//    are in flight together.
// 2. Score: each (key, head) pair's dot product is split over PARTS lanes
//    (TK * HEADS * PARTS = 256 where the head dim allows), Q from
//    registers and K from workgroup memory, the parts summed through
//    s_part.
// 3. Softmax: one lane per (key, head) computes the tile's max and its own
//    exp(s - m) once; the heads' rescale factors go to alpha_s.
// 4. PV: lane (key subset, head set, g) owns dims 4g..4g+3 of the keys c =
//    subset (mod S) for the heads of its set. One head set where the final
//    sum fits, so each V element is dequantized once (8-bit decoding is
//    the costly part); the S key subsets are summed pairwise at the end.
// Page lookups for the next tile happen during step 3 (row_s is double
// buffered), so a tile takes three or four barriers.
//
// Bounded work: llvmpipe ends loops after 65,535 iterations per invocation
// in all. Per tile a lane runs at most ~2 (stage) + 16 (V) + 64 (score) +
// 16 (max) + 16 * 8 (PV) iterations, ~230 per 8 or 16 keys, so a chunk of
// MAX_CHUNK_KEYS (512) keys stays under 15k.
//
// Shapes (webgpu_kernels.ts decodeShape() picks the overrides): HEAD_DIM in
// {64, 128, 256}; HEAD_DIM / 4 / PARTS <= 16 (q_r); TK <= 16 and TK *
// (HEAD_DIM / 4 + 1) <= 528 (k_s); TK * HEADS * PARTS <= 256 (s_part);
// HEAD_SETS a power of two dividing WG / (HEAD_DIM / 4); with S = WG /
// (HEAD_DIM / 4) / HEAD_SETS, S / 2 * HEADS * HEAD_DIM / 4 <= 528 and
// S / 2 * HEADS <= 64 (the final sum).
// Workgroup memory: ~11.4 KB, under WebGPU's default 16 KiB (llvmpipe's
// first-use compile time grows with it: its zero-initialization).

override DTYPE: u32 = 0u;
override PER_TOKEN_HEAD: bool = false;
override HEAD_DIM: u32 = 128u;
override HEADS: u32 = 4u; // query heads per workgroup (fused)
override TK: u32 = 16u; // keys per tile
override PARTS: u32 = 1u; // lanes per (key, head) dot product
override HEAD_SETS: u32 = 4u; // PV: lanes per V element, one per head set
const WG: u32 = 256u;
const MAX_GROUP: u32 = 8u;
const MAX_TK: u32 = 16u;
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

// [key][g], rows padded by one vec4 so lanes scoring different keys hit
// different banks; at the end of the chunk, the PV subsets' outputs.
var<workgroup> k_s: array<vec4<f32>, 528>;
// [parity][key]: (row's first word, K scale bits, V scale bits, -).
var<workgroup> row_s: array<vec4<u32>, 32>;
var<workgroup> s_part: array<f32, 256>; // [head][key][part] when PARTS > 1
var<workgroup> s_s: array<f32, 128>; // logits [head][key]
var<workgroup> p_s: array<f32, 128>; // exp(logit - m) [head][key]
var<workgroup> alpha_s: array<f32, MAX_GROUP>; // this tile's rescale per head
var<workgroup> m_s: array<f32, MAX_GROUP>; // running max per head
var<workgroup> l_s: array<f32, 64>; // [key subset - 1][head] at the end

// Page lookups of keys tile .. tile + n into row_s[buf].
fn stage_rows(seq: u32, tile: u32, n: u32, kv_head: u32, buf: u32, lid: u32) {
  if (lid < n) {
    let k = kv_row(0u, seq, tile + lid, kv_head);
    let v = kv_row(1u, seq, tile + lid, kv_head);
    row_s[buf * MAX_TK + lid] = vec4<u32>(k.x, k.y, v.y, 0u);
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let group = params.num_q_heads / params.num_kv_heads;
  let slices = (group + HEADS - 1u) / HEADS;
  let kv_head = wid.x / slices;
  let chunk = wid.y;
  if (kv_head >= params.num_kv_heads || chunk >= params.num_chunks) { return; }
  let h0 = kv_head * group + (wid.x % slices) * HEADS; // first query head
  let nh = min(HEADS, group - (wid.x % slices) * HEADS);
  let w = params.work_at + 4u * chunk;
  let token = u32(plan_meta[w]);
  let seq = u32(plan_meta[w + 1u]);
  let pos = kv_len(seq) - 1u; // a decode token is the sequence's last
  // This chunk's keys, clipped to what the token sees; the window may leave
  // nothing (lo >= hi): the chunk then reports l = 0 (see decode_reduce).
  let lo = max(u32(plan_meta[w + 2u]), window_start(pos));
  let hi = min(u32(plan_meta[w + 3u]), pos + 1u);
  let G = HEAD_DIM / 4u;
  // PV lane (key subset sub, head set hs, g): heads hs + j * HEAD_SETS.
  let S = WG / G / HEAD_SETS; // key subsets
  let g = lid % G;
  let hs = (lid / G) % HEAD_SETS;
  let sub = lid / G / HEAD_SETS;
  let HPL = (HEADS + HEAD_SETS - 1u) / HEAD_SETS; // heads per lane
  let k_zp = select(params.k_zero_point, 0, PER_TOKEN_HEAD);
  let v_zp = select(params.v_zero_point, 0, PER_TOKEN_HEAD);

  // Step 2's item of this lane: part `part` of pair (head, key c) = `pair`
  // (TK * HEADS * PARTS <= WG: at most one item), the same head and part
  // every tile, so its slice of Q lives in registers. Heads past nh (a
  // short last slice) repeat head nh - 1; they are never written.
  let scores = lid < TK * HEADS * PARTS;
  let pair = lid / PARTS;
  let part = lid % PARTS;
  let len = G / PARTS; // <= MAX_TK
  var q_r: array<vec4<f32>, MAX_TK>;
  if (scores) {
    let q0 = (token * params.num_q_heads + h0 + min(pair / TK, nh - 1u)) * G + part * len;
    for (var j = 0u; j < len; j++) { q_r[j] = query[q0 + j]; }
  }
  if (lid < MAX_GROUP) { m_s[lid] = NO_LOGIT; }
  if (lo < hi) { stage_rows(seq, lo, min(TK, hi - lo), kv_head, 0u, lid); }
  workgroupBarrier();

  var acc: array<vec4<f32>, MAX_GROUP>;
  var l: array<f32, MAX_GROUP>;
  var m: array<f32, 2>; // running max of the heads of this lane's pairs
  var v_r: array<vec4<f32>, MAX_TK>; // this lane's V of the tile: keys sub + t * S
  m[0] = NO_LOGIT;
  m[1] = NO_LOGIT;
  var parity = 0u;
  for (var tile = lo; tile < hi; tile += TK) {
    let n = min(TK, hi - tile);
    let rows = parity * MAX_TK;
    // 1. Stage K, dequantized once, and load this lane's V of the tile
    // into registers (both in flight at once); keys past n are never
    // loaded: they may be poison.
    for (var i = lid; i < TK * G; i += WG) {
      let c = i / G;
      var k = vec4<f32>(0.0);
      if (c < n) {
        let r = row_s[rows + c];
        k = dequant4(DTYPE, 0u, r.x, i % G, bitcast<f32>(r.y), k_zp);
      }
      k_s[c * (G + 1u) + i % G] = k;
    }
    for (var t = 0u; t < TK / S; t++) {
      let c = sub + t * S;
      if (c < n) {
        let r = row_s[rows + c];
        v_r[t] = dequant4(DTYPE, 1u, r.x, g, bitcast<f32>(r.z), v_zp);
      }
    }
    workgroupBarrier();
    // 2. Scores (see `scores` above).
    if (scores) {
      let c = pair % TK;
      let kb = c * (G + 1u) + part * len;
      var s = 0.0;
      for (var j = 0u; j < len; j++) { s += dot(q_r[j], k_s[kb + j]); }
      if (PARTS == 1u) {
        s_s[pair] = select(NO_LOGIT, logit(s), c < n);
      } else {
        s_part[lid] = s;
      }
    }
    if (PARTS > 1u) {
      workgroupBarrier();
      if (lid < TK * HEADS) {
        var s = 0.0;
        for (var p = 0u; p < PARTS; p++) { s += s_part[lid * PARTS + p]; }
        s_s[lid] = select(NO_LOGIT, logit(s), lid % TK < n);
      }
    }
    workgroupBarrier();
    // 3. Softmax: one lane per pair; lanes keep their heads' max.
    for (var k = 0u; k < 2u; k++) {
      let pair = lid + k * WG;
      if (pair < TK * HEADS) {
        let h = pair / TK;
        var m_new = m[k];
        for (var c = 0u; c < n; c++) { m_new = max(m_new, s_s[h * TK + c]); }
        p_s[pair] = exp(s_s[pair] - m_new); // 0 past n: NO_LOGIT
        if (pair % TK == 0u) {
          alpha_s[h] = exp(m[k] - m_new);
          m_s[h] = m_new;
        }
        m[k] = m_new;
      }
    }
    let next = tile + TK;
    if (next < hi) { stage_rows(seq, next, min(TK, hi - next), kv_head, 1u - parity, lid); }
    workgroupBarrier();
    // 4. PV from the V loaded in step 1.
    for (var j = 0u; j < HPL; j++) {
      let a = alpha_s[min(hs + j * HEAD_SETS, HEADS - 1u)];
      acc[j] *= a;
      l[j] *= a;
    }
    for (var t = 0u; t < TK / S; t++) {
      let c = sub + t * S;
      if (c < n) {
        for (var j = 0u; j < HPL; j++) {
          let p = p_s[min(hs + j * HEAD_SETS, HEADS - 1u) * TK + c];
          l[j] += p;
          acc[j] += p * v_r[t];
        }
      }
    }
    // No barrier here: the next tile writes k_s, s_s, p_s and this row_s
    // half only after barriers every lane passes once done with them.
    parity = 1u - parity;
  }
  // Sum the key subsets pairwise into subset 0 (S is a power of two; k_s
  // is free: last read in step 2).
  for (var half = S / 2u; half > 0u; half /= 2u) {
    if (sub >= half && sub < 2u * half) {
      for (var j = 0u; j < HPL; j++) {
        let h = hs + j * HEAD_SETS;
        if (h < HEADS) {
          k_s[((sub - half) * HEADS + h) * G + g] = acc[j];
          if (g == 0u) { l_s[(sub - half) * HEADS + h] = l[j]; }
        }
      }
    }
    workgroupBarrier();
    if (sub < half) {
      for (var j = 0u; j < HPL; j++) {
        let h = min(hs + j * HEAD_SETS, HEADS - 1u);
        acc[j] += k_s[(sub * HEADS + h) * G + g];
        l[j] += l_s[sub * HEADS + h];
      }
    }
    workgroupBarrier();
  }
  if (sub == 0u) {
    for (var j = 0u; j < HPL; j++) {
      let h = hs + j * HEAD_SETS;
      if (h < nh) {
        let row = chunk * params.num_q_heads + h0 + h;
        part_acc[row * G + g] = acc[j];
        if (g == 0u) { part_ml[row] = vec2<f32>(m_s[h], l[j]); }
      }
    }
  }
}
