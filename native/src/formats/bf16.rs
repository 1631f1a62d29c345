//! bfloat16, bit-exact with core/bf16.ts: the top 16 bits of a float32,
//! rounded to nearest even; NaN stays a quiet NaN with its sign.

/// Encodes a float32 as bf16 bits.
pub fn encode(x: f32) -> u16 {
    let u = x.to_bits();
    if u & 0x7fff_ffff > 0x7f80_0000 {
        // Set the quiet bit so that dropping payload bits cannot make inf.
        return ((u >> 16) | 0x0040) as u16;
    }
    // Adding 0x7fff plus the kept LSB carries exactly when RNE rounds up.
    (u.wrapping_add(0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// Decodes bf16 bits (exact).
#[inline(always)]
pub fn decode(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}
