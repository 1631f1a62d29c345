//! Where each code of the fa3 layout lives (see mod.rs): K pairs of
//! dimensions and V pairs of tokens, so both products find a lane's two
//! operands adjacent.

use super::Layer;

/// First code of the (block, kv head) tile.
#[inline(always)]
pub fn tile(layer: &Layer, block: usize, kv_head: usize) -> usize {
    layer.row(block, kv_head, 0) * layer.head_dim
}

/// Offset of key `t`, dimension `e` inside a K tile.
#[inline(always)]
pub fn k_at(bs: usize, t: usize, e: usize) -> usize {
    ((e / 2) * bs + t) * 2 + (e & 1)
}

/// Offset of token `t`, dimension `e` inside a V tile.
#[inline(always)]
pub fn v_at(d: usize, t: usize, e: usize) -> usize {
    ((t / 2) * d + e) * 2 + (t & 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_a_tile_has_its_own_place() {
        for (bs, d) in [(16, 64), (64, 256)] {
            let mut seen = vec![false; bs * d];
            for t in 0..bs {
                for e in 0..d {
                    for at in [k_at(bs, t, e), v_at(d, t, e)] {
                        assert!(at < bs * d);
                    }
                    assert!(!seen[k_at(bs, t, e)]);
                    seen[k_at(bs, t, e)] = true;
                }
            }
        }
    }
}
