//! y = x W^T (+ b) with W pre-packed (`pack.rs`): x `[m, k]`, W `[n, k]`,
//! y `[m, n]`, all f32. Blocked GotoBLAS-style: the work is cut into items
//! of (up to `MC` rows) x (a run of column tiles), handed to the persistent
//! pool; inside an item, k runs in blocks of `KC` so each tile's slice of
//! weights (`KC` x 32 floats, 32 KiB) stays in L1/L2 while every row
//! micro-block of the item passes over it. Items split only rows and
//! columns, never k, so results do not depend on the thread count.

use super::pack::{packed_len, PANEL};
use super::tile::{tile_rows, TileArgs, MR};
use crate::kernel_path::KernelPath;
use crate::simd::{Isa, Scalar};
use crate::thread_pool::{pool, SharedMut};

/// Steps of k per block.
const KC: usize = 256;
/// Rows of x per work item (a multiple of `MR`).
const MC: usize = 16 * MR;
/// Below this many multiply-adds the pool's wake-up costs more than it
/// saves: run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 17;

/// One product, checked by the caller (see `check`).
pub struct Matmul<'a> {
    /// shape [m, k]
    pub x: &'a [f32],
    /// `packed_len(n, k)` elements
    pub packed: &'a [f32],
    /// shape [n]
    pub bias: Option<&'a [f32]>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl Matmul<'_> {
    /// Every size mismatch, in words; `out_len` is the output's length.
    pub fn check(&self, out_len: usize) -> Result<(), String> {
        let (m, n, k) = (self.m, self.n, self.k);
        let want = packed_len(n, k).ok_or("weight shape overflows")?;
        if self.packed.len() != want {
            return Err(format!(
                "packed weight has {} elements, expected {want} for [{n}, {k}]: pack it with opsPackWeights",
                self.packed.len()
            ));
        }
        if self.x.len() != m * k {
            return Err(format!(
                "x has {} elements, expected {m} x {k}",
                self.x.len()
            ));
        }
        if out_len != m * n {
            return Err(format!("out has {out_len} elements, expected {m} x {n}"));
        }
        match self.bias {
            Some(b) if b.len() != n => Err(format!("bias has {} elements, expected {n}", b.len())),
            _ => Ok(()),
        }
    }
}

/// Columns per tile on a path: two panels on AVX-512, one otherwise.
fn tile_cols(path: KernelPath) -> usize {
    match path {
        KernelPath::Avx512 | KernelPath::Avx512Vnni => 2 * PANEL,
        _ => PANEL,
    }
}

/// One work item: rows [r0, r1) by tiles [t0, t1).
#[derive(Clone, Copy)]
struct Item {
    r0: usize,
    r1: usize,
    t0: usize,
    t1: usize,
}

/// Runs one item; `NV` vectors make one tile.
#[inline(always)]
unsafe fn run_item<I: Isa, const NV: usize>(job: &Matmul, out: *mut f32, item: Item) {
    let (n, k) = (job.n, job.k);
    let width = NV * I::LANES;
    let panel_stride = PANEL * k;
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        for t in item.t0..item.t1 {
            let col = t * width;
            let cols = width.min(n - col);
            for r in (item.r0..item.r1).step_by(MR) {
                let a = TileArgs {
                    x: job.x.as_ptr().add(r * k + k0),
                    ldx: k,
                    w: job
                        .packed
                        .as_ptr()
                        .add((col / PANEL) * panel_stride + k0 * PANEL),
                    panel_stride,
                    kc,
                    c: out.add(r * n + col),
                    ldc: n,
                    cols,
                    accumulate: k0 > 0,
                };
                let rows = MR.min(item.r1 - r);
                // A two-panel tile whose second panel does not exist: one panel.
                if width > PANEL && cols <= PANEL {
                    tile_rows::<I, 1>(rows, a);
                } else {
                    tile_rows::<I, NV>(rows, a);
                }
            }
        }
    }
    if let Some(bias) = job.bias {
        let c0 = item.t0 * width;
        let c1 = (item.t1 * width).min(n);
        for r in item.r0..item.r1 {
            for (c, b) in bias.iter().enumerate().take(c1).skip(c0) {
                *out.add(r * n + c) += *b;
            }
        }
    }
}

unsafe fn item_scalar(job: &Matmul, out: *mut f32, item: Item) {
    run_item::<Scalar, 2>(job, out, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn item_avx2(job: &Matmul, out: *mut f32, item: Item) {
    run_item::<crate::simd::Avx2, 2>(job, out, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn item_avx512(job: &Matmul, out: *mut f32, item: Item) {
    run_item::<crate::simd::Avx512, 2>(job, out, item)
}

/// Computes `out = x W^T (+ bias)` on `path`.
///
/// # Safety
/// `path` must be supported by this CPU (kernel_path only selects such
/// paths); `job.check(out.len())` must have passed; `out` overlaps nothing
/// in `job`.
pub unsafe fn matmul(path: KernelPath, job: &Matmul, out: &mut [f32]) {
    let entry: unsafe fn(&Matmul, *mut f32, Item) = match path {
        KernelPath::Scalar => item_scalar,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx2 => item_avx2,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx512 | KernelPath::Avx512Vnni => item_avx512,
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        _ => item_scalar,
    };
    let (m, n, k) = (job.m, job.n, job.k);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // No products: the sum is empty, the output is the bias (or zero).
        for row in out.chunks_mut(n) {
            for (c, y) in row.iter_mut().enumerate() {
                *y = job.bias.map_or(0.0, |b| b[c]);
            }
        }
        return;
    }
    let tiles = n.div_ceil(tile_cols(path));
    let row_chunks = m.div_ceil(MC);
    let threads = pool().threads();
    // Enough items for dynamic scheduling to balance: about 4 per thread.
    let col_chunks = tiles.min((4 * threads).div_ceil(row_chunks)).max(1);
    let per_chunk = tiles.div_ceil(col_chunks);
    let col_chunks = tiles.div_ceil(per_chunk);
    let item = |i: usize| {
        let (rc, cc) = (i / col_chunks, i % col_chunks);
        Item {
            r0: rc * MC,
            r1: ((rc + 1) * MC).min(m),
            t0: cc * per_chunk,
            t1: ((cc + 1) * per_chunk).min(tiles),
        }
    };
    let items = row_chunks * col_chunks;
    let dst = SharedMut(out.as_mut_ptr());
    if m * n * k < PARALLEL_MIN_MACS {
        for i in 0..items {
            entry(job, dst.0, item(i));
        }
        return;
    }
    // Safety: items write disjoint (row, column) blocks of out.
    pool().run(items, &|i| {
        // `{ dst }` moves the whole wrapper in (it is Sync; its field is not).
        unsafe { entry(job, { dst }.0, item(i)) }
    });
}
