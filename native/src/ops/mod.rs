//! The model's non-attention ops on the native target. Only the matmul
//! lives here: at the sizes the engine runs, RMSNorm, RoPE, the gated
//! activation and the residual add are O(n) per token and cost less than
//! the call into the addon would (see engine/model_ops_native.ts).
//!
//! Weights are packed once, at load, into [`pack::PANEL`]-column panels
//! (`pack.rs`); `matmul.rs` blocks and spreads the product over the
//! persistent pool; `tile.rs` is the register-blocked micro-kernel, written
//! once over [`crate::simd::Isa`] and compiled per kernel path.

pub mod matmul;
pub mod pack;
mod tile;
