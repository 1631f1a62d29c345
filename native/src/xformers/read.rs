//! Dequantized readout of cache slots with core's exact decoders (K from
//! its transposed tiles): what conformance and tests compare, never on the
//! attention path.

use super::{AnyKv, Kv, Layer};
use crate::formats::{bf16, fp16, fp8_e4m3, fp8_e5m2, int8};

/// Decodes one slot's K and V for every kv head into `keys` and `values`
/// (`numKvHeads * headDim` each).
fn read_slot<T: Copy>(
    layer: &Layer,
    slot: usize,
    kv: &Kv<T>,
    decode: &impl Fn(T, f32, i32) -> f32,
    keys: &mut [f32],
    values: &mut [f32],
) {
    let (d, bs) = (layer.head_dim, layer.block_size);
    let (block, offset) = (slot / bs, slot % bs);
    let s = kv.scales;
    for h in 0..layer.num_kv_heads {
        let row = layer.row(block, h, offset);
        // Per-token-head scales have zero point 0 (core's scheme).
        let (k_scale, k_zp) = kv
            .key_scales
            .map_or((s.k_scale, s.k_zero_point), |x| (x[row], 0));
        let (v_scale, v_zp) = kv
            .value_scales
            .map_or((s.v_scale, s.v_zero_point), |x| (x[row], 0));
        let k_column = layer.row(block, h, 0) * d + offset;
        for e in 0..d {
            keys[h * d + e] = decode(kv.keys[k_column + e * bs], k_scale, k_zp);
            values[h * d + e] = decode(kv.values[row * d + e], v_scale, v_zp);
        }
    }
}

fn read_kv<T: Copy>(
    layer: &Layer,
    slots: &[i32],
    kv: &Kv<T>,
    decode: impl Fn(T, f32, i32) -> f32,
    keys: &mut [f32],
    values: &mut [f32],
) {
    let n = layer.num_kv_heads * layer.head_dim;
    for ((slot, k), v) in slots
        .iter()
        .zip(keys.chunks_exact_mut(n))
        .zip(values.chunks_exact_mut(n))
    {
        read_slot(layer, *slot as usize, kv, &decode, k, v);
    }
}

/// Decodes K and V of `slots` (each below `layer.num_slots()`, checked by
/// the caller) into `keys` and `values`, shape [slots, numKvHeads, headDim].
pub fn read(layer: &Layer, slots: &[i32], kv: AnyKv, keys: &mut [f32], values: &mut [f32]) {
    match kv {
        AnyKv::F32(kv) => read_kv(layer, slots, &kv, |c, _, _| c, keys, values),
        AnyKv::F16(kv) => read_kv(layer, slots, &kv, |c, _, _| fp16::decode(c), keys, values),
        AnyKv::Bf16(kv) => read_kv(layer, slots, &kv, |c, _, _| bf16::decode(c), keys, values),
        AnyKv::E4m3(kv) => read_kv(
            layer,
            slots,
            &kv,
            |c, s, _| fp8_e4m3::decode(c, s),
            keys,
            values,
        ),
        AnyKv::E5m2(kv) => read_kv(
            layer,
            slots,
            &kv,
            |c, s, _| fp8_e5m2::decode(c, s),
            keys,
            values,
        ),
        AnyKv::I8(kv) => read_kv(layer, slots, &kv, int8::decode, keys, values),
    }
}
