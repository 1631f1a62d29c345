//! The `avx512` and `avx512_vnni` paths of dot.rs: int8 on 16 lanes with
//! `vpmaddwd` + `vpaddd` (AVX-512BW) or one `vpdpwssd` (VNNI), e4m3
//! through the shared generic products (dot_x86.rs).

use super::dot::Dot;
use super::dot_x86::{pv_e4m3, pv_e4m3_rows, qk_e4m3, qk_e4m3_rows, rows};
use crate::simd::Avx512;
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// int8 QK and PV on 512-bit vectors, with `vpmaddwd` + `vpaddd` or, when
/// `VNNI`, one `vpdpwssd`.
#[inline(always)]
unsafe fn madd512<const VNNI: bool>(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    if VNNI {
        _mm512_dpwssd_epi32(acc, a, b)
    } else {
        _mm512_add_epi32(acc, _mm512_madd_epi16(a, b))
    }
}

#[inline(always)]
unsafe fn qk_i8_512<const VNNI: bool>(
    kt: *const i8,
    bs: usize,
    d: usize,
    qp: &[i32],
    out: &mut [i32],
) {
    for t0 in (0..bs).step_by(16) {
        let mut acc = _mm512_setzero_si512();
        for (i, pair) in qp[..d / 2].iter().enumerate() {
            let k = _mm512_cvtepi8_epi16(_mm256_loadu_si256(kt.add((i * bs + t0) * 2).cast()));
            acc = madd512::<VNNI>(acc, k, _mm512_set1_epi32(*pair));
        }
        _mm512_storeu_si512(out.as_mut_ptr().add(t0).cast(), acc);
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // i indexes every row's pairs
unsafe fn qk_i8_512_rows<const VNNI: bool, const R: usize>(
    kt: *const i8,
    bs: usize,
    d: usize,
    qps: &[&[i32]],
    outs: &[*mut i32],
) {
    for t0 in (0..bs).step_by(16) {
        let mut acc = [_mm512_setzero_si512(); R];
        for i in 0..d / 2 {
            let k = _mm512_cvtepi8_epi16(_mm256_loadu_si256(kt.add((i * bs + t0) * 2).cast()));
            for r in 0..R {
                acc[r] = madd512::<VNNI>(acc[r], k, _mm512_set1_epi32(qps[r][i]));
            }
        }
        for r in 0..R {
            _mm512_storeu_si512(outs[r].add(t0).cast(), acc[r]);
        }
    }
}

#[inline(always)]
unsafe fn pv_i8_512<const VNNI: bool>(
    vt: *const i8,
    bs: usize,
    d: usize,
    pp: &[i32],
    acc: &mut [i32],
) {
    for e0 in (0..d).step_by(16) {
        let at = acc.as_mut_ptr().add(e0).cast();
        let mut sum = _mm512_loadu_si512(at);
        for (j, pair) in pp[..bs / 2].iter().enumerate() {
            if *pair != 0 {
                let v = _mm512_cvtepi8_epi16(_mm256_loadu_si256(vt.add((j * d + e0) * 2).cast()));
                sum = madd512::<VNNI>(sum, v, _mm512_set1_epi32(*pair));
            }
        }
        _mm512_storeu_si512(at, sum);
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)] // r and j index several arrays
unsafe fn pv_i8_512_rows<const VNNI: bool, const R: usize>(
    vt: *const i8,
    bs: usize,
    d: usize,
    pps: &[&[i32]],
    accs: &[*mut i32],
) {
    for e0 in (0..d).step_by(16) {
        let mut sum: [__m512i; R] =
            std::array::from_fn(|r| _mm512_loadu_si512(accs[r].add(e0).cast()));
        for j in 0..bs / 2 {
            let v = _mm512_cvtepi8_epi16(_mm256_loadu_si256(vt.add((j * d + e0) * 2).cast()));
            for r in 0..R {
                sum[r] = madd512::<VNNI>(sum[r], v, _mm512_set1_epi32(pps[r][j]));
            }
        }
        for r in 0..R {
            _mm512_storeu_si512(accs[r].add(e0).cast(), sum[r]);
        }
    }
}

macro_rules! avx512_dot {
    ($name:ident, $vnni:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        pub struct $name;
        impl Dot for $name {
            type S = Avx512;

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
                        pv_i8_512_rows::<$vnni, $r>(vt, bs, d, pps, accs)
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
                        pv_e4m3_rows::<Avx512, $r>(vt, d, t0, t1, ps, accs2)
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
                        qk_i8_512_rows::<$vnni, $r>(kt, bs, d, qps, outs)
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
                        qk_e4m3_rows::<Avx512, $r>(kt, bs, d, qpats, outs)
                    };
                }
                rows!(qpats.len(), go,)
            }

            #[inline(always)]
            unsafe fn qk_i8(
                kt: *const i8,
                bs: usize,
                d: usize,
                _q: &[i8],
                qp: &[i32],
                out: &mut [i32],
            ) {
                qk_i8_512::<$vnni>(kt, bs, d, qp, out)
            }

            #[inline(always)]
            unsafe fn pv_i8(
                vt: *const i8,
                bs: usize,
                d: usize,
                _p: &[i16],
                pp: &[i32],
                acc: &mut [i32],
            ) {
                pv_i8_512::<$vnni>(vt, bs, d, pp, acc)
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
                qk_e4m3::<Avx512>(kt, bs, d, qpat, out)
            }

            #[inline(always)]
            unsafe fn pv_e4m3(
                vt: *const f32,
                d: usize,
                t0: usize,
                t1: usize,
                p: &[f32],
                acc2: &mut [f32],
            ) {
                pv_e4m3::<Avx512>(vt, d, t0, t1, p, acc2)
            }
        }
    };
}

avx512_dot!(
    Avx512Dot,
    false,
    "AVX-512F + BW: 16 lanes, `vpmaddwd` for int8."
);
avx512_dot!(
    VnniDot,
    true,
    "AVX-512 VNNI: 16 lanes, `vpdpwssd` for int8."
);
