//! Which loader reads which code type: the element type of a cache and the
//! [`Isa`] method that turns its codes into raw f32 values.

use super::Isa;
use crate::formats::KvDtype;

/// A cache element type, as the kernels see it.
pub trait Codes: Copy + Send + Sync + 'static {
    type T: Copy + Default + Send + Sync + 'static;
    const DTYPE: KvDtype;
    /// `S::LANES` raw values (or `S::LANES / 2` when `half`).
    ///
    /// # Safety
    /// As [`Isa`]'s loaders.
    unsafe fn load<S: Isa>(p: *const Self::T, half: bool) -> S::V;
}

macro_rules! codes {
    ($name:ident, $t:ty, $dtype:expr, $method:ident) => {
        #[doc = concat!("Codes of a `", stringify!($t), "` cache.")]
        #[derive(Clone, Copy)]
        pub struct $name;
        impl Codes for $name {
            type T = $t;
            const DTYPE: KvDtype = $dtype;
            #[inline(always)]
            unsafe fn load<S: Isa>(p: *const $t, half: bool) -> S::V {
                S::$method(p, half)
            }
        }
    };
}

codes!(F32Codes, f32, KvDtype::Fp32, raw_f32);
codes!(F16Codes, u16, KvDtype::Fp16, raw_f16);
codes!(Bf16Codes, u16, KvDtype::Bf16, raw_bf16);
codes!(E4m3Codes, u8, KvDtype::Fp8E4m3, raw_e4m3);
codes!(E5m2Codes, u8, KvDtype::Fp8E5m2, raw_e5m2);
codes!(I8Codes, i8, KvDtype::Int8, raw_i8);
