//! Dequantized readout of cache slots with core's exact decoders: what
//! conformance and tests compare, never on the attention path.

use super::{AnyKv, Kv, Layer};
use crate::formats::{bf16, fp16, fp8_e4m3, fp8_e5m2, int8};

fn read_kv<T: Copy>(
    layer: &Layer,
    slots: &[i32],
    kv: &Kv<T>,
    decode: impl Fn(T, f32, i32) -> f32,
    keys: &mut [f32],
    values: &mut [f32],
) {
    let (d, ps, s) = (layer.head_dim, layer.page_size, kv.scales);
    let n = layer.num_kv_heads * d;
    for (i, slot) in slots.iter().enumerate() {
        let slot = *slot as usize;
        for h in 0..layer.num_kv_heads {
            let row = layer.row(slot / ps, h, slot % ps);
            // Per-token-head scales have zero point 0 (core's scheme).
            let (ks, kz) = kv
                .key_scales
                .map_or((s.k_scale, s.k_zero_point), |x| (x[row], 0));
            let (vs, vz) = kv
                .value_scales
                .map_or((s.v_scale, s.v_zero_point), |x| (x[row], 0));
            for e in 0..d {
                keys[i * n + h * d + e] = decode(kv.keys[row * d + e], ks, kz);
                values[i * n + h * d + e] = decode(kv.values[row * d + e], vs, vz);
            }
        }
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
