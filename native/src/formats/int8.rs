//! int8 codes, bit-exact with core/int8.ts: encode is
//! `q = clamp(rne(fp32(x / scale)) + zp, -128, 127)`, NaN encodes as the
//! zero point; decode is `fp32((q - zp) * scale)`. Per (token, head) scales
//! are `fp32(amax / 127)` over the finite values, 1 when that is 0.

use super::round_half_even;

/// Encodes `x / scale` (one fp32 division) with a zero point.
pub fn encode(x: f32, scale: f32, zero_point: i32) -> i8 {
    let y = x / scale;
    if y.is_nan() {
        return zero_point as i8;
    }
    // Clamping first keeps the rounding in range and cannot change the
    // result: any |y| >= 1024 clamps to the same bound for every zero point.
    let r = round_half_even(f64::from(y.clamp(-1024.0, 1024.0))) as i32;
    (r + zero_point).clamp(-128, 127) as i8
}

/// Decodes a code: `fp32((q - zp) * scale)`; the product is exact before
/// its one rounding, as in core.
#[inline(always)]
pub fn decode(code: i8, scale: f32, zero_point: i32) -> f32 {
    (i32::from(code) - zero_point) as f32 * scale
}

/// The dynamic symmetric scale of one (token, head) row (core's
/// `quantizeInt8PerTokenHead`): infinities and NaN are left out of amax.
pub fn row_scale(row: &[f32]) -> f32 {
    let amax = row
        .iter()
        .map(|x| x.abs())
        .filter(|a| *a < f32::INFINITY)
        .fold(0.0f32, f32::max);
    // f64 division then one rounding to f32, exactly Math.fround(amax / 127).
    let scale = (f64::from(amax) / 127.0) as f32;
    if scale == 0.0 {
        1.0
    } else {
        scale
    }
}
