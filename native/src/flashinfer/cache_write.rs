//! Quantize on write (FlashInfer's append_paged_kv_cache): each new K and V
//! row goes to its slot's row of the HND pages, encoded with core's exact
//! formats (a readback is bit-identical to core's codecs on the same input
//! and scales). int8 per_token_head computes the row's scale first and
//! stores it beside the page. One work item per (kv head, K or V): items
//! write disjoint rows, and a slot repeated in the mapping is written in
//! token order (the last wins), as the reference backend does.

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
    /// shape [numTokens, numKvHeads, headDim]
    pub input: &'a [f32],
    pub codes: CodesMut,
    /// int8 per_token_head: the per-row scales array.
    pub row_scales: Option<SharedMut<f32>>,
    pub scale: f32,
    pub zero_point: i32,
}

/// Encodes `src` into the `src.len()` codes from `at`.
///
/// # Safety
/// The range is within the array; no other thread writes there.
unsafe fn encode_row(codes: CodesMut, at: usize, src: &[f32], scale: f32, zp: i32) {
    macro_rules! each {
        ($ptr:expr, $f:expr) => {{
            let dst = std::slice::from_raw_parts_mut($ptr.0.add(at), src.len());
            for (y, x) in dst.iter_mut().zip(src) {
                *y = $f(*x);
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
        let row = layer.row(slot / layer.page_size, kv_head, slot % layer.page_size);
        let src = &side.input[(t * layer.num_kv_heads + kv_head) * d..][..d];
        let (scale, zero_point) = match side.row_scales {
            Some(scales) => {
                let scale = int8::row_scale(src);
                *scales.0.add(row) = scale;
                (scale, 0)
            }
            None => (side.scale, side.zero_point),
        };
        encode_row(side.codes, row * d, src, scale, zero_point);
    }
}

/// Writes K and V for every token whose slot is not -1.
///
/// # Safety
/// Slots are -1 or below `layer.num_slots()`; inputs hold `slots.len()`
/// rows; the code arrays hold `layer.cache_len()` elements and the scale
/// arrays `layer.rows()`; nothing else aliases them during the call.
pub unsafe fn write(layer: &Layer, slots: &[i32], k: Side, v: Side) {
    pool().run(2 * layer.num_kv_heads, &|item| unsafe {
        let side = if item % 2 == 0 { &k } else { &v };
        write_head(layer, slots, side, item / 2);
    });
}
