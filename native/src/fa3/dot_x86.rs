//! The x86 kernel paths of dot.rs. int8: `vpmaddwd` (AVX2, AVX-512BW) or
//! VNNI's `vpdpwssd` on codes sign-extended to 16 bits, one key (QK) or one
//! output dimension (PV) per 32-bit lane, exact in i32. e4m3: the shared
//! SIMD loaders' raw values (converted once per tile) times broadcast pairs, fused multiply-adds
//! whose products are exact, so the sums are those of the scalar path.

use super::dot::Dot;
use super::layout::k_at;
use crate::simd::{Avx2, Avx512, Isa};
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// e4m3 `out[t] = Σ q k` for `S::LANES / 2` keys per vector: lanes hold
/// (key, even/odd dimension), added per key at the end.
#[inline(always)]
unsafe fn qk_e4m3<S: Isa>(kt: *const f32, bs: usize, d: usize, qpat: &[f32], out: &mut [f32]) {
    let per = S::LANES / 2;
    let mut lanes = [0.0f32; 16];
    for t0 in (0..bs).step_by(per) {
        let mut acc = S::zero();
        for i in 0..d / 2 {
            let k = S::load(kt.add(k_at(bs, t0, 2 * i)));
            acc = S::fma(S::load(qpat.as_ptr().add(16 * i)), k, acc);
        }
        S::store(lanes.as_mut_ptr(), acc);
        for t in 0..per {
            out[t0 + t] = lanes[2 * t] + lanes[2 * t + 1];
        }
    }
}

/// [`qk_e4m3`] for `R` rows at once, each K vector loaded once.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r and j index several arrays
unsafe fn qk_e4m3_rows<S: Isa, const R: usize>(
    kt: *const f32,
    bs: usize,
    d: usize,
    qpats: &[&[f32]],
    outs: &[*mut f32],
) {
    let per = S::LANES / 2;
    let mut lanes = [0.0f32; 16];
    for t0 in (0..bs).step_by(per) {
        let mut acc = [S::zero(); R];
        for i in 0..d / 2 {
            let k = S::load(kt.add(k_at(bs, t0, 2 * i)));
            for r in 0..R {
                acc[r] = S::fma(S::load(qpats[r].as_ptr().add(16 * i)), k, acc[r]);
            }
        }
        for r in 0..R {
            S::store(lanes.as_mut_ptr(), acc[r]);
            for t in 0..per {
                *outs[r].add(t0 + t) = lanes[2 * t] + lanes[2 * t + 1];
            }
        }
    }
}

/// [`pv_e4m3`] for `R` rows seeing the same keys, each V vector loaded
/// once.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // r and j index several arrays
unsafe fn pv_e4m3_rows<S: Isa, const R: usize>(
    vt: *const f32,
    d: usize,
    t0: usize,
    t1: usize,
    ps: &[&[f32]],
    accs2: &[*mut f32],
) {
    let (j0, j1) = (t0.div_ceil(2), t1 / 2);
    let lone = |t: usize| {
        for r in 0..R {
            let acc2 = std::slice::from_raw_parts_mut(accs2[r], 2 * d);
            ScalarLike::pv_e4m3(vt, d, t, t + 1, ps[r], acc2);
        }
    };
    if t0 % 2 == 1 {
        lone(t0);
    }
    if j0 < j1 {
        let mut pat = std::mem::MaybeUninit::<[f32; 4 * 32 * 16]>::uninit();
        let pat = pat.as_mut_ptr().cast::<f32>();
        let (even, odd) = (S::load(EVEN.as_ptr()), S::load(EVEN.as_ptr().add(1)));
        for r in 0..R {
            for j in j0..j1 {
                let w = S::mul(S::splat(ps[r][2 * j]), even);
                let at = pat.add((r * 32 + j) * 16);
                S::store(at, S::fma(S::splat(ps[r][2 * j + 1]), odd, w));
            }
        }
        for e0 in (0..2 * d).step_by(S::LANES) {
            let mut acc: [S::V; R] = std::array::from_fn(|r| S::load(accs2[r].add(e0)));
            for j in j0..j1 {
                let v = S::load(vt.add(2 * j * d + e0));
                for r in 0..R {
                    acc[r] = S::fma(S::load(pat.add((r * 32 + j) * 16)), v, acc[r]);
                }
            }
            for r in 0..R {
                S::store(accs2[r].add(e0), acc[r]);
            }
        }
    }
    if t1 % 2 == 1 && t1 > t0.max(2 * j1) {
        lone(t1 - 1);
    }
}

/// Calls `$f::<.., R>` for a row count of 1 to 4.
macro_rules! rows {
    ($n:expr, $call:ident, $($args:tt)*) => {
        match $n {
            1 => $call!(1, $($args)*),
            2 => $call!(2, $($args)*),
            3 => $call!(3, $($args)*),
            _ => $call!(4, $($args)*),
        }
    };
}

/// 1 in even lanes, 0 in odd ones (read from offset 1: the reverse).
static EVEN: [f32; 17] = [
    1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1., 0., 1.,
];

/// e4m3 `acc2[2e + t % 2] += p[t] v[t][e]` for keys `t0..t1`: whole pairs
/// in vectors (lanes hold (dimension, even/odd token)), a pair's lone
/// valid key on its own.
#[inline(always)]
unsafe fn pv_e4m3<S: Isa>(
    vt: *const f32,
    d: usize,
    t0: usize,
    t1: usize,
    p: &[f32],
    acc2: &mut [f32],
) {
    let (j0, j1) = (t0.div_ceil(2), t1 / 2);
    if t0 % 2 == 1 {
        ScalarLike::pv_e4m3(vt, d, t0, t0 + 1, p, acc2);
    }
    if j0 < j1 {
        // Each pair's weights as a vector (p[2j], p[2j + 1], ...), built
        // with two broadcasts; no zero-filling of the buffer.
        let mut pat = std::mem::MaybeUninit::<[f32; 32 * 16]>::uninit();
        let pat = pat.as_mut_ptr().cast::<f32>();
        let (even, odd) = (S::load(EVEN.as_ptr()), S::load(EVEN.as_ptr().add(1)));
        for j in j0..j1 {
            let w = S::mul(S::splat(p[2 * j]), even);
            S::store(pat.add(16 * j), S::fma(S::splat(p[2 * j + 1]), odd, w));
        }
        for e0 in (0..2 * d).step_by(S::LANES) {
            let mut acc = S::load(acc2.as_ptr().add(e0));
            for j in j0..j1 {
                if p[2 * j] != 0.0 || p[2 * j + 1] != 0.0 {
                    let v = S::load(vt.add(2 * j * d + e0));
                    acc = S::fma(S::load(pat.add(16 * j)), v, acc);
                }
            }
            S::store(acc2.as_mut_ptr().add(e0), acc);
        }
    }
    if t1 % 2 == 1 && t1 > t0.max(2 * j1) {
        ScalarLike::pv_e4m3(vt, d, t1 - 1, t1, p, acc2);
    }
}

/// The scalar definitions, for the odd keys at a range's edges.
#[derive(Clone, Copy)]
struct ScalarLike;
impl Dot for ScalarLike {
    type S = crate::simd::Scalar;
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
