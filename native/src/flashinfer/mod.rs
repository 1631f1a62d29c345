//! The flashinfer backend's native kernels: the fast paged path.
//!
//! Cache layout (one layer; FlashInfer's HND, page = block):
//!
//! - K pages and V pages, each `[numPages, numKvHeads, pageSize, headDim]`:
//!   a row per token, head-major inside a page, so one (page, kv head) is
//!   `pageSize * headDim` contiguous codes and a page's heads are adjacent.
//! - int8 per (token, head) scaling: one f32 per (page, kv head, offset),
//!   `[numPages, numKvHeads, pageSize]`, for K and for V.
//!
//! Plan/run: the TypeScript plan (backends/flashinfer/native_plan.ts)
//! computes the page tables (indptr / indices / last_page_len) and the work
//! partition once per batch; `run` checks it against each layer (plan.rs)
//! and runs it:
//!
//! - `state.rs`: the online-softmax state and its log-sum-exp merge.
//! - `hsum.rs`: many dot products reduced at once (no per-score shuffles).
//! - `tile.rs`: one page's K/V rows dequantized once into f32 for a whole
//!   GQA group, then q·k, online softmax and p·v over those rows.
//! - `run.rs`: split-KV decode chunks, prefill tiles, the merge, and the
//!   kernel-path dispatch over the thread pool.
//! - `cache_write.rs`, `read.rs`: quantize on write, exact readout.
//! - `args.rs`: the cache object the exports take, checked.

pub mod args;
pub mod cache_write;
mod hsum;
pub mod plan;
pub mod read;
pub mod run;
mod scratch;
pub mod state;
mod tile;

/// One layer's shape and attention parameters.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub num_q_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub page_size: usize,
    pub num_pages: usize,
    /// Keys visible from position p: p - window < j <= p; `None` = all.
    pub window: Option<usize>,
    /// Logits become `cap * tanh(x / cap)`; `None` = no cap.
    pub soft_cap: Option<f32>,
    /// Softmax scale applied to q·k.
    pub softmax_scale: f32,
}

impl Layer {
    /// Query heads per kv head.
    pub fn group(&self) -> usize {
        self.num_q_heads / self.num_kv_heads
    }

    /// Rows (hence per-row scales) per cache array.
    pub fn rows(&self) -> usize {
        self.num_pages * self.num_kv_heads * self.page_size
    }

    /// Codes per cache array.
    pub fn cache_len(&self) -> usize {
        self.rows() * self.head_dim
    }

    /// Slots in the cache: numPages * pageSize.
    pub fn num_slots(&self) -> usize {
        self.num_pages * self.page_size
    }

    /// Row index of (page, kv head, offset in page); times headDim for codes.
    #[inline(always)]
    pub fn row(&self, page: usize, kv_head: usize, offset: usize) -> usize {
        (page * self.num_kv_heads + kv_head) * self.page_size + offset
    }

    /// The first visible key of a query at `pos`.
    #[inline(always)]
    pub fn first_visible(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }
}

/// Per-tensor scales as stored (16/32-bit caches: 1 and 0).
#[derive(Clone, Copy, Debug)]
pub struct Scales {
    pub k_scale: f32,
    pub v_scale: f32,
    pub k_zero_point: i32,
    pub v_zero_point: i32,
}

/// One cache's codes and per-row scales, read-only.
#[derive(Clone, Copy)]
pub struct Kv<'a, T> {
    pub keys: &'a [T],
    pub values: &'a [T],
    /// int8 per_token_head only: shape [numPages, numKvHeads, pageSize].
    pub key_scales: Option<&'a [f32]>,
    pub value_scales: Option<&'a [f32]>,
    pub scales: Scales,
}

/// A cache's codes of any dtype, read-only.
#[derive(Clone, Copy)]
pub enum AnyKv<'a> {
    F32(Kv<'a, f32>),
    F16(Kv<'a, u16>),
    Bf16(Kv<'a, u16>),
    E4m3(Kv<'a, u8>),
    E5m2(Kv<'a, u8>),
    I8(Kv<'a, i8>),
}
