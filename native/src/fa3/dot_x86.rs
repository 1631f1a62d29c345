//! The x86 kernel paths of dot.rs: the e4m3 products shared by AVX2 and
//! AVX-512 (generic over [`Isa`]): raw values (converted once per tile)
//! times broadcast pairs, fused multiply-adds whose products are exact, so
//! the sums are those of the scalar path. int8 is in dot_avx2.rs and
//! dot_avx512.rs: `vpmaddwd` or VNNI's `vpdpwssd` on codes sign-extended
//! to 16 bits, one key (QK) or one output dimension (PV) per 32-bit lane,
//! exact in i32.

use super::dot::Dot;
use super::layout::k_at;
use crate::simd::Isa;

pub use super::dot_avx2::Avx2Dot;
pub use super::dot_avx512::{Avx512Dot, VnniDot};

/// e4m3 `out[t] = Σ q k` for `S::LANES / 2` keys per vector: lanes hold
/// (key, even/odd dimension), added per key at the end.
#[inline(always)]
pub(super) unsafe fn qk_e4m3<S: Isa>(
    kt: *const f32,
    bs: usize,
    d: usize,
    qpat: &[f32],
    out: &mut [f32],
) {
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
pub(super) unsafe fn qk_e4m3_rows<S: Isa, const R: usize>(
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
pub(super) unsafe fn pv_e4m3_rows<S: Isa, const R: usize>(
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
macro_rules! rows_1_to_4 {
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
pub(super) unsafe fn pv_e4m3<S: Isa>(
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

pub(super) use rows_1_to_4 as rows;

/// The scalar definitions, for the odd keys at a range's edges.
#[derive(Clone, Copy)]
struct ScalarLike;
impl Dot for ScalarLike {
    type S = crate::simd::Scalar;
}
