//! One attend call: split the batch into work items (decode: a sequence and
//! a range of its kv heads; prefill: a query tile and one kv head), largest
//! first, and run them on the thread pool through the kernel path's entry
//! point, compiled with that path's target features.

use super::decode::decode;
use super::prefill::{prefill, TILE_ROWS};
use super::{AnyKv, Batch, Kv, Layer};
use crate::kernel_path::KernelPath;
use crate::simd::{
    Bf16Codes, Codes, E4m3Codes, E5m2Codes, F16Codes, F32Codes, I8Codes, Isa, Scalar,
};
use crate::thread_pool::{pool, SharedMut};

/// Everything a work item reads, plus where it writes.
pub struct Job<'a, T> {
    pub layer: Layer,
    pub kv: Kv<'a, T>,
    pub batch: Batch<'a>,
    /// shape [numTokens, numQHeads, headDim]
    pub query: &'a [f32],
    /// shape [numTokens, numQHeads, headDim]; items write disjoint rows.
    pub out: SharedMut<f32>,
    /// What one raw loaded value is worth (`KvDtype::raw_unit`).
    pub raw_unit: f32,
}

impl<T> Job<'_, T> {
    /// The factor folded into the query: softmax scale times what one raw
    /// K unit is worth (per-token-head scales apply per logit instead).
    pub fn q_factor(&self) -> f32 {
        let k = if self.kv.key_scales.is_some() {
            1.0
        } else {
            self.kv.scales.k_scale
        };
        self.layer.softmax_scale * k * self.raw_unit
    }
    /// What one raw V unit is worth, applied once per output.
    pub fn v_factor(&self) -> f32 {
        let v = if self.kv.value_scales.is_some() {
            1.0
        } else {
            self.kv.scales.v_scale
        };
        v * self.raw_unit
    }
    /// int8 zero points (0 otherwise), subtracted after summing.
    pub fn k_zero_point(&self) -> f32 {
        self.kv.scales.k_zero_point as f32
    }
    pub fn v_zero_point(&self) -> f32 {
        self.kv.scales.v_zero_point as f32
    }
}

/// One unit of parallel work.
#[derive(Clone, Copy, Debug)]
pub enum Item {
    Decode {
        seq: usize,
        h0: usize,
        h1: usize,
    },
    Prefill {
        seq: usize,
        t0: usize,
        t1: usize,
        kv_head: usize,
    },
}

/// Logit floats a decode item may keep (512 KiB, half of a Zen 4 L2):
/// bounds the kv heads per item for long contexts.
const DECODE_LOGITS_BUDGET: usize = 1 << 17;

/// Kv heads per decode item: as many as keep every thread busy with about
/// four items each and the item's logits within budget (see decode.rs on
/// why ranges of heads), at least one.
fn decode_heads_per_item(layer: &Layer, decodes: usize, longest: usize, threads: usize) -> usize {
    let for_balance = layer.num_kv_heads * decodes / (4 * threads);
    let for_memory = DECODE_LOGITS_BUDGET / (layer.group() * longest.max(1));
    for_balance.min(for_memory).clamp(1, layer.num_kv_heads)
}

/// The work items of a validated batch, most expensive first (rows times
/// keys read), so that dynamic scheduling ends with the small ones.
pub fn plan_items(layer: &Layer, batch: &Batch, threads: usize) -> Vec<Item> {
    let tile_tokens = (TILE_ROWS / layer.group()).max(1);
    let decodes = (0..batch.num_seqs()).filter(|s| batch.sequence(*s).1 == 1);
    let longest = decodes
        .clone()
        .map(|s| batch.sequence(s).2)
        .max()
        .unwrap_or(0);
    let heads = decode_heads_per_item(layer, decodes.count(), longest, threads);
    let mut items = Vec::new();
    for seq in 0..batch.num_seqs() {
        let (_, query_len, seq_len) = batch.sequence(seq);
        let keys = |first_pos: usize| seq_len - layer.first_visible(first_pos);
        if query_len == 1 {
            for h0 in (0..layer.num_kv_heads).step_by(heads) {
                let h1 = (h0 + heads).min(layer.num_kv_heads);
                items.push(((h1 - h0) * keys(seq_len - 1), Item::Decode { seq, h0, h1 }));
            }
            continue;
        }
        for kv_head in 0..layer.num_kv_heads {
            for t0 in (0..query_len).step_by(tile_tokens) {
                let t1 = (t0 + tile_tokens).min(query_len);
                let cost = (t1 - t0) * keys(seq_len - query_len + t0);
                items.push((
                    cost,
                    Item::Prefill {
                        seq,
                        t0,
                        t1,
                        kv_head,
                    },
                ));
            }
        }
    }
    items.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
    items.into_iter().map(|(_, item)| item).collect()
}

#[inline(always)]
unsafe fn run_item<S: Isa, C: Codes>(job: &Job<'_, C::T>, item: Item) {
    match item {
        Item::Decode { seq, h0, h1 } => decode::<S, C>(job, seq, h0, h1),
        Item::Prefill {
            seq,
            t0,
            t1,
            kv_head,
        } => prefill::<S, C>(job, seq, t0, t1, kv_head),
    }
}

unsafe fn item_scalar<C: Codes>(job: &Job<'_, C::T>, item: Item) {
    run_item::<Scalar, C>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn item_avx2<C: Codes>(job: &Job<'_, C::T>, item: Item) {
    run_item::<crate::simd::Avx2, C>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn item_avx512<C: Codes>(job: &Job<'_, C::T>, item: Item) {
    run_item::<crate::simd::Avx512, C>(job, item)
}

fn run<C: Codes>(path: KernelPath, job: &Job<'_, C::T>, items: &[Item]) {
    let entry: unsafe fn(&Job<'_, C::T>, Item) = match path {
        KernelPath::Scalar => item_scalar::<C>,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx2 => item_avx2::<C>,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx512 | KernelPath::Avx512Vnni => item_avx512::<C>,
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        _ => item_scalar::<C>,
    };
    // Safety: the path was selected for this CPU (kernel_path only returns
    // supported paths), the job was validated, and items own disjoint rows.
    pool().run(items.len(), &|i| unsafe { entry(job, items[i]) });
}

/// Runs attention for a validated batch on `path`.
///
/// # Safety
/// `batch` passed `Batch::validate` for `layer`; the cache arrays have
/// `layer.cache_len()` codes (and scales); `query` and `out` hold
/// numTokens * numQHeads * headDim values; `out` overlaps nothing else.
pub unsafe fn attend(
    path: KernelPath,
    layer: Layer,
    kv: AnyKv<'_>,
    batch: Batch<'_>,
    query: &[f32],
    out: *mut f32,
) {
    let items = plan_items(&layer, &batch, pool().threads());
    let out = SharedMut(out);
    macro_rules! go {
        ($codes:ty, $kv:expr) => {
            run::<$codes>(
                path,
                &Job {
                    layer,
                    kv: $kv,
                    batch,
                    query,
                    out,
                    raw_unit: <$codes>::DTYPE.raw_unit(),
                },
                &items,
            )
        };
    }
    match kv {
        AnyKv::F32(kv) => go!(F32Codes, kv),
        AnyKv::F16(kv) => go!(F16Codes, kv),
        AnyKv::Bf16(kv) => go!(Bf16Codes, kv),
        AnyKv::E4m3(kv) => go!(E4m3Codes, kv),
        AnyKv::E5m2(kv) => go!(E5m2Codes, kv),
        AnyKv::I8(kv) => go!(I8Codes, kv),
    }
}
