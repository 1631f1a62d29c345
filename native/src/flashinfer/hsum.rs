//! Many dot products finished at once: `LANES` accumulator vectors become
//! one vector whose lane i is the sum of vector i. A shuffle tree shares
//! its work across all of them (about 3 operations per score on avx512)
//! where a horizontal sum per score would cost 8.

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
use crate::simd::{Avx2, Avx512};
use crate::simd::{Isa, Scalar};
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// An [`Isa`] that can sum `LANES` vectors lane-wise into one.
pub trait HSum: Isa {
    /// `v` holds `LANES` vectors; lane i of the result is Σ lanes of `v[i]`.
    ///
    /// # Safety
    /// As [`Isa`]; `v.len() == LANES`.
    unsafe fn sum_each(v: &[Self::V]) -> Self::V;
}

impl HSum for Scalar {
    #[inline(always)]
    unsafe fn sum_each(v: &[[f32; 8]]) -> [f32; 8] {
        let mut out = [0.0; 8];
        for (y, x) in out.iter_mut().zip(v) {
            *y = Scalar::reduce_add(*x);
        }
        out
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl HSum for Avx2 {
    #[inline(always)]
    unsafe fn sum_each(v: &[__m256]) -> __m256 {
        // hadd twice gives [v0..v3 low halves | v0..v3 high halves].
        let t0 = _mm256_hadd_ps(v[0], v[1]);
        let t1 = _mm256_hadd_ps(v[2], v[3]);
        let t2 = _mm256_hadd_ps(v[4], v[5]);
        let t3 = _mm256_hadd_ps(v[6], v[7]);
        let u0 = _mm256_hadd_ps(t0, t1);
        let u1 = _mm256_hadd_ps(t2, t3);
        _mm256_add_ps(
            _mm256_permute2f128_ps(u0, u1, 0x20),
            _mm256_permute2f128_ps(u0, u1, 0x31),
        )
    }
}

/// Pairwise sums inside each 128-bit block: [e0+e1, e2+e3, f0+f1, f2+f3].
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[inline(always)]
unsafe fn pair(e: __m512, f: __m512) -> __m512 {
    _mm512_add_ps(_mm512_shuffle_ps(e, f, 0x88), _mm512_shuffle_ps(e, f, 0xdd))
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
impl HSum for Avx512 {
    #[inline(always)]
    unsafe fn sum_each(v: &[__m512]) -> __m512 {
        // No closures here: they would compile without AVX-512 enabled.
        // 16 -> 8: halves of each vector added, two vectors per register.
        let mut w = [_mm512_setzero_ps(); 8];
        for i in 0..8 {
            let (a, b) = (v[2 * i], v[2 * i + 1]);
            w[i] = _mm512_add_ps(
                _mm512_shuffle_f32x4(a, b, 0x44),
                _mm512_shuffle_f32x4(a, b, 0xee),
            );
        }
        // 8 -> 4: 128-bit block k of x[i] holds 4 partials of v[4i + k].
        let mut x = [_mm512_setzero_ps(); 4];
        for i in 0..4 {
            let (c, d) = (w[2 * i], w[2 * i + 1]);
            x[i] = _mm512_add_ps(
                _mm512_shuffle_f32x4(c, d, 0x88),
                _mm512_shuffle_f32x4(c, d, 0xdd),
            );
        }
        let y0 = pair(x[0], x[1]);
        let y1 = pair(x[2], x[3]);
        // Lane 4k + m now holds the sum of v[4m + k]: transpose it back.
        let sums = pair(y0, y1);
        let index = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
        _mm512_permutexvar_ps(index, sums)
    }
}
