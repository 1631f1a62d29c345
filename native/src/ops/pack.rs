//! The packed weight layout the matmul reads: a weight `[rows, cols]`
//! (PyTorch's `[out_features, in_features]`) becomes `ceil(rows / PANEL)`
//! panels, each `[cols, PANEL]`: element `(r, c)` is at
//! `(r / PANEL) * PANEL * cols + c * PANEL + r % PANEL`. Rows past the end
//! are zero, so every kernel reads whole panels. One `k` step of a panel is
//! one contiguous 64-byte line: a single AVX-512 load, two AVX2 loads.
//! The layout is the same for every kernel path, so a weight packed once
//! serves whichever path runs. Weights are stored as f32, or as bf16
//! (rounded to nearest even, as core/bf16.ts rounds): half the bytes to
//! stream per decode step, widened exactly to f32 on load.

use crate::thread_pool::{pool, SharedMut};

/// Output columns (weight rows) per panel.
pub const PANEL: usize = 16;

/// Elements of the packed form of a `[rows, cols]` weight.
pub fn packed_len(rows: usize, cols: usize) -> Option<usize> {
    rows.div_ceil(PANEL).checked_mul(PANEL)?.checked_mul(cols)
}

/// Packs `weight` (`[rows, cols]`, row-major) into `out`
/// (`packed_len(rows, cols)` elements), each value through `encode`, one
/// panel per pool item.
///
/// # Panics
/// When the lengths do not match the shape (callers check first).
pub fn pack<T: Copy + Default + Send>(
    weight: &[f32],
    rows: usize,
    cols: usize,
    out: &mut [T],
    encode: fn(f32) -> T,
) {
    assert_eq!(weight.len(), rows * cols, "pack: weight length");
    assert_eq!(Some(out.len()), packed_len(rows, cols), "pack: out length");
    let panels = rows.div_ceil(PANEL);
    let dst = SharedMut(out.as_mut_ptr());
    pool().run(panels, &|p| {
        // `{ dst }` moves the whole wrapper in (it is Sync; its field is not).
        let base = { dst }.0;
        // Safety: panel p owns out[p * PANEL * cols .. (p + 1) * PANEL * cols].
        let panel =
            unsafe { std::slice::from_raw_parts_mut(base.add(p * PANEL * cols), PANEL * cols) };
        for j in 0..PANEL {
            let r = p * PANEL + j;
            if r < rows {
                let src = &weight[r * cols..(r + 1) * cols];
                for (c, value) in src.iter().enumerate() {
                    panel[c * PANEL + j] = encode(*value);
                }
            } else {
                for c in 0..cols {
                    panel[c * PANEL + j] = T::default();
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_places_each_element_and_zero_pads() {
        let (rows, cols) = (17, 3);
        let weight: Vec<f32> = (0..rows * cols).map(|i| i as f32 + 1.0).collect();
        let mut out = vec![f32::NAN; packed_len(rows, cols).unwrap()];
        pack(&weight, rows, cols, &mut out, |x| x);
        for r in 0..32 {
            for c in 0..cols {
                let at = (r / PANEL) * PANEL * cols + c * PANEL + r % PANEL;
                let want = if r < rows { weight[r * cols + c] } else { 0.0 };
                assert_eq!(out[at], want, "r={r} c={c}");
            }
        }
    }
}
