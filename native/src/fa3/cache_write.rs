//! reshape_and_cache for fa3: quantizes a batch's new K and V rows into
//! the pair layout (layout.rs) with core's exact encoders, so a readback is
//! bit-identical to core's codecs on the same input and scales. One work
//! item per (side, kv head): items write disjoint tiles, and a slot
//! repeated in the mapping is written in token order (the last wins).

use super::{layout, Layer};
use crate::formats::{fp8_e4m3, int8};
use crate::thread_pool::{pool, SharedMut};

/// A code array of the two 8-bit dtypes fa3 stores.
#[derive(Clone, Copy)]
pub enum CodesMut {
    I8(SharedMut<i8>),
    E4m3(SharedMut<u8>),
}

/// One side (K or V) of a write.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub is_values: bool,
    /// shape [numTokens, numKvHeads, headDim]
    pub input: &'a [f32],
    pub codes: CodesMut,
    /// int8 per_token_head: the per-row scales array.
    pub row_scales: Option<SharedMut<f32>>,
    pub scale: f32,
    pub zero_point: i32,
}

unsafe fn write_head(layer: &Layer, slots: &[i32], side: &Side, kv_head: usize) {
    let (d, bs) = (layer.head_dim, layer.block_size);
    for (t, slot) in slots.iter().enumerate() {
        if *slot < 0 {
            continue;
        }
        let slot = *slot as usize;
        let (block, offset) = (slot / bs, slot % bs);
        let base = layout::tile(layer, block, kv_head);
        let src = &side.input[(t * layer.num_kv_heads + kv_head) * d..][..d];
        let (scale, zero_point) = match side.row_scales {
            Some(scales) => {
                let scale = int8::row_scale(src);
                *scales.0.add(layer.row(block, kv_head, offset)) = scale;
                (scale, 0)
            }
            None => (side.scale, side.zero_point),
        };
        for (e, x) in src.iter().enumerate() {
            let at = base
                + if side.is_values {
                    layout::v_at(d, offset, e)
                } else {
                    layout::k_at(bs, offset, e)
                };
            match side.codes {
                CodesMut::I8(p) => *p.0.add(at) = int8::encode(*x, scale, zero_point),
                CodesMut::E4m3(p) => *p.0.add(at) = fp8_e4m3::encode(*x, scale),
            }
        }
    }
}

/// Writes K and V for every token whose slot is not -1.
///
/// # Safety
/// Slots are -1 or below `layer.num_slots()`; inputs hold `slots.len()`
/// rows; code arrays hold `layer.cache_len()` elements and scale arrays
/// `layer.scales_len()`; nothing else aliases them during the call.
pub unsafe fn write(layer: &Layer, slots: &[i32], k: Side, v: Side) {
    pool().run(2 * layer.num_kv_heads, &|item| unsafe {
        let side = if item % 2 == 0 { &k } else { &v };
        write_head(layer, slots, side, item / 2);
    });
}
