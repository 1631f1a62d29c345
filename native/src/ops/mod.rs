//! The model's non-attention ops on the native target. Only the matmul
//! lives here: RMSNorm, RoPE, the gated activation and the residual add
//! are O(hidden) per token, about what a call into the addon costs, and
//! stay in TypeScript (measured in engine/model_ops_bench.ts; see
//! engine/model_ops_native.ts).
//!
//! Weights are packed once, at load, into [`pack::PANEL`]-column panels
//! (`pack.rs`); `job.rs` holds one product's checked operands; `matmul.rs`
//! blocks the product and spreads it over the persistent pool; `tile.rs`
//! is the register-blocked micro-kernel, written once over
//! [`crate::simd::Isa`] and compiled per kernel path.

pub mod job;
pub mod matmul;
pub mod pack;
mod tile;
