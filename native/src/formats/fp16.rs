//! IEEE binary16, bit-exact with core/fp16.ts (`encodeFp16Array`,
//! `decodeFp16Array`): round to nearest even; NaN encodes as `sign | 0x7e00`
//! and decodes keeping its payload.

use super::round_half_even;

/// Encodes a float32 as fp16 bits (core's `encodeF32Bits`).
pub fn encode(x: f32) -> u16 {
    let u = x.to_bits();
    let sign = ((u >> 16) & 0x8000) as u16;
    let a = u & 0x7fff_ffff;
    if a >= 0x4780_0000 {
        return sign | if a > 0x7f80_0000 { 0x7e00 } else { 0x7c00 };
    }
    if a >= 0x3880_0000 {
        // Rebias by (127 - 15) << 23 and round 13 mantissa bits to even; a
        // carry out of the mantissa bumps the exponent (up to inf).
        return sign | ((a - 0x3800_0000 + 0xfff + ((a >> 13) & 1)) >> 13) as u16;
    }
    // Subnormal: |x| * 2^24 is exact in f64; its nearest integer is the code.
    sign | round_half_even(f64::from(x.abs()) * 16_777_216.0) as u16
}

/// The float32 bits of an fp16 value (exact; NaN payloads kept). `const` so
/// that the fp8 tables can be built at compile time.
pub const fn to_f32_bits(h: u16) -> u32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let a = (h as u32) & 0x7fff;
    if a >= 0x7c00 {
        return sign | 0x7f80_0000 | ((a & 0x3ff) << 13);
    }
    if a >= 0x400 {
        return sign | ((a << 13) + 0x3800_0000);
    }
    if a == 0 {
        return sign;
    }
    // Subnormal: normalise the mantissa, lowering the exponent per shift.
    let mut mant = a;
    let mut exp: u32 = 113; // 127 - 14
    while mant & 0x400 == 0 {
        mant <<= 1;
        exp -= 1;
    }
    sign | (exp << 23) | ((mant & 0x3ff) << 13)
}

/// Decodes fp16 bits to float32 (exact).
#[inline(always)]
pub fn decode(h: u16) -> f32 {
    f32::from_bits(to_f32_bits(h))
}
