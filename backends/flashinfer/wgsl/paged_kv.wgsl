// Page-table access shared by the flashinfer attention kernels, in
// FlashInfer's paged_kv_t form, read from the plan's one int32 buffer
// `plan_meta` (webgpu_plan.ts): sequence s owns pages
// kv_indices[kv_indptr[s] .. kv_indptr[s + 1]), every one full except the
// last, which holds kv_last_page_len[s] tokens. The including kernel
// declares `params` (with the *_at offsets, page_size, num_kv_heads,
// head_dim, num_slots, scales, sm_scale, soft_cap, window), the cache
// bindings and `plan_meta`.

fn load_word(which: u32, i: u32) -> u32 {
  if (which == 0u) { return k_cache[i]; }
  return v_cache[i];
}

// Tokens in sequence `seq`'s cache (its kv length).
fn kv_len(seq: u32) -> u32 {
  let pages = plan_meta[params.kv_indptr_at + seq + 1u] - plan_meta[params.kv_indptr_at + seq];
  return u32(pages - 1) * params.page_size + u32(plan_meta[params.last_page_len_at + seq]);
}

// (row index in words, scale bits, zero point bits) of key j of a sequence
// in the HND layout [page, kv_head, slot, head_dim] (webgpu_cache.ts).
fn kv_row(which: u32, seq: u32, j: u32, kv_head: u32) -> vec3<u32> {
  let first_page = u32(plan_meta[params.kv_indptr_at + seq]);
  let page = u32(plan_meta[params.kv_indices_at + first_page + j / params.page_size]);
  let row = (page * params.num_kv_heads + kv_head) * params.page_size + j % params.page_size;
  var scale = select(params.k_scale, params.v_scale, which == 1u);
  var zp = select(params.k_zero_point, params.v_zero_point, which == 1u);
  if (PER_TOKEN_HEAD) {
    scale = bitcast<f32>(token_scales[which * params.num_slots * params.num_kv_heads + row]);
    zp = 0;
  }
  return vec3<u32>(row * (params.head_dim / elems_per_word(DTYPE)), bitcast<u32>(scale), bitcast<u32>(zp));
}

// The first key position p can see: p - W < j (window W; 0 = full).
fn window_start(p: u32) -> u32 {
  if (params.window > 0u && p + 1u > params.window) { return p + 1u - params.window; }
  return 0u;
}

// scale * q.k, then the layer's soft-cap c * tanh(x / c) (0 = none). tanh
// is clamped: some implementations build it from exp() and return NaN
// (inf / inf) for large arguments; tanh(15) is 1 in f32 already.
fn logit(qk: f32) -> f32 {
  let s = qk * params.sm_scale;
  if (params.soft_cap > 0.0) {
    return params.soft_cap * tanh(clamp(s / params.soft_cap, -15.0, 15.0));
  }
  return s;
}
