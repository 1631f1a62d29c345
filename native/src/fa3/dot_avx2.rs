//! The `avx2` path of dot.rs: int8 with `vpmaddwd` on 8 lanes, e4m3
//! through the shared generic products (dot_x86.rs).

use super::dot::Dot;
use super::dot_x86::{pv_e4m3, pv_e4m3_rows, qk_e4m3, qk_e4m3_rows, rows};
use crate::simd::Avx2;
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[inline(always)]
#[allow(clippy::needless_range_loop)] // i indexes every row's pairs
unsafe fn qk_i8_avx2_rows<const R: usize>(
    kt: *const i8,
    bs: usize,
    d: usize,
    qps: &[&[i32]],
    outs: &[*mut i32],
) {
    for t0 in (0..bs).step_by(8) {
        let mut acc = [_mm256_setzero_si256(); R];
        for i in 0..d / 2 {
            let k = _mm256_cvtepi8_epi16(_mm_loadu_si128(kt.add((i * bs + t0) * 2).cast()));
            for r in 0..R {
                let prod = _mm256_madd_epi16(k, _mm256_set1_epi32(qps[r][i]));
                acc[r] = _mm256_add_epi32(acc[r], prod);
            }
        }
        for r in 0..R {
            _mm256_storeu_si256(outs[r].add(t0).cast(), acc[r]);
        }
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // r and j index several arrays
unsafe fn pv_i8_avx2_rows<const R: usize>(
    vt: *const i8,
    bs: usize,
    d: usize,
    pps: &[&[i32]],
    accs: &[*mut i32],
) {
    for e0 in (0..d).step_by(8) {
        let mut sum: [__m256i; R] =
            std::array::from_fn(|r| _mm256_loadu_si256(accs[r].add(e0).cast()));
        for j in 0..bs / 2 {
            let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(vt.add((j * d + e0) * 2).cast()));
            for r in 0..R {
                let prod = _mm256_madd_epi16(v, _mm256_set1_epi32(pps[r][j]));
                sum[r] = _mm256_add_epi32(sum[r], prod);
            }
        }
        for r in 0..R {
            _mm256_storeu_si256(accs[r].add(e0).cast(), sum[r]);
        }
    }
}

/// AVX2 + FMA + F16C: 8 lanes.
#[derive(Clone, Copy)]
pub struct Avx2Dot;
impl Dot for Avx2Dot {
    type S = Avx2;

    #[inline(always)]
    unsafe fn pv_i8_rows(
        vt: *const i8,
        bs: usize,
        d: usize,
        _ps: &[&[i16]],
        pps: &[&[i32]],
        accs: &[*mut i32],
    ) {
        macro_rules! go {
            ($r:literal,) => {
                pv_i8_avx2_rows::<$r>(vt, bs, d, pps, accs)
            };
        }
        rows!(pps.len(), go,)
    }

    #[inline(always)]
    unsafe fn pv_e4m3_rows(
        vt: *const f32,
        d: usize,
        t0: usize,
        t1: usize,
        ps: &[&[f32]],
        accs2: &[*mut f32],
    ) {
        macro_rules! go {
            ($r:literal,) => {
                pv_e4m3_rows::<Avx2, $r>(vt, d, t0, t1, ps, accs2)
            };
        }
        rows!(ps.len(), go,)
    }

    #[inline(always)]
    unsafe fn qk_i8_rows(
        kt: *const i8,
        bs: usize,
        d: usize,
        _qs: &[&[i8]],
        qps: &[&[i32]],
        outs: &[*mut i32],
    ) {
        macro_rules! go {
            ($r:literal,) => {
                qk_i8_avx2_rows::<$r>(kt, bs, d, qps, outs)
            };
        }
        rows!(qps.len(), go,)
    }

    #[inline(always)]
    unsafe fn qk_e4m3_rows(
        kt: *const f32,
        bs: usize,
        d: usize,
        _qs: &[&[f32]],
        qpats: &[&[f32]],
        outs: &[*mut f32],
    ) {
        macro_rules! go {
            ($r:literal,) => {
                qk_e4m3_rows::<Avx2, $r>(kt, bs, d, qpats, outs)
            };
        }
        rows!(qpats.len(), go,)
    }

    #[inline(always)]
    unsafe fn qk_i8(kt: *const i8, bs: usize, d: usize, _q: &[i8], qp: &[i32], out: &mut [i32]) {
        for t0 in (0..bs).step_by(8) {
            let mut acc = _mm256_setzero_si256();
            for (i, pair) in qp[..d / 2].iter().enumerate() {
                let k = _mm_loadu_si128(kt.add((i * bs + t0) * 2).cast());
                let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(k), _mm256_set1_epi32(*pair));
                acc = _mm256_add_epi32(acc, prod);
            }
            _mm256_storeu_si256(out.as_mut_ptr().add(t0).cast(), acc);
        }
    }

    #[inline(always)]
    unsafe fn pv_i8(vt: *const i8, bs: usize, d: usize, _p: &[i16], pp: &[i32], acc: &mut [i32]) {
        for e0 in (0..d).step_by(8) {
            let at = acc.as_mut_ptr().add(e0).cast();
            let mut sum = _mm256_loadu_si256(at);
            for (j, pair) in pp[..bs / 2].iter().enumerate() {
                if *pair != 0 {
                    let v = _mm_loadu_si128(vt.add((j * d + e0) * 2).cast());
                    let prod = _mm256_madd_epi16(_mm256_cvtepi8_epi16(v), _mm256_set1_epi32(*pair));
                    sum = _mm256_add_epi32(sum, prod);
                }
            }
            _mm256_storeu_si256(at, sum);
        }
    }

    #[inline(always)]
    unsafe fn qk_e4m3(
        kt: *const f32,
        bs: usize,
        d: usize,
        _q: &[f32],
        qpat: &[f32],
        out: &mut [f32],
    ) {
        qk_e4m3::<Avx2>(kt, bs, d, qpat, out)
    }

    #[inline(always)]
    unsafe fn pv_e4m3(vt: *const f32, d: usize, t0: usize, t1: usize, p: &[f32], acc2: &mut [f32]) {
        pv_e4m3::<Avx2>(vt, d, t0, t1, p, acc2)
    }
}
