//! OCP FP8 E4M3FN, bit-exact with core/fp8_e4m3.ts: `y = fp32(x / scale)`
//! rounded to nearest even, saturating to ±448 (infinities included), NaN
//! to 0x7f; decode is `fp32(value * scale)`.

use super::{fp16, round_half_even};

/// Encodes `x / scale` (one fp32 division) as an E4M3FN code.
pub fn encode(x: f32, scale: f32) -> u8 {
    let y = x / scale;
    let u = y.to_bits();
    let sign = ((u >> 24) & 0x80) as u8;
    let a = u & 0x7fff_ffff;
    if a > 0x43e0_0000 {
        return if a > 0x7f80_0000 { 0x7f } else { sign | 0x7e };
    }
    if a >= 0x3c80_0000 {
        // Rebias the exponent by (127 - 7) << 23, round away 20 mantissa bits.
        return sign | ((a - 0x3c00_0000 + 0x7_ffff + ((a >> 20) & 1)) >> 20) as u8;
    }
    // Subnormal (|y| < 2^-6): the code is |y| * 2^9 rounded to even.
    sign | round_half_even(f64::from(y.abs()) * 512.0) as u8
}

/// The fp16 bits whose value is the code's value times 2^-8: sign, then
/// exponent and mantissa shifted into place (fp16's bias 15 = 7 + 8), with
/// the NaN code (S.1111.111) given fp16's all-ones exponent. The SIMD
/// loaders compute exactly this and convert with F16C.
pub const fn to_f16_bits(code: u8) -> u16 {
    let c = code as u16;
    let magnitude = c & 0x7f;
    let nan = if magnitude == 0x7f { 0x7c00 } else { 0 };
    ((c & 0x80) << 8) | (magnitude << 7) | nan
}

const fn raw_table() -> [f32; 256] {
    let mut table = [0.0f32; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = f32::from_bits(fp16::to_f32_bits(to_f16_bits(code as u8)));
        code += 1;
    }
    table
}

/// Every code's value times 2^-8 (the raw value; see `KvDtype::raw_unit`).
pub static RAW: [f32; 256] = raw_table();

/// Decodes a code: `fp32(value * scale)`. The raw value times 256 is exact.
#[inline(always)]
pub fn decode(code: u8, scale: f32) -> f32 {
    RAW[usize::from(code)] * 256.0 * scale
}
