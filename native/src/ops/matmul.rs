//! y = x W^T (+ b) with W pre-packed (`pack.rs`): x `[m, k]`, W `[n, k]`,
//! y `[m, n]`, f32 (weights f32 or bf16; see `job.rs`). Blocked
//! GotoBLAS-style: the work is cut into items of (up to `MC` rows) x (a run
//! of panels), handed to the persistent pool; inside an item, k runs in
//! blocks of `KC` so each tile's slice of weights (`KC` x 32 floats, 32
//! KiB; decode's wide tiles 128 KiB) stays in L1/L2 while every row
//! micro-block of the item passes over it. Items split only rows and
//! columns, never k, so results do not depend on the thread count.

use super::job::{Matmul, Packed};
use super::pack::PANEL;
use super::tile::{tile, tile_rows, TileArgs, MR};
use crate::kernel_path::KernelPath;
use crate::simd::{Bf16Codes, Codes, F32Codes, Isa, Scalar};
use crate::thread_pool::{pool, SharedMut};

/// Steps of k per block.
const KC: usize = 256;
/// Rows of x per work item (a multiple of `MR`).
const MC: usize = 16 * MR;
/// Below this many multiply-adds (about 30 us on one AVX-512 core) the
/// pool's wake-up costs more than it saves, and on a loaded machine a
/// descheduled worker can stall the call for a scheduler tick: run on the
/// calling thread. At 2^17 the demo model's decode ran 6x slower with
/// other processes on both cores.
const PARALLEL_MIN_MACS: usize = 1 << 20;

/// Panels per work-item column chunk are rounded to this, the widest tile.
const CHUNK_PANELS: usize = 8;

/// One work item: rows [r0, r1) by panels [p0, p1).
#[derive(Clone, Copy)]
struct Item {
    r0: usize,
    r1: usize,
    p0: usize,
    p1: usize,
}

/// Runs one item. A tile is `NV` vectors; an item of at most `WIDE_ROWS`
/// rows (a decode step) uses tiles of `WIDE` vectors instead: one row has
/// only one accumulator chain per vector, and FMA latency (4 cycles) would
/// idle the units with fewer than 8 chains in flight.
#[inline(always)]
unsafe fn run_item<I: Isa, C: Codes, const NV: usize, const WIDE: usize, const WIDE_ROWS: usize>(
    job: &Matmul,
    w: *const C::T,
    out: *mut f32,
    item: Item,
) {
    let (n, k) = (job.n, job.k);
    let panel_stride = PANEL * k;
    let skinny = item.r1 - item.r0 <= WIDE_ROWS;
    let panels_of = |nv: usize| nv * I::LANES / PANEL;
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        let mut p = item.p0;
        while p < item.p1 {
            let left = item.p1 - p;
            // The widest tile that fits: wide (skinny items), normal, or
            // one panel (an AVX-512 two-panel tile whose second is missing).
            let nv = if skinny && left >= panels_of(WIDE) {
                WIDE
            } else if left >= panels_of(NV) {
                NV
            } else {
                PANEL / I::LANES
            };
            let col = p * PANEL;
            let cols = (nv * I::LANES).min(n - col);
            for r in (item.r0..item.r1).step_by(MR) {
                let a = TileArgs {
                    x: job.x.as_ptr().add(r * k + k0),
                    ldx: k,
                    w: w.add(p * panel_stride + k0 * PANEL),
                    panel_stride,
                    kc,
                    c: out.add(r * n + col),
                    ldc: n,
                    cols,
                    accumulate: k0 > 0,
                };
                let rows = MR.min(item.r1 - r);
                match nv {
                    _ if nv == WIDE && skinny => match rows {
                        1 => tile::<I, C, 1, WIDE>(a),
                        _ => tile::<I, C, WIDE_ROWS, WIDE>(a),
                    },
                    _ if nv == NV => tile_rows::<I, C, NV>(rows, a),
                    _ => tile_rows::<I, C, 1>(rows, a),
                }
            }
            p += panels_of(nv);
        }
    }
    if let Some(bias) = job.bias {
        let c0 = item.p0 * PANEL;
        let c1 = (item.p1 * PANEL).min(n);
        for r in item.r0..item.r1 {
            for (c, b) in bias.iter().enumerate().take(c1).skip(c0) {
                *out.add(r * n + c) += *b;
            }
        }
    }
}

/// Runs one item, weights of type `C`, on one path's tile shapes.
#[inline(always)]
unsafe fn dispatch<I: Isa, const NV: usize, const WIDE: usize, const WIDE_ROWS: usize>(
    job: &Matmul,
    out: *mut f32,
    item: Item,
) {
    match job.packed {
        Packed::F32(w) => run_item::<I, F32Codes, NV, WIDE, WIDE_ROWS>(job, w.as_ptr(), out, item),
        Packed::Bf16(w) => {
            run_item::<I, Bf16Codes, NV, WIDE, WIDE_ROWS>(job, w.as_ptr(), out, item)
        }
    }
}

unsafe fn item_scalar(job: &Matmul, out: *mut f32, item: Item) {
    // Eight-lane arrays: one vector per half panel, no wide tiles.
    dispatch::<Scalar, 2, 2, 0>(job, out, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn item_avx2(job: &Matmul, out: *mut f32, item: Item) {
    // 16 ymm: 2 rows x 4 accumulators + 4 weights + a broadcast.
    dispatch::<crate::simd::Avx2, 2, 4, 2>(job, out, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn item_avx512(job: &Matmul, out: *mut f32, item: Item) {
    // 32 zmm: 2 rows x 8 accumulators + 8 weights + a broadcast.
    dispatch::<crate::simd::Avx512, 2, 8, 2>(job, out, item)
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
    let panels = n.div_ceil(PANEL);
    let row_chunks = m.div_ceil(MC);
    let threads = pool().threads();
    // Enough items for dynamic scheduling to balance: about 4 per thread,
    // each a whole number of the widest tiles.
    let col_chunks = (4 * threads).div_ceil(row_chunks).max(1);
    let per_chunk = panels.div_ceil(col_chunks).next_multiple_of(CHUNK_PANELS);
    let col_chunks = panels.div_ceil(per_chunk);
    let item = |i: usize| {
        let (rc, cc) = (i / col_chunks, i % col_chunks);
        Item {
            r0: rc * MC,
            r1: ((rc + 1) * MC).min(m),
            p0: cc * per_chunk,
            p1: ((cc + 1) * per_chunk).min(panels),
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
