//! reshape_and_cache: scatters a batch's new K and V rows into the cache
//! through the slot mapping (K into its transposed tile, a column per
//! token; V a row per token), encoding with core's exact formats (so a
//! readback is bit-identical to core's codecs on the same input and
//! scales). One work item per kv head: items write disjoint tiles, and a
//! slot repeated in the mapping is written in token order (the last wins),
//! as the reference backend does.

use super::Layer;
use crate::formats::{bf16, fp16, fp8_e4m3, fp8_e5m2, int8};
use crate::thread_pool::{pool, SharedMut};

/// A cache array of any dtype, written through a raw pointer.
#[derive(Clone, Copy)]
pub enum CodesMut {
    F32(SharedMut<f32>),
    F16(SharedMut<u16>),
    Bf16(SharedMut<u16>),
    E4m3(SharedMut<u8>),
    E5m2(SharedMut<u8>),
    I8(SharedMut<i8>),
}

/// One side (K or V) of a write.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// K tiles are stored transposed (`[headDim, blockSize]`), V tiles not.
    pub transposed: bool,
    /// shape [numTokens, numKvHeads, headDim]
    pub input: &'a [f32],
    pub codes: CodesMut,
    /// int8 per_token_head: the per-row scales array.
    pub row_scales: Option<SharedMut<f32>>,
    pub scale: f32,
    pub zero_point: i32,
}

/// Encodes `src[i]` into `codes[at + i * stride]`.
///
/// # Safety
/// Every index is within the array; no other thread writes there.
unsafe fn encode_row(codes: CodesMut, at: usize, stride: usize, src: &[f32], scale: f32, zp: i32) {
    macro_rules! each {
        ($ptr:expr, $f:expr) => {{
            let dst = $ptr.0.add(at);
            for (i, x) in src.iter().enumerate() {
                *dst.add(i * stride) = $f(*x);
            }
        }};
    }
    match codes {
        CodesMut::F32(p) => each!(p, |x| x),
        CodesMut::F16(p) => each!(p, fp16::encode),
        CodesMut::Bf16(p) => each!(p, bf16::encode),
        CodesMut::E4m3(p) => each!(p, |x| fp8_e4m3::encode(x, scale)),
        CodesMut::E5m2(p) => each!(p, |x| fp8_e5m2::encode(x, scale)),
        CodesMut::I8(p) => each!(p, |x| int8::encode(x, scale, zp)),
    }
}

unsafe fn write_head(layer: &Layer, slots: &[i32], side: &Side, kv_head: usize) {
    let d = layer.head_dim;
    for (t, slot) in slots.iter().enumerate() {
        if *slot < 0 {
            continue;
        }
        let slot = *slot as usize;
        let (block, offset) = (slot / layer.block_size, slot % layer.block_size);
        let row = layer.row(block, kv_head, offset);
        let (at, stride) = if side.transposed {
            (layer.row(block, kv_head, 0) * d + offset, layer.block_size)
        } else {
            (row * d, 1)
        };
        let src = &side.input[(t * layer.num_kv_heads + kv_head) * d..][..d];
        let (scale, zero_point) = match side.row_scales {
            Some(scales) => {
                let scale = int8::row_scale(src);
                *scales.0.add(row) = scale;
                (scale, 0)
            }
            None => (side.scale, side.zero_point),
        };
        encode_row(side.codes, at, stride, src, scale, zero_point);
    }
}

/// Writes K and V for every token whose slot is not -1.
///
/// # Safety
/// Slots are -1 or below `layer.num_slots()`; inputs hold `slots.len()`
/// rows; the code arrays hold `layer.cache_len()` elements and the scale
/// arrays `layer.scales_len()`; nothing else aliases them during the call.
pub unsafe fn write(layer: &Layer, slots: &[i32], k: Side, v: Side) {
    pool().run(2 * layer.num_kv_heads, &|item| unsafe {
        let side = if item % 2 == 0 { &k } else { &v };
        write_head(layer, slots, side, item / 2);
    });
}
