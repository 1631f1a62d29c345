//! The register-blocked micro-kernel: `MR` rows of x times one tile of
//! `NV` vectors of output columns, over a block of `kc` steps of k. Each k
//! step loads the tile's weights once (one 64-byte panel line per 16
//! columns) and broadcasts one x value per row, so every load feeds `NV`
//! (weights) or `MR` (x) fused multiply-adds. Accumulators stay in
//! registers: 6 x 2 vectors is 12 of AVX-512's 32 zmm or AVX2's 16 ymm;
//! decode's one or two rows use wider tiles (matmul.rs).
//!
//! Every output element is one sequential chain of fused multiply-adds over
//! k, in order, whatever the blocking or thread count, so the avx2 and
//! avx512 paths give identical bits (scalar rounds the product separately).

use super::pack::PANEL;
use crate::simd::{Codes, Isa};

/// Rows of x per micro-tile.
pub const MR: usize = 6;

/// Widest tile in columns (AVX-512's wide decode tile, eight panels).
const MAX_WIDTH: usize = 128;

/// Where one micro-tile reads and writes; weights are `T` (f32 or bf16).
pub struct TileArgs<T> {
    /// x at (first row, first k of the block); rows `ldx` apart.
    pub x: *const f32,
    pub ldx: usize,
    /// The tile's first panel at the block's first k (`+ k0 * PANEL`).
    pub w: *const T,
    /// Elements from one panel to the next: `PANEL * k`.
    pub panel_stride: usize,
    pub kc: usize,
    /// out at (first row, first column of the tile); rows `ldc` apart.
    pub c: *mut f32,
    pub ldc: usize,
    /// Valid columns of this tile (fewer at the right edge).
    pub cols: usize,
    /// Add to what `c` holds (every k block after the first).
    pub accumulate: bool,
}

impl<T> Clone for TileArgs<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TileArgs<T> {}

/// Computes one micro-tile of `ROWS <= MR` rows and `NV` vectors, reading
/// weights stored as `C` (f32, or bf16 widened exactly on load).
///
/// # Safety
/// The features of `I`; `a` points into live arrays covering `ROWS` rows,
/// `kc` steps and `NV * I::LANES / PANEL` whole panels.
#[inline(always)]
pub unsafe fn tile<I: Isa, C: Codes, const ROWS: usize, const NV: usize>(a: TileArgs<C::T>) {
    let width = NV * I::LANES;
    debug_assert!(width <= MAX_WIDTH && a.cols <= width);
    // Vector j reads panel (j * LANES) / PANEL at lane offset (j * LANES) % PANEL.
    let offsets: [usize; NV] = std::array::from_fn(|j| {
        let col = j * I::LANES;
        (col / PANEL) * a.panel_stride + col % PANEL
    });
    let full = a.cols == width;
    // Staging for a tile cut by the right edge; left uninitialised (a
    // memset per tile would cost more than a small tile's arithmetic) and
    // zeroed only when used.
    let mut staging = std::mem::MaybeUninit::<[f32; MR * MAX_WIDTH]>::uninit();
    let edge = staging.as_mut_ptr().cast::<f32>();
    if !full {
        std::ptr::write_bytes(edge, 0, ROWS * width);
    }
    let mut acc = [[I::zero(); NV]; ROWS];
    if a.accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            let src = a.c.add(r * a.ldc);
            if !full {
                std::ptr::copy_nonoverlapping(src, edge.add(r * width), a.cols);
            }
            for (j, v) in row.iter_mut().enumerate() {
                *v = if full {
                    I::load(src.add(j * I::LANES))
                } else {
                    I::load(edge.add(r * width + j * I::LANES))
                };
            }
        }
    }
    for kk in 0..a.kc {
        let line = a.w.add(kk * PANEL);
        let w: [I::V; NV] = std::array::from_fn(|j| C::load::<I>(line.add(offsets[j]), false));
        for (r, row) in acc.iter_mut().enumerate() {
            let x = I::splat(*a.x.add(r * a.ldx + kk));
            for (v, wj) in row.iter_mut().zip(w) {
                *v = I::fma(x, wj, *v);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let dst = a.c.add(r * a.ldc);
        for (j, v) in row.iter().enumerate() {
            if full {
                I::store(dst.add(j * I::LANES), *v);
            } else {
                I::store(edge.add(r * width + j * I::LANES), *v);
            }
        }
        if !full {
            std::ptr::copy_nonoverlapping(edge.add(r * width), dst, a.cols);
        }
    }
}

/// [`tile`] for any `rows` in `1..=MR`.
///
/// # Safety
/// As for [`tile`].
#[inline(always)]
pub unsafe fn tile_rows<I: Isa, C: Codes, const NV: usize>(rows: usize, a: TileArgs<C::T>) {
    match rows {
        1 => tile::<I, C, 1, NV>(a),
        2 => tile::<I, C, 2, NV>(a),
        3 => tile::<I, C, 3, NV>(a),
        4 => tile::<I, C, 4, NV>(a),
        5 => tile::<I, C, 5, NV>(a),
        _ => tile::<I, C, MR, NV>(a),
    }
}
