//! The `avx512` path (also run by `avx512_vnni`: xformers computes in f32
//! after dequantizing, so VNNI's int8 dot products have nothing to do here;
//! fa3's 8-bit compute is where they belong). 16 f32 lanes; codes widen in
//! 256-bit registers (AVX2) and convert with AVX-512F's `vcvtph2ps`.

use super::exp_consts as c;
use super::Isa;
#[cfg(target_arch = "x86")]
use std::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// AVX-512F + BW (with AVX2 + FMA + F16C), 512-bit vectors.
#[derive(Clone, Copy)]
pub struct Avx512;

/// 16 (or 8 when `half`, the rest 0) bytes.
#[inline(always)]
unsafe fn bytes(p: *const u8, half: bool) -> __m128i {
    if half {
        _mm_loadl_epi64(p.cast())
    } else {
        _mm_loadu_si128(p.cast())
    }
}

/// 16 (or 8) 16-bit codes.
#[inline(always)]
unsafe fn load_u16(p: *const u16, half: bool) -> __m256i {
    if half {
        _mm256_zextsi128_si256(_mm_loadu_si128(p.cast()))
    } else {
        _mm256_loadu_si256(p.cast())
    }
}

impl Isa for Avx512 {
    const LANES: usize = 16;
    // 32 zmm registers: 4 rows x 4 columns of accumulators, 4 weights, values.
    const SLAB: usize = 4;
    const ACC_REGS: usize = 16;
    type V = __m512;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn store_half(p: *mut f32, v: __m512) {
        _mm512_mask_storeu_ps(p, 0x00ff, v)
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        _mm512_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn reduce_add(v: __m512) -> f32 {
        _mm512_reduce_add_ps(v)
    }
    #[inline(always)]
    unsafe fn reduce_max(v: __m512) -> f32 {
        _mm512_reduce_max_ps(v)
    }
    #[inline(always)]
    unsafe fn exp(x: __m512) -> __m512 {
        // max/min return their second operand when either is NaN: x is
        // second. Below -104, scalef underflows to exactly 0.
        let t = _mm512_min_ps(_mm512_set1_ps(c::MAX_X), x);
        let t = _mm512_max_ps(_mm512_set1_ps(-104.0), t);
        let n = _mm512_roundscale_ps(
            _mm512_mul_ps(t, _mm512_set1_ps(c::LOG2E)),
            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(c::LN2_HI), t);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(c::LN2_LO), r);
        let mut p = _mm512_set1_ps(c::P[0]);
        for k in c::P.iter().skip(1) {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(*k));
        }
        let r2 = _mm512_mul_ps(r, r);
        let p = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0));
        _mm512_scalef_ps(p, n)
    }

    #[inline(always)]
    unsafe fn raw_f32(p: *const f32, half: bool) -> __m512 {
        if half {
            _mm512_maskz_loadu_ps(0x00ff, p)
        } else {
            _mm512_loadu_ps(p)
        }
    }
    #[inline(always)]
    unsafe fn raw_f16(p: *const u16, half: bool) -> __m512 {
        _mm512_cvtph_ps(load_u16(p, half))
    }
    #[inline(always)]
    unsafe fn raw_bf16(p: *const u16, half: bool) -> __m512 {
        _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(load_u16(p, half)),
            16,
        ))
    }
    #[inline(always)]
    unsafe fn raw_e4m3(p: *const u8, half: bool) -> __m512 {
        // As `avx2::e4m3_to_f16_128`, on 16 lanes.
        let h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes(p, half)), 7);
        let h = _mm256_and_si256(h, _mm256_set1_epi16(0xbf80u16 as i16));
        let nan = _mm256_and_si256(
            _mm256_add_epi16(h, _mm256_set1_epi16(0x80)),
            _mm256_set1_epi16(0x4000),
        );
        let h = _mm256_or_si256(h, nan);
        _mm512_cvtph_ps(h)
    }
    #[inline(always)]
    unsafe fn raw_e5m2(p: *const u8, half: bool) -> __m512 {
        _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes(p, half)), 8))
    }
    #[inline(always)]
    unsafe fn raw_i8(p: *const i8, half: bool) -> __m512 {
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes(p.cast(), half)))
    }
}
