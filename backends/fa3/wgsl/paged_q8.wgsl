// The per-key parts of fa3's attention (attend.wgsl declares `params`, the
// cache bindings, `plan_meta`, `q_s` and the overrides these read):
// addressing a key in the paged HND layout, the logit of one key (step 1
// of attend.wgsl's header) and the 8-bit quantization of P (step 3).

fn load_word(which: u32, i: u32) -> u32 {
  if (which == 0u) { return k_cache[i]; }
  return v_cache[i];
}

// Row of key j of a sequence in the HND layout [page, kv_head, slot].
fn key_row(seq: u32, j: u32, kv_head: u32) -> u32 {
  let at = params.tables_at + seq * params.max_blocks_per_seq + j / params.block_size;
  let page = u32(plan_meta[at]);
  return (page * params.num_kv_heads + kv_head) * params.block_size + j % params.block_size;
}

fn token_scale(which: u32, row: u32) -> f32 {
  return bitcast<f32>(token_scales[which * params.num_slots * params.num_kv_heads + row]);
}

// The first key position p can see: p - W < j (window W; 0 = full).
fn window_start(p: u32) -> u32 {
  if (params.window > 0u && p + 1u > params.window) { return p + 1u - params.window; }
  return 0u;
}

fn logit(s: f32) -> f32 {
  if (params.soft_cap > 0.0) {
    // Clamped: some tanh implementations give NaN (inf / inf) far out.
    return params.soft_cap * tanh(clamp(s / params.soft_cap, -15.0, 15.0));
  }
  return s;
}

// Logit of key j (step 1 of the header).
fn score(seq: u32, j: u32, kv_head: u32, q_sum: i32, logit_scale: f32) -> f32 {
  let row = key_row(seq, j, kv_head);
  let words = params.head_dim / 4u;
  let base = row * words;
  if (DTYPE == DT_INT8) {
    var acc = 0;
    for (var w = 0u; w < words; w++) { acc += dot_i8x4(q_s[w], k_cache[base + w]); }
    acc -= params.k_zero_point * q_sum;
    var s = f32(acc) * logit_scale;
    if (PER_TOKEN_HEAD) { s *= token_scale(0u, row); }
    return logit(s);
  }
  var low = 0.0;
  var sum = 0.0;
  for (var w = 0u; w < words; w++) {
    // Products of two e4m3 values are exact in f32; each add rounds.
    let pr = e4m3x4(q_s[w]) * e4m3x4(k_cache[base + w]);
    low = acc_round(acc_round(acc_round(acc_round(low + pr.x) + pr.y) + pr.z) + pr.w);
    if (PROMOTE && (w + 1u) % DOT_CHUNK_WORDS == 0u) {
      sum += low;
      low = 0.0;
    }
  }
  return logit((sum + low) * logit_scale);
}

fn quantize_p(p: f32) -> f32 {
  if (DTYPE == DT_INT8) { return floor(p * 127.0 + 0.5); }
  return e4m3_value(encode_e4m3(bitcast<u32>(p)));
}
