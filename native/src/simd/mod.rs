//! Vector instruction sets behind one trait, so that each kernel is written
//! once (generic over [`Isa`] and [`Codes`]) and compiled per kernel path
//! inside a `#[target_feature]` entry point. Every method is
//! `#[inline(always)]`: inlined into such an entry point, the intrinsics
//! compile with its features; nothing here may be called on its own.
//!
//! Loaders return *raw* values: the code's value divided by
//! `KvDtype::raw_unit()` (int8: the integer code), so dequantizing costs no
//! multiply per element: kernels fold `scale * raw_unit` into one factor per
//! row (see xformers/decode.rs).

mod avx2;
mod avx512;
mod codes;
pub mod dequantize;
mod scalar;

pub use avx2::Avx2;
pub use avx512::Avx512;
pub use codes::{Bf16Codes, Codes, E4m3Codes, E5m2Codes, F16Codes, F32Codes, I8Codes};
pub use scalar::Scalar;

/// One vector instruction set. `V` holds `LANES` f32 values.
///
/// # Safety
/// Every method needs the CPU features of its implementation; pointers must
/// be valid for `LANES` elements (`LANES / 2` when `half`).
pub trait Isa: Copy + 'static {
    /// f32 lanes per vector: 8 or 16. Head dims are multiples of 8, so a
    /// row ends in a full vector or, for 16 lanes, one half vector.
    const LANES: usize;
    /// Output columns per register slab in the P·V kernel: as many vectors
    /// as fit in registers beside 4 rows of accumulators.
    const SLAB: usize;
    /// Accumulator registers a score kernel may use (query rows times
    /// vectors of keys), leaving room for loads and broadcasts.
    const ACC_REGS: usize;
    type V: Copy;

    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Stores the low `LANES / 2` lanes only.
    unsafe fn store_half(p: *mut f32, v: Self::V);
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c`, fused.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// Lane-wise maximum; a NaN in `b` may be dropped (callers let NaN
    /// reach the output through `exp` instead).
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn reduce_add(v: Self::V) -> f32;
    unsafe fn reduce_max(v: Self::V) -> f32;
    /// e^x to about 1 ulp of f32; -inf and anything below the f32 range
    /// give 0; NaN stays NaN (a stray read must show in the output).
    unsafe fn exp(x: Self::V) -> Self::V;

    unsafe fn raw_f32(p: *const f32, half: bool) -> Self::V;
    unsafe fn raw_f16(p: *const u16, half: bool) -> Self::V;
    unsafe fn raw_bf16(p: *const u16, half: bool) -> Self::V;
    unsafe fn raw_e4m3(p: *const u8, half: bool) -> Self::V;
    unsafe fn raw_e5m2(p: *const u8, half: bool) -> Self::V;
    unsafe fn raw_i8(p: *const i8, half: bool) -> Self::V;
}

/// Cephes expf: e^x = 2^n * e^r with |r| <= ln2/2, r's exponential by a
/// degree-6 polynomial (relative error under 2^-23). Shared by the vector
/// implementations, which evaluate it lane-wise through these constants.
pub(crate) mod exp_consts {
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    pub const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    /// Below this e^x is not a normal f32 (e^-87.34 = 2^-126); above MAX_X
    /// 2^n would overflow (callers only pass x <= 0).
    pub const MIN_NORMAL_X: f32 = -87.336_55;
    pub const MAX_X: f32 = 88.376_26;
}
