//! One work item: query tokens `t0..t1` of one sequence, every query head
//! of one kv head's group, stepping through the sequence's keys in steps
//! of [`STEP`] (one online-softmax step: 64 keys, the emulation's default
//! block, whatever the cache's block size). Rows are (token, head); K and
//! V tiles stay in L1 for the other rows of the group.

use super::dot::{Dot, FUSED_ROWS};
use super::row_state::RowState;
use super::{layout, Batch, Cache, Codes, Settings};
use crate::formats::{fp8_e4m3, int8};
use crate::simd::Isa;
use crate::thread_pool::SharedMut;
use std::array::from_fn;

/// Keys per online-softmax step: a multiple of every block size (16, 32,
/// 64). Partials of 64 keys stay exact (see `MAX_PROMOTE_EVERY`).
pub const STEP: usize = 64;

/// Everything the items of one attend call read, and where they write.
pub struct Job<'a> {
    pub cache: Cache<'a>,
    pub batch: Batch<'a>,
    /// shape [numTokens, numQHeads, headDim]
    pub query: &'a [f32],
    /// shape [numTokens, numQHeads, headDim]; items write disjoint rows.
    pub out: SharedMut<f32>,
    pub settings: Settings,
}

/// One unit of parallel work.
#[derive(Clone, Copy, Debug)]
pub struct Item {
    pub seq: usize,
    pub kv_head: usize,
    pub t0: usize,
    pub t1: usize,
}

/// A query row quantized: int8 codes (and pairs), or e4m3 raw values
/// (and the broadcast pattern), with the factor that turns a raw dot
/// product into a logit.
struct QueryRow {
    i8: Vec<i8>,
    pairs: Vec<i32>,
    sum: i32,
    raw: Vec<f32>,
    pattern: Vec<f32>,
    logit_scale: f32,
}

fn quantize_row(x: &[f32], e4m3: bool, k_scale: f32, softmax_scale: f32) -> QueryRow {
    let d = x.len();
    let amax = x
        .iter()
        .map(|v| v.abs())
        .filter(|a| a.is_finite())
        .fold(0.0f32, f32::max);
    let max = if e4m3 { 448.0 } else { 127.0 };
    let q_scale = match (f64::from(amax) / max) as f32 {
        s if s > 0.0 => s,
        _ => 1.0,
    };
    let mut row = QueryRow {
        i8: vec![0; d],
        pairs: vec![0; d / 2],
        sum: 0,
        raw: vec![0.0; d],
        pattern: vec![0.0; d / 2 * 16],
        logit_scale: 0.0,
    };
    if e4m3 {
        for (r, v) in row.raw.iter_mut().zip(x) {
            *r = fp8_e4m3::RAW[usize::from(fp8_e4m3::encode(*v, q_scale))];
        }
        for (i, p) in row.pattern.iter_mut().enumerate() {
            *p = row.raw[2 * (i / 16) + i % 2];
        }
        // Raw values are 1/256 of the e4m3 values, on both sides.
        row.logit_scale = q_scale * k_scale * softmax_scale * 65536.0;
    } else {
        for (q, v) in row.i8.iter_mut().zip(x) {
            *q = int8::encode(*v, q_scale, 0);
        }
        for (i, p) in row.pairs.iter_mut().enumerate() {
            let (lo, hi) = (row.i8[2 * i] as i16 as u16, row.i8[2 * i + 1] as i16 as u16);
            *p = (u32::from(lo) | (u32::from(hi) << 16)) as i32;
        }
        row.sum = row.i8.iter().map(|q| i32::from(*q)).sum();
        row.logit_scale = q_scale * k_scale * softmax_scale;
    }
    row
}

/// Runs one item.
///
/// # Safety
/// The batch was validated for the layer; `D`'s features are on; no other
/// item writes these output rows.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // block k indexes tiles and buffers
pub unsafe fn run_item<D: Dot>(job: &Job, item: Item) {
    let cache = &job.cache;
    let layer = &cache.layer;
    let (g, d, bs) = (layer.group(), layer.head_dim, layer.block_size);
    let (first_token, query_len, seq_len) = job.batch.sequence(item.seq);
    let e4m3 = matches!(cache.codes, Codes::E4m3 { .. });
    let s = cache.scales;
    let k_scale = if cache.key_scales.is_some() {
        1.0
    } else {
        s.k_scale
    };
    let rows = (item.t1 - item.t0) * g;
    // Row r: query token t0 + r / g, head kv_head * g + r % g.
    let out_at = |r: usize| {
        let token = first_token + item.t0 + r / g;
        (token * layer.num_q_heads + item.kv_head * g + r % g) * d
    };
    let queries: Vec<QueryRow> = (0..rows)
        .map(|r| {
            quantize_row(
                &job.query[out_at(r)..][..d],
                e4m3,
                k_scale,
                layer.softmax_scale,
            )
        })
        .collect();
    let pos = |r: usize| seq_len - query_len + item.t0 + r / g;
    let mut states: Vec<RowState> = (0..rows).map(|_| RowState::new(d, job.settings)).collect();

    let mut raw_i = vec![0i32; rows * STEP];
    let mut raw_f = vec![0.0f32; if e4m3 { rows * STEP } else { 0 }];
    let mut logits = vec![0.0f32; STEP];
    let mut p_l = vec![0i16; STEP];
    // Per row: P codes, P pairs (int8) or P values (e4m3), the P·V sums.
    let mut p_v_all = vec![0i16; rows * STEP];
    let mut pairs_all = vec![0i32; rows * STEP / 2];
    let mut part_i_all = vec![0i32; rows * d];
    let f_len = if e4m3 { rows } else { 0 };
    let (mut p_f_all, mut acc2_all) = (vec![0.0f32; f_len * STEP], vec![0.0f32; f_len * 2 * d]);
    let mut part = vec![0.0f32; d + 1];
    let mut seen: Vec<Option<(usize, usize)>> = vec![None; rows];
    let pv_rows = (1..=FUSED_ROWS.min(g))
        .rev()
        .find(|n| g % n == 0)
        .unwrap_or(1);
    let (mut factors, mut l_parts, mut v_zp_sums) =
        (vec![1.0f32; rows], vec![0.0f32; rows], vec![0i32; rows]);
    let (mut k_rows, mut v_rows) = (vec![1.0f32; STEP], vec![1.0f32; STEP]);
    // e4m3: the step's K and V tiles as raw f32, converted once for all rows.
    let f32_len = if e4m3 { STEP * d } else { 0 };
    let (mut k_f32, mut v_f32) = (vec![0.0f32; f32_len], vec![0.0f32; f32_len]);
    let lo_all = layer.first_visible(pos(0));
    let hi_all = pos(rows - 1) + 1;
    // One online-softmax step spans STEP keys (STEP / bs cache blocks).
    for step0 in (lo_all / STEP * STEP..hi_all).step_by(STEP) {
        let n_blocks = (hi_all - step0).div_ceil(bs).min(STEP / bs);
        let mut tiles = [(0usize, 0usize); STEP / 16];
        for (k, t) in tiles[..n_blocks].iter_mut().enumerate() {
            let block = job.batch.block(item.seq, step0 / bs + k);
            *t = (
                layout::tile(layer, block, item.kv_head),
                layer.row(block, item.kv_head, 0),
            );
            if let (Some(ks), Some(vs)) = (cache.key_scales, cache.value_scales) {
                k_rows[k * bs..(k + 1) * bs].copy_from_slice(&ks[t.1..t.1 + bs]);
                v_rows[k * bs..(k + 1) * bs].copy_from_slice(&vs[t.1..t.1 + bs]);
            }
        }
        let span = n_blocks * bs;
        if let Codes::E4m3 { keys, values } = cache.codes {
            for (k, (tile, _)) in tiles[..n_blocks].iter().enumerate() {
                let at = k * bs * d;
                D::convert_e4m3(keys.as_ptr().add(*tile), bs * d, k_f32.as_mut_ptr().add(at));
                D::convert_e4m3(
                    values.as_ptr().add(*tile),
                    bs * d,
                    v_f32.as_mut_ptr().add(at),
                );
            }
        }
        // QK for up to FUSED_ROWS rows at a time: each K tile is read once
        // for the group (the keys any of them sees; masked per row below).
        for r0 in (0..rows).step_by(FUSED_ROWS) {
            let n = FUSED_ROWS.min(rows - r0);
            let (lo, hi) = (layer.first_visible(pos(r0)), pos(r0 + n - 1) + 1);
            let (j0, j1) = (lo.max(step0), hi.min(step0 + span));
            if j0 >= j1 {
                continue;
            }
            let (k0, k1) = ((j0 - step0) / bs, (j1 - step0 - 1) / bs + 1);
            let rs = &queries[r0..r0 + n];
            match cache.codes {
                Codes::I8 { keys, .. } => {
                    let qs: [&[i8]; FUSED_ROWS] = from_fn(|i| &rs[i.min(n - 1)].i8[..]);
                    let qps: [&[i32]; FUSED_ROWS] = from_fn(|i| &rs[i.min(n - 1)].pairs[..]);
                    for k in k0..k1 {
                        let base = raw_i.as_mut_ptr().add(r0 * STEP + k * bs);
                        let outs: [*mut i32; FUSED_ROWS] = from_fn(|i| base.add(i * STEP));
                        let kt = keys.as_ptr().add(tiles[k].0);
                        D::qk_i8_rows(kt, bs, d, &qs[..n], &qps[..n], &outs[..n]);
                    }
                }
                Codes::E4m3 { .. } => {
                    let qs: [&[f32]; FUSED_ROWS] = from_fn(|i| &rs[i.min(n - 1)].raw[..]);
                    let qpats: [&[f32]; FUSED_ROWS] = from_fn(|i| &rs[i.min(n - 1)].pattern[..]);
                    for k in k0..k1 {
                        let base = raw_f.as_mut_ptr().add(r0 * STEP + k * bs);
                        let outs: [*mut f32; FUSED_ROWS] = from_fn(|i| base.add(i * STEP));
                        let kt = k_f32.as_ptr().add(k * bs * d);
                        D::qk_e4m3_rows(kt, bs, d, &qs[..n], &qpats[..n], &outs[..n]);
                    }
                }
            }
        }
        // Softmax step per row; P quantized into the row's buffers.
        for r in 0..rows {
            let (lo, hi) = (layer.first_visible(pos(r)), pos(r) + 1);
            let (j0, j1) = (lo.max(step0), hi.min(step0 + span));
            if j0 >= j1 {
                seen[r] = None;
                continue;
            }
            let (j0, j1) = (j0 - step0, j1 - step0);
            seen[r] = Some((j0, j1));
            let q = &queries[r];
            match cache.codes {
                Codes::I8 { .. } => {
                    let zp_sum = s.k_zero_point * q.sum;
                    let raw = &raw_i[r * STEP..];
                    for t in j0..j1 {
                        logits[t] = (raw[t] - zp_sum) as f32 * q.logit_scale * k_rows[t];
                    }
                }
                Codes::E4m3 { .. } => {
                    let raw = &raw_f[r * STEP..];
                    for t in j0..j1 {
                        logits[t] = raw[t] * q.logit_scale;
                    }
                }
            }
            if let Some(cap) = cache.soft_cap {
                for x in &mut logits[j0..j1] {
                    *x = cap * (*x / cap).tanh();
                }
            }
            logits[..j0].fill(f32::NEG_INFINITY);
            logits[j1..].fill(f32::NEG_INFINITY);
            let step_max = logits[j0..j1]
                .iter()
                .fold(f32::NEG_INFINITY, |a, x| a.max(*x));
            let state = &mut states[r];
            state.observe_max(step_max);
            let m = D::S::splat(state.m);
            for t in (0..STEP).step_by(D::S::LANES) {
                let at = logits.as_mut_ptr().add(t);
                D::S::store(at, D::S::exp(D::S::sub(D::S::load(at), m)));
            }
            factors[r] = 1.0;
            match cache.codes {
                Codes::I8 { .. } => {
                    let quantize = |p: f32| (p * 255.0 + 0.5).floor() as i16;
                    let p_v = &mut p_v_all[r * STEP..(r + 1) * STEP];
                    for t in 0..STEP {
                        p_l[t] = quantize(logits[t]);
                    }
                    if cache.value_scales.is_some() {
                        // Fold each key's V scale into P, relative to the
                        // step's largest, so one integer sum serves all.
                        let factor = v_rows[j0..j1].iter().fold(0.0f32, |a, x| a.max(*x));
                        for t in 0..STEP {
                            p_v[t] = quantize(logits[t] * v_rows[t] / factor);
                        }
                        factors[r] = factor;
                    } else {
                        p_v.copy_from_slice(&p_l);
                    }
                    let pairs = &mut pairs_all[r * STEP / 2..(r + 1) * STEP / 2];
                    for (j, pair) in pairs.iter_mut().enumerate() {
                        let (lo, hi) = (p_v[2 * j] as u16, p_v[2 * j + 1] as u16);
                        *pair = (u32::from(lo) | (u32::from(hi) << 16)) as i32;
                    }
                    let v_sum: i32 = p_v.iter().map(|p| i32::from(*p)).sum();
                    v_zp_sums[r] = s.v_zero_point * v_sum;
                    let l: i32 = p_l.iter().map(|p| i32::from(*p)).sum();
                    // l stays Σ round(255 p) after the step's factor.
                    l_parts[r] = l as f32 / factors[r];
                }
                Codes::E4m3 { .. } => {
                    let p_f = &mut p_f_all[r * STEP..(r + 1) * STEP];
                    for t in 0..STEP {
                        p_f[t] = fp8_e4m3::decode(fp8_e4m3::encode(logits[t], 1.0), 1.0);
                    }
                    l_parts[r] = p_f[j0..j1].iter().sum();
                }
            }
        }
        // P·V for up to FUSED_ROWS rows of one token (same keys) at a
        // time, a divisor of the group so no call spans two tokens: each V
        // tile is read once for all of them.
        for r0 in (0..rows).step_by(pv_rows) {
            let n = pv_rows;
            let Some((j0, j1)) = seen[r0] else { continue };
            let (k0, k1) = (j0 / bs, (j1 - 1) / bs + 1);
            match cache.codes {
                Codes::I8 { values, .. } => {
                    part_i_all[r0 * d..(r0 + n) * d].fill(0);
                    let ps: [&[i16]; FUSED_ROWS] =
                        from_fn(|i| &p_v_all[(r0 + i.min(n - 1)) * STEP..]);
                    let base = part_i_all.as_mut_ptr().add(r0 * d);
                    let accs: [*mut i32; FUSED_ROWS] = from_fn(|i| base.add(i * d));
                    for k in k0..k1 {
                        let pps: [&[i32]; FUSED_ROWS] =
                            from_fn(|i| &pairs_all[(r0 + i.min(n - 1)) * STEP / 2 + k * bs / 2..]);
                        let ps_k: [&[i16]; FUSED_ROWS] = from_fn(|i| &ps[i][k * bs..]);
                        let vt = values.as_ptr().add(tiles[k].0);
                        D::pv_i8_rows(vt, bs, d, &ps_k[..n], &pps[..n], &accs[..n]);
                    }
                }
                Codes::E4m3 { .. } => {
                    acc2_all[r0 * 2 * d..(r0 + n) * 2 * d].fill(0.0);
                    let base = acc2_all.as_mut_ptr().add(r0 * 2 * d);
                    let accs: [*mut f32; FUSED_ROWS] = from_fn(|i| base.add(i * 2 * d));
                    for k in k0..k1 {
                        let (t0, t1) = (j0.max(k * bs) - k * bs, j1.min(k * bs + bs) - k * bs);
                        let ps: [&[f32]; FUSED_ROWS] =
                            from_fn(|i| &p_f_all[(r0 + i.min(n - 1)) * STEP + k * bs..]);
                        let vt = v_f32.as_ptr().add(k * bs * d);
                        D::pv_e4m3_rows(vt, d, t0, t1, &ps[..n], &accs[..n]);
                    }
                }
            }
        }
        for r in 0..rows {
            if seen[r].is_none() {
                continue;
            }
            match cache.codes {
                Codes::I8 { .. } => {
                    for (x, i) in part.iter_mut().zip(&part_i_all[r * d..(r + 1) * d]) {
                        *x = (*i - v_zp_sums[r]) as f32;
                    }
                }
                Codes::E4m3 { .. } => {
                    let acc2 = &acc2_all[r * 2 * d..];
                    for e in 0..d {
                        part[e] = acc2[2 * e] + acc2[2 * e + 1];
                    }
                }
            }
            part[d] = l_parts[r];
            states[r].add_block(&part, factors[r]);
        }
    }

    let v_factor = match cache.codes {
        Codes::I8 { .. } if cache.value_scales.is_some() => 1.0,
        Codes::I8 { .. } => s.v_scale,
        Codes::E4m3 { .. } => s.v_scale * 256.0,
    };
    for (r, state) in states.iter_mut().enumerate() {
        let o = state.finish();
        let out = job.out.0.add(out_at(r));
        for e in 0..d {
            *out.add(e) = o[e] / o[d] * v_factor;
        }
    }
}
