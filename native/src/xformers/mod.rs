//! The xformers backend's native kernels: the portable baseline.
//!
//! Cache layout (one layer; block ids shared by all layers):
//!
//! - K codes `[numBlocks, numKvHeads, headDim, blockSize]`: each (block, kv
//!   head) tile is stored transposed, the blockSize keys of one dimension
//!   side by side, so that q·k for a whole tile is broadcast-multiply-add
//!   with no horizontal sums (vLLM transposes its K blocks for the same
//!   reason).
//! - V codes `[numBlocks, numKvHeads, blockSize, headDim]`: a row per
//!   token, which P·V reads a row at a time.
//! - int8 per (token, head) scaling: one f32 scale per (block, kv head,
//!   offset), `[numBlocks, numKvHeads, blockSize]`, for K and for V.
//!
//! Either way one (block, kv head) tile is `blockSize * headDim`
//! contiguous codes, and a block's tiles for all kv heads are adjacent.
//!
//! - `cache_write.rs`: reshape_and_cache, quantizing with core's formats.
//! - `read.rs`: dequantized readout of slots.
//! - `decode.rs`: PagedAttention-v1 decode, one (sequence, kv heads) per item.
//! - `prefill.rs`: memory-efficient prefill, one (query tile, kv head) per item.
//! - `tile.rs`: the q·k and p·v micro-kernels both share.
//! - `attend.rs`: work items and the kernel-path dispatch.

pub mod attend;
pub mod batch;
pub mod cache_write;
mod decode;
mod prefill;
pub mod read;
mod scratch;
mod tile;

pub use batch::Batch;

/// One layer's shape and attention parameters.
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub num_q_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub block_size: usize,
    pub num_blocks: usize,
    /// Keys visible from position p: p - window < j <= p; `None` = all.
    pub window: Option<usize>,
    /// Softmax scale applied to q·k.
    pub softmax_scale: f32,
}

impl Layer {
    /// Query heads per kv head.
    pub fn group(&self) -> usize {
        self.num_q_heads / self.num_kv_heads
    }

    /// Codes per cache array: numBlocks * numKvHeads * blockSize * headDim.
    pub fn cache_len(&self) -> usize {
        self.scales_len() * self.head_dim
    }

    /// Rows (hence per-row scales) per cache array.
    pub fn scales_len(&self) -> usize {
        self.num_blocks * self.num_kv_heads * self.block_size
    }

    /// Slots in the cache: numBlocks * blockSize.
    pub fn num_slots(&self) -> usize {
        self.num_blocks * self.block_size
    }

    /// Row index of (block, kv head, offset in block); times headDim for codes.
    #[inline(always)]
    pub fn row(&self, block: usize, kv_head: usize, offset: usize) -> usize {
        (block * self.num_kv_heads + kv_head) * self.block_size + offset
    }

    /// The first visible key of a query at `pos`.
    #[inline(always)]
    pub fn first_visible(&self, pos: usize) -> usize {
        self.window.map_or(0, |w| (pos + 1).saturating_sub(w))
    }
}

/// A layer's scales as the kernels use them. 16/32-bit caches are stored
/// unscaled (scale 1, zero point 0), as core's codecs define them.
#[derive(Clone, Copy, Debug)]
pub struct Scales {
    pub k_scale: f32,
    pub v_scale: f32,
    pub k_zero_point: i32,
    pub v_zero_point: i32,
}

/// One cache's codes and per-row scales, read-only (attend, read).
#[derive(Clone, Copy)]
pub struct Kv<'a, T> {
    pub keys: &'a [T],
    pub values: &'a [T],
    /// int8 per_token_head only: shape [numBlocks, numKvHeads, blockSize].
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

/// Rounds `n` up to a multiple of `to`.
#[inline(always)]
pub fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// The blocks a key range [lo, hi) touches, as (block index in the
/// sequence, first key, end key), keys clipped to the range.
#[inline(always)]
pub fn blocks_of(
    lo: usize,
    hi: usize,
    block_size: usize,
) -> impl Iterator<Item = (usize, usize, usize)> {
    let first = lo / block_size;
    let end = if hi > lo {
        (hi - 1) / block_size + 1
    } else {
        first
    };
    (first..end).map(move |b| {
        let start = b * block_size;
        (b, lo.max(start), hi.min(start + block_size))
    })
}
