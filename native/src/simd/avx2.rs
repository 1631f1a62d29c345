//! The `avx2` path: 8 f32 lanes (AVX2 + FMA + F16C). fp16, e5m2 and e4m3
//! all convert through F16C's exact `vcvtph2ps`: an e5m2 code is the top
//! byte of an fp16, and an e4m3 code becomes fp16 bits with bias 15 (its
//! value times 2^-8; see formats/fp8_e4m3.rs).

use super::exp_consts as c;
use super::Isa;
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// AVX2 + FMA + F16C, 256-bit vectors.
#[derive(Clone, Copy)]
pub struct Avx2;

/// 8 (or 4 when `half`, the rest 0) bytes, widened to 16-bit lanes.
#[inline(always)]
unsafe fn bytes_to_16(p: *const u8, half: bool, signed: bool) -> __m128i {
    let bytes = if half {
        _mm_cvtsi32_si128(p.cast::<i32>().read_unaligned())
    } else {
        _mm_loadl_epi64(p.cast())
    };
    if signed {
        _mm_cvtepi8_epi16(bytes)
    } else {
        _mm_cvtepu8_epi16(bytes)
    }
}

/// fp16 bits of e4m3 codes that were sign-extended to 16 bits (see
/// `fp8_e4m3::to_f16_bits`), in five operations: shifting the sign-extended
/// code left by 7 puts the sign at bit 15, a copy of it at bit 14 (cleared
/// by the mask) and exponent and mantissa at bits 7..13. The NaN code
/// (magnitude 0x7f, bits 7..13 all set) is the only one for which adding
/// 0x80 carries into bit 14; setting bit 14 then makes fp16's exponent all
/// ones: NaN.
#[inline(always)]
unsafe fn e4m3_to_f16_128(sign_extended: __m128i) -> __m128i {
    let h = _mm_and_si128(
        _mm_slli_epi16(sign_extended, 7),
        _mm_set1_epi16(0xbf80u16 as i16),
    );
    let nan = _mm_and_si128(
        _mm_add_epi16(h, _mm_set1_epi16(0x80)),
        _mm_set1_epi16(0x4000),
    );
    _mm_or_si128(h, nan)
}

impl Isa for Avx2 {
    const LANES: usize = 8;
    // 16 ymm registers: 4 rows x 2 columns of accumulators, 4 weights, 1 value.
    const SLAB: usize = 2;
    const ACC_REGS: usize = 8;
    type V = __m256;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        _mm256_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        _mm256_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        _mm256_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn store_half(p: *mut f32, v: __m256) {
        _mm_storeu_ps(p, _mm256_castps256_ps128(v))
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        _mm256_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        _mm256_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        _mm256_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        _mm256_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        _mm256_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn reduce_add(v: __m256) -> f32 {
        let x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        _mm_cvtss_f32(_mm_add_ss(x, _mm_movehdup_ps(x)))
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m256) -> f32 {
        let x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let x = _mm_max_ps(x, _mm_movehl_ps(x, x));
        _mm_cvtss_f32(_mm_max_ss(x, _mm_movehdup_ps(x)))
    }
    #[inline(always)]
    unsafe fn exp(x: __m256) -> __m256 {
        // max/min return their second operand when either is NaN: x is second.
        let t = _mm256_min_ps(_mm256_set1_ps(c::MAX_X), x);
        let t = _mm256_max_ps(_mm256_set1_ps(c::MIN_NORMAL_X), t);
        let n = _mm256_round_ps(
            _mm256_mul_ps(t, _mm256_set1_ps(c::LOG2E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(c::LN2_HI), t);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(c::LN2_LO), r);
        let mut p = _mm256_set1_ps(c::P[0]);
        for k in c::P.iter().skip(1) {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(*k));
        }
        let r2 = _mm256_mul_ps(r, r);
        let p = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0));
        let bits = _mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
            23,
        );
        let e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
        // Below the normal range (and -inf) the true value is < 2^-126: 0.
        let tiny = _mm256_cmp_ps(x, _mm256_set1_ps(c::MIN_NORMAL_X), _CMP_LT_OQ);
        _mm256_andnot_ps(tiny, e)
    }

    #[inline(always)]
    unsafe fn raw_f32(p: *const f32, half: bool) -> __m256 {
        if half {
            _mm256_zextps128_ps256(_mm_loadu_ps(p))
        } else {
            _mm256_loadu_ps(p)
        }
    }
    #[inline(always)]
    unsafe fn raw_f16(p: *const u16, half: bool) -> __m256 {
        let h = if half {
            _mm_loadl_epi64(p.cast())
        } else {
            _mm_loadu_si128(p.cast())
        };
        _mm256_cvtph_ps(h)
    }
    #[inline(always)]
    unsafe fn raw_bf16(p: *const u16, half: bool) -> __m256 {
        let h = if half {
            _mm_loadl_epi64(p.cast())
        } else {
            _mm_loadu_si128(p.cast())
        };
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
    }
    #[inline(always)]
    unsafe fn raw_e4m3(p: *const u8, half: bool) -> __m256 {
        _mm256_cvtph_ps(e4m3_to_f16_128(bytes_to_16(p, half, true)))
    }
    #[inline(always)]
    unsafe fn raw_e5m2(p: *const u8, half: bool) -> __m256 {
        _mm256_cvtph_ps(_mm_slli_epi16(bytes_to_16(p, half, false), 8))
    }
    #[inline(always)]
    unsafe fn raw_i8(p: *const i8, half: bool) -> __m256 {
        let bytes = if half {
            _mm_cvtsi32_si128(p.cast::<i32>().read_unaligned())
        } else {
            _mm_loadl_epi64(p.cast())
        };
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes))
    }
}
