//! Whole-array dequantization through one kernel path's loaders, for the
//! `dequantizeCodes` export: tests use it to prove every path's loaders
//! bit-exact with core's decoders (`fp32((raw - zp) * scale * raw_unit)`
//! equals core's `fp32(value * scale)`: both products are exact before
//! their one rounding).

use super::{Bf16Codes, Codes, E4m3Codes, E5m2Codes, F16Codes, F32Codes, I8Codes, Isa, Scalar};
use crate::kernel_path::KernelPath;

/// Codes of any dtype, read-only.
#[derive(Clone, Copy)]
pub enum AnyCodes<'a> {
    F32(&'a [f32]),
    F16(&'a [u16]),
    Bf16(&'a [u16]),
    E4m3(&'a [u8]),
    E5m2(&'a [u8]),
    I8(&'a [i8]),
}

#[inline(always)]
unsafe fn run<S: Isa, C: Codes>(codes: &[C::T], scale: f32, zp: f32, out: &mut [f32]) {
    let mul = S::splat(scale * C::DTYPE.raw_unit());
    let zero = S::splat(zp);
    let mut lanes = [0.0f32; 16];
    for (chunk, dst) in codes.chunks(S::LANES).zip(out.chunks_mut(S::LANES)) {
        // A short last chunk loads from a zero-padded copy.
        let mut padded = [C::T::default(); 16];
        padded[..chunk.len()].copy_from_slice(chunk);
        let raw = C::load::<S>(padded.as_ptr(), false);
        S::store(lanes.as_mut_ptr(), S::mul(S::sub(raw, zero), mul));
        dst.copy_from_slice(&lanes[..dst.len()]);
    }
}

unsafe fn scalar<C: Codes>(codes: &[C::T], scale: f32, zp: f32, out: &mut [f32]) {
    run::<Scalar, C>(codes, scale, zp, out)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2<C: Codes>(codes: &[C::T], scale: f32, zp: f32, out: &mut [f32]) {
    run::<super::Avx2, C>(codes, scale, zp, out)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn avx512<C: Codes>(codes: &[C::T], scale: f32, zp: f32, out: &mut [f32]) {
    run::<super::Avx512, C>(codes, scale, zp, out)
}

fn by_path<C: Codes>(path: KernelPath, codes: &[C::T], scale: f32, zp: f32, out: &mut [f32]) {
    // Safety: `path` comes from kernel_path, which only selects paths this
    // CPU supports.
    unsafe {
        match path {
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            KernelPath::Avx2 => avx2::<C>(codes, scale, zp, out),
            #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
            KernelPath::Avx512 | KernelPath::Avx512Vnni => avx512::<C>(codes, scale, zp, out),
            _ => scalar::<C>(codes, scale, zp, out),
        }
    }
}

/// `out[i] = value(codes[i])`, dequantized on `path` (`out` at least as
/// long as `codes`). Scale and zero point are ignored by 16/32-bit codes.
pub fn dequantize(path: KernelPath, codes: AnyCodes, scale: f32, zero_point: i32, out: &mut [f32]) {
    let zp = zero_point as f32;
    match codes {
        AnyCodes::F32(c) => by_path::<F32Codes>(path, c, 1.0, 0.0, out),
        AnyCodes::F16(c) => by_path::<F16Codes>(path, c, 1.0, 0.0, out),
        AnyCodes::Bf16(c) => by_path::<Bf16Codes>(path, c, 1.0, 0.0, out),
        AnyCodes::E4m3(c) => by_path::<E4m3Codes>(path, c, scale, 0.0, out),
        AnyCodes::E5m2(c) => by_path::<E5m2Codes>(path, c, scale, 0.0, out),
        AnyCodes::I8(c) => by_path::<I8Codes>(path, c, scale, zp, out),
    }
}
