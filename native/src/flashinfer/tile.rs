//! A span of up to 64 keys (whole pages) of one kv head against a block of
//! query rows: FlashInfer's inner loop on a CPU.
//!
//! - q·k runs 4 rows by `LANES / 4` keys at a time and finishes those dot
//!   products with one shuffle tree (hsum.rs). K codes are converted in the
//!   dot loop itself when the rows fit one register block (decode with a
//!   GQA group of 4 or less: each code is converted exactly once, for all
//!   the group's heads); larger row sets first dequantize the span into an
//!   f32 tile in L1 so that no code is converted twice.
//! - Online softmax: each row's logits over the span are capped, masked,
//!   turned into weights e^{x - m'}, and (l, o) rescaled to the new max m'.
//! - p·v accumulates 4 rows by a register slab of columns, V converted in
//!   the loop (or from a tile, as for K).
//!
//! Scales never multiply codes: the per-tensor K scale (and e4m3's raw
//! unit) is folded into q and the V scale into the output; int8
//! per-token-head scales multiply each logit (K) and each weight (V); the
//! int8 zero point is subtracted from each converted vector.
//!
//! Rows are ordered token-major: row r is head `r % group` of token
//! `r / group`, and sees the absolute keys `bounds[r / group]`.

use super::hsum::HSum;
use crate::formats::KvDtype;
use crate::simd::Codes;

/// Keys per span at most (the largest page size served).
pub const MAX_SPAN: usize = 64;
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
    /// Visible absolute keys [lo, hi) of each token.
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

/// One page of one kv head: its first row's codes and per-row scales.
#[derive(Clone, Copy)]
pub struct Seg<T> {
    pub k: *const T,
    pub v: *const T,
    pub k_scales: Option<*const f32>,
    pub v_scales: Option<*const f32>,
}

/// Whole pages of one kv head: key offset j is row `j % page` of
/// `segs[j / page]`, absolute key `j0 + j`.
pub struct Span<T> {
    pub segs: [Seg<T>; MAX_SPAN / 16],
    pub page: usize,
    pub j0: usize,
    /// Keys in the span: pages times page size, at most MAX_SPAN.
    pub n: usize,
}

impl<T> Span<T> {
    /// Row `j`'s K (or V) codes; pages are powers of two: no division.
    #[inline(always)]
    unsafe fn row(&self, j: usize, d: usize, v: bool) -> *const T {
        let shift = self.page.trailing_zeros();
        let seg = self.segs.get_unchecked(j >> shift);
        let base = if v { seg.v } else { seg.k };
        base.add((j & (self.page - 1)) * d)
    }
}

/// Per-call constants and the item's scratch.
pub struct Tiles {
    pub d: usize,
    pub k_zero_point: f32,
    pub v_zero_point: f32,
    pub soft_cap: Option<f32>,
    /// shape [MAX_SPAN, d] each: dequantized rows (tile path only).
    pub k: *mut f32,
    pub v: *mut f32,
    /// shape [np, MAX_SPAN]: logits, then weights.
    pub scores: *mut f32,
    /// shape [2, MAX_SPAN]: the span's per-row K and V scales.
    pub row_scales: *mut f32,
}

/// Where q·k and p·v read rows from: codes (converted in the loop) or a
/// dequantized f32 tile. Row pointers are computed once per row.
trait RowSource<S: HSum> {
    type P: Copy;
    unsafe fn row(&self, j: usize) -> Self::P;
    /// `LANES` values of a row from column `e`, zero point removed.
    unsafe fn load(&self, row: Self::P, e: usize) -> S::V;
}

/// `Z`: subtract the int8 zero point (skipped when it is 0, saving one
/// operation per vector).
struct CodeRows<'a, C: Codes, const Z: bool> {
    span: &'a Span<C::T>,
    d: usize,
    zp: f32,
    v: bool,
}

impl<S: HSum, C: Codes, const Z: bool> RowSource<S> for CodeRows<'_, C, Z> {
    type P = *const C::T;
    #[inline(always)]
    unsafe fn row(&self, j: usize) -> *const C::T {
        self.span.row(j, self.d, self.v)
    }
    #[inline(always)]
    unsafe fn load(&self, p: *const C::T, e: usize) -> S::V {
        let raw = C::load::<S>(p.add(e), false);
        if Z && C::DTYPE == KvDtype::Int8 {
            S::sub(raw, S::splat(self.zp))
        } else {
            raw
        }
    }
}

struct TileRows {
    tile: *const f32,
    d: usize,
}

impl<S: HSum> RowSource<S> for TileRows {
    type P = *const f32;
    #[inline(always)]
    unsafe fn row(&self, j: usize) -> *const f32 {
        self.tile.add(j * self.d)
    }
    #[inline(always)]
    unsafe fn load(&self, p: *const f32, e: usize) -> S::V {
        S::load(p.add(e))
    }
}

/// Dequantizes keys (or values) `[j0, j1)` of the span into `dst`.
#[inline(always)]
unsafe fn dequantize<S: HSum, C: Codes, const Z: bool>(
    src: &CodeRows<C, Z>,
    j0: usize,
    j1: usize,
    dst: *mut f32,
) {
    let d = src.d;
    for j in j0..j1 {
        let row = <CodeRows<C, Z> as RowSource<S>>::row(src, j);
        for e in (0..d).step_by(S::LANES) {
            let x = <CodeRows<C, Z> as RowSource<S>>::load(src, row, e);
            S::store(dst.add(j * d + e), x);
        }
    }
}

/// Dot products of 4 query rows with 2 keys: 8 accumulators, named (an
/// array indexed in loops stays in memory), few enough that LLVM keeps
/// them all in registers (16 did not fit its allocation in the span loop).
#[inline(always)]
unsafe fn dots_4x2<S: HSum, R: RowSource<S>>(
    q: *const f32,
    d: usize,
    keys: &R,
    p0: R::P,
    p1: R::P,
) -> [S::V; 8] {
    let z = S::zero();
    let (mut a00, mut a01, mut a10, mut a11) = (z, z, z, z);
    let (mut a20, mut a21, mut a30, mut a31) = (z, z, z, z);
    for e in (0..d).step_by(S::LANES) {
        let k0 = keys.load(p0, e);
        let k1 = keys.load(p1, e);
        let q0 = S::load(q.add(e));
        a00 = S::fma(q0, k0, a00);
        a01 = S::fma(q0, k1, a01);
        let q1 = S::load(q.add(d + e));
        a10 = S::fma(q1, k0, a10);
        a11 = S::fma(q1, k1, a11);
        let q2 = S::load(q.add(2 * d + e));
        a20 = S::fma(q2, k0, a20);
        a21 = S::fma(q2, k1, a21);
        let q3 = S::load(q.add(3 * d + e));
        a30 = S::fma(q3, k0, a30);
        a31 = S::fma(q3, k1, a31);
    }
    [a00, a01, a10, a11, a20, a21, a30, a31]
}

/// Logits of every row against the span's keys (before scales and masks),
/// 4 rows by 4 keys, finished by one shuffle tree per 16 (or 8) scores.
#[inline(always)]
unsafe fn scores<S: HSum, R: RowSource<S>>(rows: &Rows, t: &Tiles, keys: &R, n: usize) {
    let d = t.d;
    let mut lanes = [0.0f32; 16];
    for r0 in (0..rows.np).step_by(RB) {
        let q = rows.q.add(r0 * d);
        for j in (0..n).step_by(4) {
            let x = dots_4x2::<S, R>(q, d, keys, keys.row(j), keys.row(j + 1));
            let y = dots_4x2::<S, R>(q, d, keys, keys.row(j + 2), keys.row(j + 3));
            // Lane r * 4 + kk: row r, key j + kk (rows 0-1 then 2-3 on 8 lanes).
            let all = [
                x[0], x[1], y[0], y[1], x[2], x[3], y[2], y[3], x[4], x[5], y[4], y[5], x[6], x[7],
                y[6], y[7],
            ];
            if S::LANES == 16 {
                S::store(lanes.as_mut_ptr(), S::sum_each(&all));
            } else {
                S::store(lanes.as_mut_ptr(), S::sum_each(&all[..8]));
                S::store(lanes.as_mut_ptr().add(8), S::sum_each(&all[8..]));
            }
            for r in 0..RB {
                let dst = t.scores.add((r0 + r) * MAX_SPAN + j);
                std::ptr::copy_nonoverlapping(lanes.as_ptr().add(r * 4), dst, 4);
            }
        }
    }
}

/// Online softmax over the span for each real row: scales, caps and masks
/// the logits, turns them into weights e^{x - m'} (times the V row scales)
/// and rescales (l, o) to m'. Returns the keys any row sees, [a, b).
#[inline(always)]
unsafe fn softmax<S: HSum>(
    rows: &Rows,
    t: &Tiles,
    j0: usize,
    n: usize,
    scaled: bool,
) -> (usize, usize) {
    let (mut first, mut end) = (n, 0);
    for r in 0..rows.n {
        let s = t.scores.add(r * MAX_SPAN);
        let (lo, hi) = rows.bounds[r / rows.group];
        let a = lo.saturating_sub(j0).min(n);
        let b = hi.saturating_sub(j0).min(n);
        if a >= b {
            for j in 0..n {
                *s.add(j) = 0.0;
            }
            continue;
        }
        (first, end) = (first.min(a), end.max(b));
        if scaled {
            for j in (0..n).step_by(S::LANES) {
                let x = S::mul(S::load(s.add(j)), S::load(t.row_scales.add(j)));
                S::store(s.add(j), x);
            }
        }
        if let Some(cap) = t.soft_cap {
            for j in a..b {
                *s.add(j) = cap * (*s.add(j) / cap).tanh();
            }
        }
        for j in (0..a).chain(b..n) {
            *s.add(j) = f32::NEG_INFINITY;
        }
        let mut mx = S::splat(f32::NEG_INFINITY);
        for j in (0..n).step_by(S::LANES) {
            mx = S::max(mx, S::load(s.add(j)));
        }
        let m_old = *rows.m.add(r);
        let m_new = m_old.max(S::reduce_max(mx));
        if m_new == f32::NEG_INFINITY {
            for j in 0..n {
                *s.add(j) = 0.0;
            }
            continue;
        }
        let shift = S::splat(m_new);
        let mut sum = S::zero();
        for j in (0..n).step_by(S::LANES) {
            let p = S::exp(S::sub(S::load(s.add(j)), shift));
            sum = S::add(sum, p);
            let w = if scaled {
                S::mul(p, S::load(t.row_scales.add(MAX_SPAN + j)))
            } else {
                p
            };
            S::store(s.add(j), w);
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
    (first, end)
}

/// o += p·V over keys [a, b) for every row block, a slab of `SLAB` vectors
/// at a time.
#[inline(always)]
unsafe fn accumulate<S: HSum, R: RowSource<S>>(
    rows: &Rows,
    t: &Tiles,
    values: &R,
    a: usize,
    b: usize,
) {
    let d = t.d;
    for r0 in (0..rows.np).step_by(RB) {
        for c0 in (0..d).step_by(S::LANES * S::SLAB) {
            let o = rows.o.add(r0 * d + c0);
            let mut acc = [S::zero(); 16];
            for r in 0..RB {
                for c in 0..S::SLAB {
                    acc[r * S::SLAB + c] = S::load(o.add(r * d + c * S::LANES));
                }
            }
            for j in a..b {
                let row = values.row(j);
                let mut vs = [S::zero(); 4];
                for (c, x) in vs.iter_mut().enumerate().take(S::SLAB) {
                    *x = values.load(row, c0 + c * S::LANES);
                }
                for r in 0..RB {
                    let w = S::splat(*t.scores.add((r0 + r) * MAX_SPAN + j));
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

/// Runs one span against `rows`.
///
/// # Safety
/// Every segment points at a whole page of `d`-code rows (and scales);
/// the tiles and rows are this item's own scratch of the documented
/// shapes; `d` is a multiple of `LANES * SLAB`; `S`'s features are on.
#[inline(always)]
pub unsafe fn run_span<S: HSum, C: Codes>(rows: &Rows, t: &Tiles, span: &Span<C::T>) {
    let n = span.n;
    let scaled = span.segs[0].k_scales.is_some();
    if scaled {
        for j in 0..n {
            let seg = &span.segs[j / span.page];
            let at = j % span.page;
            *t.row_scales.add(j) = *seg.k_scales.unwrap_unchecked().add(at);
            *t.row_scales.add(MAX_SPAN + j) = *seg.v_scales.unwrap_unchecked().add(at);
        }
    }
    if t.k_zero_point == 0.0 && t.v_zero_point == 0.0 {
        span_with::<S, C, false>(rows, t, span, scaled);
    } else {
        span_with::<S, C, true>(rows, t, span, scaled);
    }
}

#[inline(always)]
unsafe fn span_with<S: HSum, C: Codes, const Z: bool>(
    rows: &Rows,
    t: &Tiles,
    span: &Span<C::T>,
    scaled: bool,
) {
    let (n, d) = (span.n, t.d);
    let k = CodeRows::<C, Z> {
        span,
        d,
        zp: t.k_zero_point,
        v: false,
    };
    let v = CodeRows::<C, Z> {
        span,
        d,
        zp: t.v_zero_point,
        v: true,
    };
    if rows.np == RB {
        scores::<S, _>(rows, t, &k, n);
        let (a, b) = softmax::<S>(rows, t, span.j0, n, scaled);
        accumulate::<S, _>(rows, t, &v, a, b);
    } else {
        dequantize::<S, C, Z>(&k, 0, n, t.k);
        scores::<S, _>(rows, t, &TileRows { tile: t.k, d }, n);
        let (a, b) = softmax::<S>(rows, t, span.j0, n, scaled);
        dequantize::<S, C, Z>(&v, a, b, t.v);
        accumulate::<S, _>(rows, t, &TileRows { tile: t.v, d }, a, b);
    }
}

/// A span kernel compiled on its own, with its path's target features: the
/// item loops around it are large, and inlined into them the q·k loop lost
/// its accumulators to the stack.
pub trait SpanKernel: HSum {
    fn span_fn<C: Codes>() -> unsafe fn(&Rows, &Tiles, &Span<C::T>);
}

#[inline(never)]
unsafe fn span_scalar<C: Codes>(rows: &Rows, t: &Tiles, span: &Span<C::T>) {
    run_span::<crate::simd::Scalar, C>(rows, t, span)
}

impl SpanKernel for crate::simd::Scalar {
    fn span_fn<C: Codes>() -> unsafe fn(&Rows, &Tiles, &Span<C::T>) {
        span_scalar::<C>
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline(never)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn span_avx2<C: Codes>(rows: &Rows, t: &Tiles, span: &Span<C::T>) {
    run_span::<crate::simd::Avx2, C>(rows, t, span)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl SpanKernel for crate::simd::Avx2 {
    fn span_fn<C: Codes>() -> unsafe fn(&Rows, &Tiles, &Span<C::T>) {
        span_avx2::<C>
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn span_avx512<C: Codes>(rows: &Rows, t: &Tiles, span: &Span<C::T>) {
    run_span::<crate::simd::Avx512, C>(rows, t, span)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl SpanKernel for crate::simd::Avx512 {
    fn span_fn<C: Codes>() -> unsafe fn(&Rows, &Tiles, &Span<C::T>) {
        span_avx512::<C>
    }
}
