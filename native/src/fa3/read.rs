//! Dequantized readout of cache slots with core's exact decoders, from the
//! pair layout: what conformance and tests compare, never on the attention
//! path.

use super::{layout, Cache, Codes};
use crate::formats::{fp8_e4m3, int8};

/// Decodes K and V of `slots` (each below `layer.num_slots()`, checked by
/// the caller) into `keys` and `values`, shape [slots, numKvHeads, headDim].
pub fn read(cache: &Cache, slots: &[i32], keys: &mut [f32], values: &mut [f32]) {
    let layer = &cache.layer;
    let (d, bs) = (layer.head_dim, layer.block_size);
    let s = cache.scales;
    for (i, slot) in slots.iter().enumerate() {
        let (block, offset) = (*slot as usize / bs, *slot as usize % bs);
        for h in 0..layer.num_kv_heads {
            let row = layer.row(block, h, offset);
            let base = layout::tile(layer, block, h);
            // Per-token-head scales have zero point 0 (core's scheme).
            let (ks, kz) = cache
                .key_scales
                .map_or((s.k_scale, s.k_zero_point), |x| (x[row], 0));
            let (vs, vz) = cache
                .value_scales
                .map_or((s.v_scale, s.v_zero_point), |x| (x[row], 0));
            for e in 0..d {
                let (k, v) = (
                    base + layout::k_at(bs, offset, e),
                    base + layout::v_at(d, offset, e),
                );
                let out = (i * layer.num_kv_heads + h) * d + e;
                (keys[out], values[out]) = match cache.codes {
                    Codes::I8 { keys, values } => (
                        int8::decode(keys[k], ks, kz),
                        int8::decode(values[v], vs, vz),
                    ),
                    Codes::E4m3 { keys, values } => (
                        fp8_e4m3::decode(keys[k], ks),
                        fp8_e4m3::decode(values[v], vs),
                    ),
                };
            }
        }
    }
}
