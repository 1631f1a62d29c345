//! Memory-efficient prefill (xFormers' / FlashAttention's tiling): one work
//! item is a tile of query tokens of one sequence and one kv head; its rows
//! are (token, query head of the group). It walks the visible K/V blocks
//! once, keeping per row a running max `m`, sum `l` and output accumulator
//! (online softmax), so no more than one block of scores ever exists.
//!
//! Masks (causal, sliding window) apply per row within a block. The NaN
//! edge case of online softmax: a row with nothing visible yet has m = -inf
//! and `exp(m - m_new)` would be `exp(-inf + inf)`; such rows skip the block
//! (every row sees at least its own key, so `l > 0` at the end).

use super::attend::Job;
use super::scratch::Scratch;
use super::tile::{accumulate_rows, exp_and_sum, load_queries, score_tile, PvArgs, TileArgs};
use super::{blocks_of, round_up};
use crate::simd::{Codes, Isa};

/// Query rows per prefill item: accumulators of 64 rows of headDim 256 are
/// 64 KiB, which L2 holds beside the block being read.
pub const TILE_ROWS: usize = 64;

/// Attention for query tokens `t0..t1` (offsets within sequence `seq`'s
/// query) and the query heads of `kv_head`.
///
/// # Safety
/// As [`super::decode::decode`], for these output rows.
#[inline(always)]
pub unsafe fn prefill<S: Isa, C: Codes>(
    job: &Job<'_, C::T>,
    seq: usize,
    t0: usize,
    t1: usize,
    kv_head: usize,
) {
    let layer = &job.layer;
    let (g, d, bs) = (layer.group(), layer.head_dim, layer.block_size);
    let (dp, sp) = (round_up(d, S::LANES), round_up(bs, S::LANES));
    let (first_token, query_len, seq_len) = job.batch.sequence(seq);
    let base = seq_len - query_len;
    let rows = (t1 - t0) * g;
    let pos = |r: usize| base + t0 + r / g;
    let (lo, hi) = (layer.first_visible(pos(0)), pos(rows - 1) + 1);
    let kv = &job.kv;
    let (keys, values) = (kv.keys.as_ptr(), kv.values.as_ptr());

    let mut scratch = Scratch::take(2 * rows * dp + rows * sp + 3 * rows);
    let [q, acc, s, q_sums, m, l] =
        scratch.split([rows * dp, rows * dp, rows * sp, rows, rows, rows]);
    let q_row =
        |r: usize| ((first_token + t0 + r / g) * layer.num_q_heads + kv_head * g + r % g) * d;
    load_queries(job.query, q_row, d, job.q_factor(), q, dp, q_sums);
    let k_zp = job.k_zero_point();
    q_sums.iter_mut().for_each(|x| *x *= k_zp);
    acc.fill(0.0);
    m.fill(f32::NEG_INFINITY);
    l.fill(0.0);

    for (b, j0, j1) in blocks_of(lo, hi, bs) {
        // Scores of the whole tile; keys count from its first, `start`.
        let (block, start) = (job.batch.block(seq, b), b * bs);
        let tile_row = layer.row(block, kv_head, 0);
        let tile = TileArgs {
            kt: keys.add(tile_row * d),
            d,
            bs,
            scales: kv.key_scales.map(|x| x.as_ptr().add(tile_row)),
            q_stride: dp,
            out_stride: sp,
        };
        score_tile::<S, C>(&tile, q.as_ptr(), rows, q_sums.as_ptr(), s.as_mut_ptr());
        for r in 0..rows {
            let row = &mut s[r * sp..(r + 1) * sp];
            // Visible keys of this row in this tile: [from, to).
            let from = layer.first_visible(pos(r)).max(j0).min(j1) - start;
            let to = (pos(r) + 1).clamp(j0, j1) - start;
            if from >= to {
                row.fill(0.0);
                continue;
            }
            row[..from].fill(f32::NEG_INFINITY);
            row[to..].fill(f32::NEG_INFINITY);
            let block_max = row[from..to]
                .iter()
                .fold(f32::NEG_INFINITY, |a, x| a.max(*x));
            let m_new = m[r].max(block_max);
            let correction = (m[r] - m_new).exp();
            let sum = exp_and_sum::<S>(row, m_new);
            l[r] = l[r] * correction + sum;
            if correction != 1.0 {
                acc[r * dp..(r + 1) * dp]
                    .iter_mut()
                    .for_each(|x| *x *= correction);
            }
            m[r] = m_new;
            if let Some(v_scales) = kv.value_scales {
                let scales = &v_scales[tile_row + from..tile_row + to];
                for (x, scale) in row[from..to].iter_mut().zip(scales) {
                    *x *= scale;
                }
            }
        }
        let pv = PvArgs {
            w: s.as_ptr().add(j0 - start),
            w_stride: sp,
            v: values.add((tile_row + j0 - start) * d),
            rows: j1 - j0,
            d,
            acc: acc.as_mut_ptr(),
            acc_stride: dp,
        };
        accumulate_rows::<S, C>(&pv, rows);
    }

    let (v_mul, v_zp) = (job.v_factor(), job.v_zero_point());
    for r in 0..rows {
        let out = job.out.0.add(q_row(r));
        for i in 0..d {
            *out.add(i) = (acc[r * dp + i] / l[r] - v_zp) * v_mul;
        }
    }
}
