//! The fa3 backend's native kernels: attention computed in 8 bits.
//!
//! Q is quantized per query head, K and V are the cache's 8-bit codes, and
//! both products run on 8-bit values: int8 caches as exact integer dot
//! products (VNNI `vpdpwssd`, AVX-512BW / AVX2 `vpmaddwd`, or scalar i32),
//! fp8_e4m3 caches as exact products of e4m3 values summed in fp32. The
//! online softmax steps 64 keys at a time (the emulation's default block,
//! whatever the cache's block size); P is quantized to 8 bits (int8
//! caches: round(p * 255) as an unsigned 8-bit code, since p is never
//! negative and int8's sign bit would go unused; e4m3 caches: p in e4m3),
//! and each step's P·V partial is either promoted into fp32 O and l every
//! `promote_every` steps (two-level accumulation, the default) or added
//! into a bf16 accumulator for the whole sequence (promotion off: the
//! long-context loss that bench/accuracy/low_precision_emulation.ts
//! describes).
//!
//! Cache layout (one layer), every (block, kv head) tile `blockSize *
//! headDim` contiguous codes, a block's tiles adjacent:
//!
//! - K `[numBlocks, numKvHeads, headDim / 2, blockSize, 2]`: for each pair
//!   of dimensions, the blockSize keys side by side, each key's two values
//!   adjacent. A 32-bit lane then holds one key's pair, which is what
//!   `vpdpwssd` / `vpmaddwd` multiply by a broadcast query pair: q·k for 16
//!   keys with no horizontal sums.
//! - V `[numBlocks, numKvHeads, blockSize / 2, headDim, 2]`: for each pair
//!   of tokens, every dimension with the two tokens' values adjacent, so a
//!   lane multiplies them by a broadcast pair of P values.
//! - int8 per_token_head: one f32 scale per (block, kv head, offset).
//!
//! - `layout.rs`: index arithmetic of that layout.
//! - `args.rs`: the cache object the exports take, size-checked.
//! - `cache_write.rs`, `read.rs`: quantize on write, dequantized readout.
//! - `dot.rs` (scalar defaults), `dot_x86.rs` (shared e4m3 vectors),
//!   `dot_avx2.rs`, `dot_avx512.rs`: the 8-bit tile products per kernel
//!   path, single rows and fused rows.
//! - `row_state.rs`: one query row's online softmax and two-level accumulator.
//! - `kernel.rs`: one work item (a sequence, a kv head, a query tile).
//! - `attend.rs`: work items and the kernel-path dispatch.

pub mod args;
pub mod attend;
pub mod cache_write;
mod dot;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod dot_avx2;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod dot_avx512;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod dot_x86;
mod kernel;
pub mod layout;
pub mod read;
mod row_state;

pub use crate::xformers::{Batch, Layer, Scales};

/// Attention settings that change the numerics.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Two-level accumulation: partials promoted to fp32.
    pub promotion: bool,
    /// Steps a partial may span before promotion (1..=4).
    pub promote_every: usize,
}

/// The largest `promote_every`: 4 steps of 64 keys of int8 partials
/// (each at most 64 * 255 * 255) stay below 2^24, so f32 holds them
/// exactly, as an int32 register would.
pub const MAX_PROMOTE_EVERY: usize = 4;

/// The codes of one cache, read-only.
#[derive(Clone, Copy)]
pub enum Codes<'a> {
    I8 { keys: &'a [i8], values: &'a [i8] },
    E4m3 { keys: &'a [u8], values: &'a [u8] },
}

/// One cache: codes, scales and layer facts.
#[derive(Clone, Copy)]
pub struct Cache<'a> {
    pub layer: Layer,
    pub codes: Codes<'a>,
    pub scales: Scales,
    /// int8 per_token_head: shape [numBlocks, numKvHeads, blockSize].
    pub key_scales: Option<&'a [f32]>,
    pub value_scales: Option<&'a [f32]>,
    /// Logit soft-cap (cap * tanh(s / cap)); `None` = off.
    pub soft_cap: Option<f32>,
}
