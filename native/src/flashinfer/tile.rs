//! One page of one kv head against a block of query rows, FlashInfer's
//! inner loop on a CPU. The page's K rows are dequantized once into an f32
//! tile in L1 (zero point and per-row scale applied there, the per-tensor
//! scale folded into the queries) and serve every query row of the GQA
//! group; q·k runs 4 rows by `LANES / 4` keys at a time and finishes all
//! those dot products with one shuffle tree (hsum.rs); then the online
//! softmax updates each row's (m, l, o); then the V rows are dequantized
//! once and p·v accumulates 4 rows by a register slab of columns.
//!
//! Rows are ordered token-major: row r is head `r % group` of the tile's
//! token `r / group`, and sees keys `bounds[r / group]`.

use super::hsum::HSum;
use crate::formats::KvDtype;
use crate::simd::Codes;

/// Keys per page at most (the largest block size served).
pub const MAX_PAGE: usize = 64;
/// Query tokens per prefill tile at most.
pub const MAX_TILE_TOKENS: usize = 16;
/// Query rows per register block.
pub const RB: usize = 4;

/// Query rows of one kv head and their running softmax state (pointers
/// into the work item's scratch).
pub struct Rows {
    /// Real rows; `np` is `n` rounded up to `RB` (padded rows are zero queries).
    pub n: usize,
    pub np: usize,
    /// Rows per token: the GQA group.
    pub group: usize,
    /// Visible keys [lo, hi) of each token.
    pub bounds: [(usize, usize); MAX_TILE_TOKENS],
    /// shape [np, d]: queries times softmax scale and per-tensor K factor.
    pub q: *const f32,
    /// shape [np]: running max of the logits (natural units).
    pub m: *mut f32,
    /// shape [np]: running Σ e^{x - m}.
    pub l: *mut f32,
    /// shape [np, d]: running Σ e^{x - m} v.
    pub o: *mut f32,
}

/// One page's rows for one kv head: `n` keys from absolute key `j0`.
pub struct Page<T> {
    pub k: *const T,
    pub v: *const T,
    pub k_scales: Option<*const f32>,
    pub v_scales: Option<*const f32>,
    pub j0: usize,
    pub n: usize,
}

/// Per-call constants and the item's tiles.
pub struct Tiles {
    pub d: usize,
    pub k_zero_point: f32,
    pub v_zero_point: f32,
    pub soft_cap: Option<f32>,
    /// shape [MAX_PAGE, d] each.
    pub k: *mut f32,
    pub v: *mut f32,
    /// shape [np, MAX_PAGE]: logits, then weights.
    pub scores: *mut f32,
}

/// `dst[j] = (raw(src[j]) - zp) * scale_j` for `n` rows of `d`; only int8
/// has a zero point or per-row scales, so other dtypes just convert.
#[inline(always)]
unsafe fn dequantize<S: HSum, C: Codes>(
    src: *const C::T,
    scales: Option<*const f32>,
    zp: f32,
    n: usize,
    d: usize,
    dst: *mut f32,
) {
    let int8 = C::DTYPE == KvDtype::Int8;
    let zero = S::splat(zp);
    for j in 0..n {
        let f = S::splat(scales.map_or(1.0, |s| *s.add(j)));
        for e in (0..d).step_by(S::LANES) {
            let raw = C::load::<S>(src.add(j * d + e), false);
            let x = if int8 {
                S::mul(S::sub(raw, zero), f)
            } else {
                raw
            };
            S::store(dst.add(j * d + e), x);
        }
    }
}

/// Logits of every row against the tile's `n` keys (padded keys get junk
/// that the mask replaces).
#[inline(always)]
unsafe fn scores<S: HSum>(rows: &Rows, t: &Tiles, n: usize) {
    let (d, kb) = (t.d, S::LANES / RB);
    let mut lanes = [0.0f32; 16];
    for r0 in (0..rows.np).step_by(RB) {
        let q = rows.q.add(r0 * d);
        for j in (0..n).step_by(kb) {
            let mut acc = [S::zero(); 16];
            for e in (0..d).step_by(S::LANES) {
                let qs: [S::V; RB] = std::array::from_fn(|r| S::load(q.add(r * d + e)));
                for kk in 0..kb {
                    let k = S::load(t.k.add((j + kk) * d + e));
                    for r in 0..RB {
                        acc[kk * RB + r] = S::fma(qs[r], k, acc[kk * RB + r]);
                    }
                }
            }
            S::store(lanes.as_mut_ptr(), S::sum_each(&acc[..S::LANES]));
            for kk in 0..kb {
                for r in 0..RB {
                    *t.scores.add((r0 + r) * MAX_PAGE + j + kk) = lanes[kk * RB + r];
                }
            }
        }
    }
}

/// Online softmax over the page for each real row: caps and masks the
/// logits, turns them into weights e^{x - m'} and rescales (l, o) to m'.
#[inline(always)]
unsafe fn softmax<S: HSum>(rows: &Rows, t: &Tiles, page_j0: usize, n: usize) {
    let width = n.div_ceil(S::LANES) * S::LANES;
    for r in 0..rows.n {
        let s = t.scores.add(r * MAX_PAGE);
        let (lo, hi) = rows.bounds[r / rows.group];
        let a = lo.saturating_sub(page_j0).min(n);
        let b = hi.saturating_sub(page_j0).min(n);
        if a >= b {
            (0..width).for_each(|j| *s.add(j) = 0.0);
            continue;
        }
        if let Some(cap) = t.soft_cap {
            (a..b).for_each(|j| *s.add(j) = cap * (*s.add(j) / cap).tanh());
        }
        (0..a)
            .chain(b..width)
            .for_each(|j| *s.add(j) = f32::NEG_INFINITY);
        let mut mx = S::splat(f32::NEG_INFINITY);
        for j in (0..width).step_by(S::LANES) {
            mx = S::max(mx, S::load(s.add(j)));
        }
        let m_old = *rows.m.add(r);
        let m_new = m_old.max(S::reduce_max(mx));
        if m_new == f32::NEG_INFINITY {
            (0..width).for_each(|j| *s.add(j) = 0.0);
            continue;
        }
        let shift = S::splat(m_new);
        let mut sum = S::zero();
        for j in (0..width).step_by(S::LANES) {
            let p = S::exp(S::sub(S::load(s.add(j)), shift));
            S::store(s.add(j), p);
            sum = S::add(sum, p);
        }
        let corr = (m_old - m_new).exp();
        *rows.l.add(r) = *rows.l.add(r) * corr + S::reduce_add(sum);
        *rows.m.add(r) = m_new;
        if corr != 1.0 {
            let c = S::splat(corr);
            let o = rows.o.add(r * t.d);
            for e in (0..t.d).step_by(S::LANES) {
                S::store(o.add(e), S::mul(S::load(o.add(e)), c));
            }
        }
    }
}

/// o += p·V for every row block, a slab of `SLAB` vectors at a time.
#[inline(always)]
unsafe fn accumulate<S: HSum>(rows: &Rows, t: &Tiles, n: usize) {
    let d = t.d;
    let step = S::LANES * S::SLAB;
    for r0 in (0..rows.np).step_by(RB) {
        for c0 in (0..d).step_by(step) {
            let o = rows.o.add(r0 * d + c0);
            let mut acc = [S::zero(); 16];
            for r in 0..RB {
                for c in 0..S::SLAB {
                    acc[r * S::SLAB + c] = S::load(o.add(r * d + c * S::LANES));
                }
            }
            for j in 0..n {
                let v = t.v.add(j * d + c0);
                let vs: [S::V; 4] = std::array::from_fn(|c| {
                    if c < S::SLAB {
                        S::load(v.add(c * S::LANES))
                    } else {
                        S::zero()
                    }
                });
                for r in 0..RB {
                    let w = S::splat(*t.scores.add((r0 + r) * MAX_PAGE + j));
                    for c in 0..S::SLAB {
                        acc[r * S::SLAB + c] = S::fma(w, vs[c], acc[r * S::SLAB + c]);
                    }
                }
            }
            for r in 0..RB {
                for c in 0..S::SLAB {
                    S::store(o.add(r * d + c * S::LANES), acc[r * S::SLAB + c]);
                }
            }
        }
    }
}

/// Runs one page against `rows`.
///
/// # Safety
/// `page` points at `n <= MAX_PAGE` rows of `d` codes (and scales); the
/// tiles and rows are this item's own scratch of the documented shapes;
/// `d` is a multiple of `LANES * SLAB`; `S`'s features are on.
#[inline(always)]
pub unsafe fn run_page<S: HSum, C: Codes>(rows: &Rows, t: &Tiles, page: &Page<C::T>) {
    let n = page.n;
    dequantize::<S, C>(page.k, page.k_scales, t.k_zero_point, n, t.d, t.k);
    scores::<S>(rows, t, n);
    softmax::<S>(rows, t, page.j0, n);
    dequantize::<S, C>(page.v, page.v_scales, t.v_zero_point, n, t.d, t.v);
    accumulate::<S>(rows, t, n);
}
