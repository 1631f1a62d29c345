//! The portable path: eight f32 lanes in an array, one element at a time
//! (the compiler may still use SSE2, the x86-64 baseline). Codes decode
//! through core's exact scalar functions and the e4m3 table.

use super::Isa;
use crate::formats::{bf16, fp16, fp8_e4m3, fp8_e5m2};

const N: usize = 8;

/// No vector extensions.
#[derive(Clone, Copy)]
pub struct Scalar;

#[inline(always)]
fn map(f: impl Fn(usize) -> f32) -> [f32; N] {
    std::array::from_fn(f)
}

#[inline(always)]
unsafe fn raw<T: Copy>(p: *const T, half: bool, f: impl Fn(T) -> f32) -> [f32; N] {
    let n = if half { N / 2 } else { N };
    map(|i| if i < n { f(*p.add(i)) } else { 0.0 })
}

impl Isa for Scalar {
    const LANES: usize = N;
    const SLAB: usize = 2;
    const ACC_REGS: usize = 8;
    type V = [f32; N];

    #[inline(always)]
    unsafe fn zero() -> [f32; N] {
        [0.0; N]
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> [f32; N] {
        [x; N]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> [f32; N] {
        map(|i| *p.add(i))
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: [f32; N]) {
        for (i, x) in v.into_iter().enumerate() {
            *p.add(i) = x;
        }
    }
    #[inline(always)]
    unsafe fn store_half(p: *mut f32, v: [f32; N]) {
        for (i, x) in v.into_iter().take(N / 2).enumerate() {
            *p.add(i) = x;
        }
    }
    #[inline(always)]
    unsafe fn add(a: [f32; N], b: [f32; N]) -> [f32; N] {
        map(|i| a[i] + b[i])
    }
    #[inline(always)]
    unsafe fn sub(a: [f32; N], b: [f32; N]) -> [f32; N] {
        map(|i| a[i] - b[i])
    }
    #[inline(always)]
    unsafe fn mul(a: [f32; N], b: [f32; N]) -> [f32; N] {
        map(|i| a[i] * b[i])
    }
    #[inline(always)]
    unsafe fn fma(a: [f32; N], b: [f32; N], c: [f32; N]) -> [f32; N] {
        // Separate multiply and add: fused would call libm's fmaf per lane.
        map(|i| a[i] * b[i] + c[i])
    }
    #[inline(always)]
    unsafe fn max(a: [f32; N], b: [f32; N]) -> [f32; N] {
        map(|i| a[i].max(b[i]))
    }
    #[inline(always)]
    unsafe fn reduce_add(v: [f32; N]) -> f32 {
        // Pairwise, like the vector paths' trees.
        ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
    }
    #[inline(always)]
    unsafe fn reduce_max(v: [f32; N]) -> f32 {
        v.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
    #[inline(always)]
    unsafe fn exp(x: [f32; N]) -> [f32; N] {
        map(|i| x[i].exp())
    }

    #[inline(always)]
    unsafe fn raw_f32(p: *const f32, half: bool) -> [f32; N] {
        raw(p, half, |x| x)
    }
    #[inline(always)]
    unsafe fn raw_f16(p: *const u16, half: bool) -> [f32; N] {
        raw(p, half, fp16::decode)
    }
    #[inline(always)]
    unsafe fn raw_bf16(p: *const u16, half: bool) -> [f32; N] {
        raw(p, half, bf16::decode)
    }
    #[inline(always)]
    unsafe fn raw_e4m3(p: *const u8, half: bool) -> [f32; N] {
        raw(p, half, |c| fp8_e4m3::RAW[usize::from(c)])
    }
    #[inline(always)]
    unsafe fn raw_e5m2(p: *const u8, half: bool) -> [f32; N] {
        raw(p, half, fp8_e5m2::raw)
    }
    #[inline(always)]
    unsafe fn raw_i8(p: *const i8, half: bool) -> [f32; N] {
        raw(p, half, f32::from)
    }
}
