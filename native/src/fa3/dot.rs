//! The 8-bit block products, one implementation per kernel path, all with
//! the same results: int8 products are exact integers (i32 sums of at most
//! 256 products of |q| <= 127 and |k| <= 128, or 64 of p <= 255 and |v -
//! zp| <= 255), and e4m3 products are exact in f32 (4-bit significands), summed
//! in the same order on every path (per lane: pairs in order, then the two
//! halves of a pair).
//!
//! Operands are pairs (layout.rs): a query pair `qp[i]` is `q[2i]` in the
//! low 16 bits and `q[2i + 1]` in the high 16, as `vpmaddwd` reads a lane;
//! a P pair `pp[j]` likewise holds tokens 2j and 2j + 1.

use super::layout::{k_at, v_at};
use crate::simd::Isa;

/// Rows one fused QK call takes.
pub const FUSED_ROWS: usize = 4;

/// One kernel path's products. The defaults are the scalar definitions.
pub trait Dot: Copy + 'static {
    /// The f32 vector set for exp and the e4m3 products.
    type S: Isa;

    /// `out[t] = Σ_e q[e] k[t][e]` for every key `t` of an int8 K tile.
    ///
    /// # Safety
    /// `kt` holds a `bs * d` tile; the path's CPU features are on.
    #[inline(always)]
    unsafe fn qk_i8(kt: *const i8, bs: usize, d: usize, q: &[i8], _qp: &[i32], out: &mut [i32]) {
        for (t, o) in out[..bs].iter_mut().enumerate() {
            *o = (0..d)
                .map(|e| i32::from(q[e]) * i32::from(*kt.add(k_at(bs, t, e))))
                .sum();
        }
    }

    /// [`Dot::qk_i8`] for `qs.len()` rows (at most [`FUSED_ROWS`]) at
    /// once, row r into `outs[r][..bs]`: the vector paths load and widen
    /// each K code once for all of them.
    ///
    /// # Safety
    /// As [`Dot::qk_i8`]; each `outs[r]` is valid for `bs` writes.
    #[inline(always)]
    unsafe fn qk_i8_rows(
        kt: *const i8,
        bs: usize,
        d: usize,
        qs: &[&[i8]],
        qps: &[&[i32]],
        outs: &[*mut i32],
    ) {
        for r in 0..qs.len() {
            Self::qk_i8(
                kt,
                bs,
                d,
                qs[r],
                qps[r],
                std::slice::from_raw_parts_mut(outs[r], bs),
            );
        }
    }

    /// `acc[e] += Σ_t p[t] v[t][e]` over the whole int8 V tile (P is 0 for
    /// keys a row does not see, and int8 codes are finite).
    ///
    /// # Safety
    /// As [`Dot::qk_i8`].
    #[inline(always)]
    unsafe fn pv_i8(vt: *const i8, bs: usize, d: usize, p: &[i16], _pp: &[i32], acc: &mut [i32]) {
        for (t, pt) in p[..bs].iter().enumerate() {
            if *pt != 0 {
                for (e, a) in acc[..d].iter_mut().enumerate() {
                    *a += i32::from(*pt) * i32::from(*vt.add(v_at(d, t, e)));
                }
            }
        }
    }

    /// [`Dot::pv_i8`] for `pps.len()` rows (at most [`FUSED_ROWS`]) at
    /// once, row r's P pairs `pps[r]` into `accs[r][..d]`: the vector paths
    /// load and widen each V code once for all of them.
    ///
    /// # Safety
    /// As [`Dot::qk_i8`]; each `accs[r]` is valid for `d` elements.
    #[inline(always)]
    unsafe fn pv_i8_rows(
        vt: *const i8,
        bs: usize,
        d: usize,
        ps: &[&[i16]],
        pps: &[&[i32]],
        accs: &[*mut i32],
    ) {
        for r in 0..ps.len() {
            Self::pv_i8(
                vt,
                bs,
                d,
                ps[r],
                pps[r],
                std::slice::from_raw_parts_mut(accs[r], d),
            );
        }
    }

    /// e4m3 codes to raw f32 values (code value / 256, exact), `n` a
    /// multiple of 16: done once per tile, so that every row of the group
    /// multiplies converted values.
    ///
    /// # Safety
    /// `src` and `dst` hold `n` elements; the path's features are on.
    #[inline(always)]
    unsafe fn convert_e4m3(src: *const u8, n: usize, dst: *mut f32) {
        for i in (0..n).step_by(Self::S::LANES) {
            Self::S::store(dst.add(i), Self::S::raw_e4m3(src.add(i), false));
        }
    }

    /// `out[t] = Σ_e q[e] k[t][e]` in f32 for an e4m3 K tile converted by
    /// [`Dot::convert_e4m3`] (raw values: code value / 256): per key, even and odd dimensions summed apart,
    /// then added (the order of the vector paths). `qpat` is `q` as the
    /// vector paths broadcast it: `qpat[16 i + l] = q[2 i + l % 2]`.
    ///
    /// # Safety
    /// As [`Dot::qk_i8`].
    #[inline(always)]
    unsafe fn qk_e4m3(
        kt: *const f32,
        bs: usize,
        d: usize,
        q: &[f32],
        _qpat: &[f32],
        out: &mut [f32],
    ) {
        for (t, o) in out[..bs].iter_mut().enumerate() {
            let (mut even, mut odd) = (0.0f32, 0.0f32);
            for i in 0..d / 2 {
                even += q[2 * i] * *kt.add(k_at(bs, t, 2 * i));
                odd += q[2 * i + 1] * *kt.add(k_at(bs, t, 2 * i + 1));
            }
            *o = even + odd;
        }
    }

    /// [`Dot::qk_e4m3`] for `qs.len()` rows (at most [`FUSED_ROWS`]) at
    /// once: each K value is loaded once for all of them.
    ///
    /// # Safety
    /// As [`Dot::qk_i8_rows`].
    #[inline(always)]
    unsafe fn qk_e4m3_rows(
        kt: *const f32,
        bs: usize,
        d: usize,
        qs: &[&[f32]],
        qpats: &[&[f32]],
        outs: &[*mut f32],
    ) {
        for r in 0..qs.len() {
            Self::qk_e4m3(
                kt,
                bs,
                d,
                qs[r],
                qpats[r],
                std::slice::from_raw_parts_mut(outs[r], bs),
            );
        }
    }

    /// `acc2[2e + t % 2] += p[t] v[t][e]` for keys `t0..t1` of a converted
    /// e4m3 V tile (raw values); only those keys are read, so a NaN in a slot no
    /// row sees cannot reach the output. The caller adds each pair of
    /// `acc2` when the block ends.
    ///
    /// # Safety
    /// As [`Dot::qk_i8`]; `t0 <= t1 <= bs`.
    #[inline(always)]
    unsafe fn pv_e4m3(vt: *const f32, d: usize, t0: usize, t1: usize, p: &[f32], acc2: &mut [f32]) {
        for t in t0..t1 {
            if p[t] != 0.0 {
                for e in 0..d {
                    acc2[2 * e + (t & 1)] += p[t] * *vt.add(v_at(d, t, e));
                }
            }
        }
    }

    /// [`Dot::pv_e4m3`] for `ps.len()` rows (at most [`FUSED_ROWS`]) that
    /// see the same keys `t0..t1`, row r into `accs2[r][..2 * d]`.
    ///
    /// # Safety
    /// As [`Dot::pv_e4m3`].
    #[inline(always)]
    unsafe fn pv_e4m3_rows(
        vt: *const f32,
        d: usize,
        t0: usize,
        t1: usize,
        ps: &[&[f32]],
        accs2: &[*mut f32],
    ) {
        for r in 0..ps.len() {
            Self::pv_e4m3(
                vt,
                d,
                t0,
                t1,
                ps[r],
                std::slice::from_raw_parts_mut(accs2[r], 2 * d),
            );
        }
    }
}

/// The scalar path: the default definitions.
#[derive(Clone, Copy)]
pub struct ScalarDot;
impl Dot for ScalarDot {
    type S = crate::simd::Scalar;
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
pub use super::dot_x86::{Avx2Dot, Avx512Dot, VnniDot};
