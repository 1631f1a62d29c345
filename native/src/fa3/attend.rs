//! One fa3 attend call: split the batch into work items (a sequence, one
//! kv head, a tile of its query tokens), largest first, and run them on the
//! persistent thread pool through the kernel path's entry point, compiled
//! with that path's target features.

use super::dot::ScalarDot;
use super::kernel::{run_item, Item, Job};
use super::{Batch, Cache, Layer, Settings};
use crate::kernel_path::KernelPath;
use crate::thread_pool::{pool, SharedMut};

/// Query rows (tokens times group) a prefill item takes: enough to reuse
/// each K/V tile from L1, few enough to spread short prefills.
const TILE_ROWS: usize = 16;

/// The work items of a validated batch, most expensive first.
pub fn plan_items(layer: &Layer, batch: &Batch) -> Vec<Item> {
    let tile_tokens = (TILE_ROWS / layer.group()).max(1);
    let mut items = Vec::new();
    for seq in 0..batch.num_seqs() {
        let (_, query_len, seq_len) = batch.sequence(seq);
        for kv_head in 0..layer.num_kv_heads {
            for t0 in (0..query_len).step_by(tile_tokens) {
                let t1 = (t0 + tile_tokens).min(query_len);
                let last = seq_len - query_len + t1 - 1;
                let keys = last + 1 - layer.first_visible(seq_len - query_len + t0);
                items.push((
                    (t1 - t0) * keys,
                    Item {
                        seq,
                        kv_head,
                        t0,
                        t1,
                    },
                ));
            }
        }
    }
    items.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
    items.into_iter().map(|(_, item)| item).collect()
}

unsafe fn item_scalar(job: &Job, item: Item) {
    run_item::<ScalarDot>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn item_avx2(job: &Job, item: Item) {
    run_item::<super::dot::Avx2Dot>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn item_avx512(job: &Job, item: Item) {
    run_item::<super::dot::Avx512Dot>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
unsafe fn item_vnni(job: &Job, item: Item) {
    run_item::<super::dot::VnniDot>(job, item)
}

/// Runs attention for a validated batch on `path`.
///
/// # Safety
/// `batch` passed `Batch::validate` for the cache's layer; the cache arrays
/// have `layer.cache_len()` codes (and scales); `query` and `out` hold
/// numTokens * numQHeads * headDim values; `out` overlaps nothing else.
pub unsafe fn attend(
    path: KernelPath,
    cache: Cache<'_>,
    batch: Batch<'_>,
    settings: Settings,
    query: &[f32],
    out: *mut f32,
) {
    let items = plan_items(&cache.layer, &batch);
    let entry: unsafe fn(&Job, Item) = match path {
        KernelPath::Scalar => item_scalar,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx2 => item_avx2,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx512 => item_avx512,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx512Vnni => item_vnni,
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        _ => item_scalar,
    };
    let job = Job {
        cache,
        batch,
        query,
        out: SharedMut(out),
        settings,
    };
    // Safety: the path was selected for this CPU (kernel_path only returns
    // supported paths), the job was validated, and items own disjoint rows.
    pool().run(items.len(), &|i| unsafe { entry(&job, items[i]) });
}
