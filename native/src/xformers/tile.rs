//! The two micro-kernels decode and prefill share, generic over the
//! instruction set and the code type, dequantizing codes in registers as
//! they load (no dequantized copy of a tile is ever written):
//!
//! - [`score_tile`]: query rows against one transposed K tile, `q·raw(k)`.
//! - [`accumulate_rows`]: `acc[g] += Σ_j w[g][j] * raw(v_j)`.
//!
//! Query rows and accumulators live in scratch padded to a multiple of
//! `S::LANES` (zeros past headDim); V rows are headDim long and K tile
//! columns blockSize long, both multiples of 8, so with 16 lanes a row
//! may end in (or be) one half vector.
//!
//! All functions are `#[inline(always)]` and `unsafe`: pointers must cover
//! the rows and columns named, and the caller's target features apply.
//! Loops index fixed-size register arrays on purpose: after unrolling the
//! indices are constants, so the arrays live in registers.
#![allow(clippy::needless_range_loop)]

use crate::simd::{Codes, Isa};

/// Scores of `G` query rows against one K tile stored transposed
/// (`kt[i * bs + key]`, see xformers/mod.rs): lane `l` of `acc[g][v]` is
/// `q_g · raw(k_{v * LANES + l})`. Transposed, the dot products need no
/// horizontal sums: each step broadcasts one query value and multiplies a
/// whole vector of keys. `HALF`: the tile has `LANES / 2` keys.
#[inline(always)]
unsafe fn tile_scores<S: Isa, C: Codes, const G: usize, const NV: usize, const HALF: bool>(
    q: *const f32,
    q_stride: usize,
    kt: *const C::T,
    d: usize,
    bs: usize,
) -> [[S::V; NV]; G] {
    // Plain loops, not array::from_fn or map: their closures would compile
    // without the caller's target features.
    let mut acc = [[S::zero(); NV]; G];
    let mut x = [S::zero(); NV];
    for i in 0..d {
        let column = kt.add(i * bs);
        for v in 0..NV {
            x[v] = C::load::<S>(column.add(v * S::LANES), HALF);
        }
        for g in 0..G {
            let qb = S::splat(*q.add(g * q_stride + i));
            for v in 0..NV {
                acc[g][v] = S::fma(qb, x[v], acc[g][v]);
            }
        }
    }
    acc
}

/// One K tile and where its scores go.
pub struct TileArgs<T> {
    /// The tile: `[headDim, blockSize]` codes.
    pub kt: *const T,
    pub d: usize,
    pub bs: usize,
    /// Per-key scales of the tile (int8 per_token_head): `bs` of them.
    pub scales: Option<*const f32>,
    /// Row stride of the (padded) query rows.
    pub q_stride: usize,
    /// Row stride of the score rows: at least `bs`, a multiple of LANES.
    pub out_stride: usize,
}

/// [`tile_scores`] for `G` rows, stored as `(dot - zp_terms[g]) * scale`
/// at `out[g * out_stride ..]`.
#[inline(always)]
unsafe fn score_group<S: Isa, C: Codes, const G: usize, const NV: usize, const HALF: bool>(
    tile: &TileArgs<C::T>,
    q: *const f32,
    zp_terms: *const f32,
    out: *mut f32,
) {
    let acc = tile_scores::<S, C, G, NV, HALF>(q, tile.q_stride, tile.kt, tile.d, tile.bs);
    for g in 0..G {
        let zp = S::splat(*zp_terms.add(g));
        for v in 0..NV {
            let mut x = S::sub(acc[g][v], zp);
            if let Some(scales) = tile.scales {
                x = S::mul(x, S::raw_f32(scales.add(v * S::LANES), HALF));
            }
            let at = out.add(g * tile.out_stride + v * S::LANES);
            if HALF {
                S::store_half(at, x)
            } else {
                S::store(at, x)
            }
        }
    }
}

#[inline(always)]
unsafe fn score_groups<S: Isa, C: Codes, const NV: usize, const HALF: bool>(
    tile: &TileArgs<C::T>,
    q: *const f32,
    count: usize,
    zp_terms: *const f32,
    out: *mut f32,
) {
    let most = (S::ACC_REGS / NV).clamp(1, 4);
    let mut g = 0;
    while g < count {
        let n = (count - g).min(most);
        let (q, zp, out) = (
            q.add(g * tile.q_stride),
            zp_terms.add(g),
            out.add(g * tile.out_stride),
        );
        match n {
            1 => score_group::<S, C, 1, NV, HALF>(tile, q, zp, out),
            2 => score_group::<S, C, 2, NV, HALF>(tile, q, zp, out),
            3 => score_group::<S, C, 3, NV, HALF>(tile, q, zp, out),
            _ => score_group::<S, C, 4, NV, HALF>(tile, q, zp, out),
        }
        g += n;
    }
}

/// Scores of `count` query rows (from `q`) against every key of one tile:
/// `(q·raw(k) - zp_terms[r]) * scale_k` into `out[r * out_stride + key]`.
/// Block sizes 8, 16 and 32 (8 is a half vector with 16 lanes).
#[inline(always)]
pub unsafe fn score_tile<S: Isa, C: Codes>(
    tile: &TileArgs<C::T>,
    q: *const f32,
    count: usize,
    zp_terms: *const f32,
    out: *mut f32,
) {
    match tile.bs / S::LANES {
        0 => score_groups::<S, C, 1, true>(tile, q, count, zp_terms, out),
        1 => score_groups::<S, C, 1, false>(tile, q, count, zp_terms, out),
        2 => score_groups::<S, C, 2, false>(tile, q, count, zp_terms, out),
        _ => score_groups::<S, C, 4, false>(tile, q, count, zp_terms, out),
    }
}

/// One P·V step: value rows, the weights per query row and the padded
/// accumulators they feed.
#[derive(Clone, Copy)]
pub struct PvArgs<T> {
    /// Weights: row `g` at `w + g * w_stride`, one per value row.
    pub w: *const f32,
    pub w_stride: usize,
    /// `rows` value rows of `d` codes, contiguous.
    pub v: *const T,
    pub rows: usize,
    pub d: usize,
    /// Accumulator row `g` at `acc + g * acc_stride` (padded to LANES).
    pub acc: *mut f32,
    pub acc_stride: usize,
}

/// `acc[g][col..] += Σ_j w[g][j] * raw(v_j[col..])` for `G` rows and `N`
/// vectors of columns (a half vector when `HALF`: const, so the full-vector
/// loop has no test).
#[inline(always)]
unsafe fn accumulate_slab<S: Isa, C: Codes, const G: usize, const N: usize, const HALF: bool>(
    p: &PvArgs<C::T>,
    col: usize,
) {
    let mut a = [[S::zero(); N]; G];
    for g in 0..G {
        for c in 0..N {
            a[g][c] = S::load(p.acc.add(g * p.acc_stride + col + c * S::LANES));
        }
    }
    let mut weights = [S::zero(); G];
    for j in 0..p.rows {
        let row = p.v.add(j * p.d + col);
        for g in 0..G {
            weights[g] = S::splat(*p.w.add(g * p.w_stride + j));
        }
        for c in 0..N {
            let x = C::load::<S>(row.add(c * S::LANES), HALF);
            for g in 0..G {
                a[g][c] = S::fma(weights[g], x, a[g][c]);
            }
        }
    }
    for g in 0..G {
        for c in 0..N {
            S::store(p.acc.add(g * p.acc_stride + col + c * S::LANES), a[g][c]);
        }
    }
}

/// [`accumulate_slab`] over all columns for `G` rows: column slabs of
/// `S::SLAB` vectors keep the accumulators in registers across the rows.
#[inline(always)]
unsafe fn accumulate<S: Isa, C: Codes, const G: usize>(p: &PvArgs<C::T>) {
    let full = p.d / S::LANES;
    let mut start = 0;
    while start < full {
        let n = (full - start).min(S::SLAB);
        let col = start * S::LANES;
        match n {
            1 => accumulate_slab::<S, C, G, 1, false>(p, col),
            2 => accumulate_slab::<S, C, G, 2, false>(p, col),
            3 => accumulate_slab::<S, C, G, 3, false>(p, col),
            _ => accumulate_slab::<S, C, G, 4, false>(p, col),
        }
        start += n;
    }
    if !p.d.is_multiple_of(S::LANES) {
        accumulate_slab::<S, C, G, 1, true>(p, full * S::LANES);
    }
}

/// `acc[g] += Σ_j w[g][j] * raw(v_j)` for `count` rows, four at a time.
#[inline(always)]
pub unsafe fn accumulate_rows<S: Isa, C: Codes>(p: &PvArgs<C::T>, count: usize) {
    let mut g = 0;
    while g < count {
        let q = PvArgs {
            w: p.w.add(g * p.w_stride),
            acc: p.acc.add(g * p.acc_stride),
            ..*p
        };
        match count - g {
            1 => accumulate::<S, C, 1>(&q),
            2 => accumulate::<S, C, 2>(&q),
            3 => accumulate::<S, C, 3>(&q),
            _ => accumulate::<S, C, 4>(&q),
        }
        g += 4;
    }
}

/// Softmax numerators in place: `x = exp(x - max)` over `row` (a multiple
/// of `S::LANES` long; -inf entries become 0); returns their sum.
#[inline(always)]
pub unsafe fn exp_and_sum<S: Isa>(row: &mut [f32], max: f32) -> f32 {
    let m = S::splat(max);
    let mut sum = S::zero();
    for chunk in row.chunks_exact_mut(S::LANES) {
        let e = S::exp(S::sub(S::load(chunk.as_ptr()), m));
        S::store(chunk.as_mut_ptr(), e);
        sum = S::add(sum, e);
    }
    S::reduce_add(sum)
}

/// The maximum of `row` (a multiple of `S::LANES` long).
#[inline(always)]
pub unsafe fn row_max<S: Isa>(row: &[f32]) -> f32 {
    let mut m = S::splat(f32::NEG_INFINITY);
    for chunk in row.chunks_exact(S::LANES) {
        m = S::max(m, S::load(chunk.as_ptr()));
    }
    S::reduce_max(m)
}

/// Copies query rows of `d` values (row `r` at `src[offset(r)..]`, one
/// per entry of `sums`) into `dst` (stride `stride`, zero padded), times
/// `factor`, and fills `sums[r]` with each scaled row's sum (for int8 zero
/// points: q·(c - zp) = q·c - zp Σq).
pub fn load_queries(
    src: &[f32],
    offset: impl Fn(usize) -> usize,
    d: usize,
    factor: f32,
    dst: &mut [f32],
    stride: usize,
    sums: &mut [f32],
) {
    for (r, sum) in sums.iter_mut().enumerate() {
        let row = &src[offset(r)..offset(r) + d];
        let out = &mut dst[r * stride..(r + 1) * stride];
        *sum = 0.0;
        for (o, x) in out.iter_mut().zip(row) {
            *o = x * factor;
            *sum += *o;
        }
        out[d..].fill(0.0);
    }
}
