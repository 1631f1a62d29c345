//! The KV cache number formats, bit-exact with core/ (docs/FORMATS.md):
//! encode for cache writes, decode for readouts, and the "raw" values the
//! SIMD loaders produce on the hot path (see [`KvDtype::raw_unit`]).

pub mod bf16;
pub mod fp16;
pub mod fp8_e4m3;
pub mod fp8_e5m2;
pub mod int8;

/// A KV cache element type, named as core/dtype.ts names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvDtype {
    Fp32,
    Fp16,
    Bf16,
    Fp8E4m3,
    Fp8E5m2,
    Int8,
}

impl KvDtype {
    /// Every dtype, in core's order.
    pub const ALL: [KvDtype; 6] = [
        KvDtype::Fp32,
        KvDtype::Fp16,
        KvDtype::Bf16,
        KvDtype::Fp8E4m3,
        KvDtype::Fp8E5m2,
        KvDtype::Int8,
    ];

    /// The name core uses (`"fp8_e4m3"`).
    pub fn name(self) -> &'static str {
        match self {
            KvDtype::Fp32 => "fp32",
            KvDtype::Fp16 => "fp16",
            KvDtype::Bf16 => "bf16",
            KvDtype::Fp8E4m3 => "fp8_e4m3",
            KvDtype::Fp8E5m2 => "fp8_e5m2",
            KvDtype::Int8 => "int8",
        }
    }

    /// Parses a core dtype name exactly (aliases are resolved in TypeScript).
    pub fn parse(text: &str) -> Option<KvDtype> {
        KvDtype::ALL.into_iter().find(|dtype| dtype.name() == text)
    }

    /// True for the 8-bit formats, stored as x / scale.
    pub fn quantized(self) -> bool {
        matches!(self, KvDtype::Fp8E4m3 | KvDtype::Fp8E5m2 | KvDtype::Int8)
    }

    /// What one raw unit is worth before the layer scale: the loaders give
    /// `value / raw_unit` (e4m3 decodes through fp16 bits, which are 2^-8 of
    /// the e4m3 value), and the kernels fold `raw_unit * scale` into one
    /// factor per row instead of multiplying every element.
    pub fn raw_unit(self) -> f32 {
        if self == KvDtype::Fp8E4m3 {
            256.0
        } else {
            1.0
        }
    }
}

/// Rounds to the nearest integer, ties to even, exactly as core's
/// `RNE_MAGIC` does: adding then subtracting 1.5 * 2^52 leaves no fraction
/// bits (valid for |x| < 2^51; callers pass |x| <= 2^24). Inline arithmetic,
/// where `f64::round_ties_even` calls libm's `rint`.
#[inline(always)]
pub fn round_half_even(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    (x + MAGIC) - MAGIC
}
