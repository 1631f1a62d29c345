//! PagedAttention-v1 decode. A work item is one sequence and a range of its
//! kv heads, with every query head of those kv heads' groups (GQA/MQA), so
//! each K and V code of the sequence is read once. Like v1 it makes one
//! pass over the sequence's blocks for the logits, takes the exact
//! softmax, then one pass for P·V (no split-KV, no rescaling).
//!
//! Why a range of kv heads and not one: the tiles of one block for
//! consecutive kv heads are adjacent, so a range reads long runs that the
//! hardware prefetcher follows; one head alone would jump by numKvHeads
//! tiles every tile, and decode is bound by memory (attend.rs sizes the
//! ranges so that every thread still gets several items).
//!
//! Scales never multiply elements: the query carries `softmax_scale *
//! k_scale * raw_unit`, per-token-head K scales multiply each logit and V
//! scales each weight, int8 zero points come out as `zp * Σq` per logit and
//! `zp` per output (see simd/mod.rs on raw values).

use super::attend::Job;
use super::scratch::Scratch;
use super::tile::{
    accumulate_rows, exp_and_sum, load_queries, row_max, score_tile, PvArgs, TileArgs,
};
use super::{blocks_of, round_up};
use crate::simd::{Codes, Isa};

/// Attention for the one query token of sequence `seq`, for kv heads
/// `h0..h1` and their query heads `h0 * group .. h1 * group`.
///
/// # Safety
/// `job` is validated (batch, lengths, block ids); `S`'s features are on;
/// no other item writes these (token, query head) output rows.
#[inline(always)]
pub unsafe fn decode<S: Isa, C: Codes>(job: &Job<'_, C::T>, seq: usize, h0: usize, h1: usize) {
    let layer = &job.layer;
    let (g, d, bs) = (layer.group(), layer.head_dim, layer.block_size);
    let rows = (h1 - h0) * g;
    let dp = round_up(d, S::LANES);
    let (token, _, seq_len) = job.batch.sequence(seq);
    let (lo, hi) = (layer.first_visible(seq_len - 1), seq_len);
    // Logit k of a row is key `base + k`: whole tiles are stored at once.
    let (first_block, base) = (lo / bs, lo / bs * bs);
    let np = round_up(round_up(hi - base, bs), S::LANES);
    let kv = &job.kv;

    let mut scratch = Scratch::take(2 * rows * dp + rows * np + 2 * rows);
    let [q, acc, logits, q_sums, sums] =
        scratch.split([rows * dp, rows * dp, rows * np, rows, rows]);
    let first_q = (token * layer.num_q_heads + h0 * g) * d;
    load_queries(
        job.query,
        |r| first_q + r * d,
        d,
        job.q_factor(),
        q,
        dp,
        q_sums,
    );
    let k_zp = job.k_zero_point();
    q_sums.iter_mut().for_each(|x| *x *= k_zp);

    // Pass 1: logits of every key of every touched tile, per query row.
    for (b, _, _) in blocks_of(lo, hi, bs) {
        let block = job.batch.block(seq, b);
        for kv_head in h0..h1 {
            let row0 = layer.row(block, kv_head, 0);
            let tile = TileArgs {
                kt: kv.keys.as_ptr().add(row0 * d),
                d,
                bs,
                scales: kv.key_scales.map(|s| s.as_ptr().add(row0)),
                q_stride: dp,
                out_stride: np,
            };
            let r = (kv_head - h0) * g;
            let out = logits.as_mut_ptr().add(r * np + (b - first_block) * bs);
            score_tile::<S, C>(
                &tile,
                q.as_ptr().add(r * dp),
                g,
                q_sums.as_ptr().add(r),
                out,
            );
        }
    }

    // Keys outside [lo, hi) (stale slots of the edge tiles) weigh nothing;
    // NaN from a stray read inside the range survives exp to the output.
    for r in 0..rows {
        let row = &mut logits[r * np..(r + 1) * np];
        row[..lo - base].fill(f32::NEG_INFINITY);
        row[hi - base..].fill(f32::NEG_INFINITY);
        sums[r] = exp_and_sum::<S>(row, row_max::<S>(row));
    }
    if let Some(v_scales) = kv.value_scales {
        for (b, j0, j1) in blocks_of(lo, hi, bs) {
            let block = job.batch.block(seq, b);
            for r in 0..rows {
                let row0 = layer.row(block, h0 + r / g, j0 - b * bs);
                let w = &mut logits[r * np + j0 - base..r * np + j1 - base];
                for (x, s) in w.iter_mut().zip(&v_scales[row0..row0 + j1 - j0]) {
                    *x *= s;
                }
            }
        }
    }

    // Pass 2: P·V into the padded accumulators.
    acc.fill(0.0);
    for (b, j0, j1) in blocks_of(lo, hi, bs) {
        let block = job.batch.block(seq, b);
        for kv_head in h0..h1 {
            let v = kv
                .values
                .as_ptr()
                .add(layer.row(block, kv_head, j0 - b * bs) * d);
            let r = (kv_head - h0) * g;
            let pv = PvArgs {
                w: logits.as_ptr().add(r * np + j0 - base),
                w_stride: np,
                v,
                rows: j1 - j0,
                d,
                acc: acc.as_mut_ptr().add(r * dp),
                acc_stride: dp,
            };
            accumulate_rows::<S, C>(&pv, g);
        }
    }

    let (v_mul, v_zp) = (job.v_factor(), job.v_zero_point());
    for r in 0..rows {
        let out = job.out.0.add(first_q + r * d);
        for i in 0..d {
            *out.add(i) = (acc[r * dp + i] / sums[r] - v_zp) * v_mul;
        }
    }
}
