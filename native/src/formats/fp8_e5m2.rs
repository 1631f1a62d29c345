//! OCP FP8 E5M2, bit-exact with core/fp8_e5m2.ts: `y = fp32(x / scale)`
//! rounded to nearest even; a finite input saturates to ±57344 even when
//! the division overflows; ±inf stays ±inf; NaN encodes to 0x7e. An E5M2
//! code is the top byte of the fp16 with the same value, which is how both
//! the decoder and the SIMD loaders read it.

use super::{fp16, round_half_even};

/// Encodes `x / scale` (one fp32 division) as an E5M2 code.
pub fn encode(x: f32, scale: f32) -> u8 {
    let y = x / scale;
    let u = y.to_bits();
    let sign = ((u >> 24) & 0x80) as u8;
    let a = u & 0x7fff_ffff;
    let code = if a > 0x4760_0000 {
        if a > 0x7f80_0000 {
            return 0x7e;
        }
        sign | if a == 0x7f80_0000 { 0x7c } else { 0x7b }
    } else if a >= 0x3880_0000 {
        // Rebias by (127 - 15) << 23, round away 21 mantissa bits.
        sign | ((a - 0x3800_0000 + 0xf_ffff + ((a >> 21) & 1)) >> 21) as u8
    } else {
        // Subnormal (|y| < 2^-14): |y| * 2^16 rounded to even.
        sign | round_half_even(f64::from(y.abs()) * 65536.0) as u8
    };
    if code & 0x7f == 0x7c && x.is_finite() {
        code - 1
    } else {
        code
    }
}

/// The code's value at scale 1 (exact).
#[inline(always)]
pub fn raw(code: u8) -> f32 {
    fp16::decode(u16::from(code) << 8)
}

/// Decodes a code: `fp32(value * scale)`.
#[inline(always)]
pub fn decode(code: u8, scale: f32) -> f32 {
    raw(code) * scale
}
