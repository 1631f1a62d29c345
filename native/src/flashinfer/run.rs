//! One run of a plan for one layer: the plan's work (split-KV decode
//! chunks, each over every kv head of its token; prefill tiles, one per kv
//! head) goes to the thread pool largest first; chunks that share a token
//! are then joined by the log-sum-exp merge (state.rs), also in parallel.
//! Each item runs through its kernel path's entry point, compiled with
//! that path's target features.

use super::plan::Plan;
use super::scratch::Scratch;
use super::state::{finish, merge};
use super::tile::{Rows, Seg, Span, SpanKernel, Tiles, MAX_SPAN, MAX_TILE_TOKENS, RB};
use super::{AnyKv, Kv, Layer};
use crate::kernel_path::KernelPath;
use crate::simd::{Bf16Codes, Codes, E4m3Codes, E5m2Codes, F16Codes, F32Codes, I8Codes, Scalar};
use crate::thread_pool::{pool, SharedMut};

/// The largest head dim the kernels take (args.rs checks it).
pub const MAX_HEAD_DIM: usize = 512;

/// Everything a work item reads, plus where it writes.
struct Job<'a, T> {
    layer: Layer,
    kv: Kv<'a, T>,
    plan: Plan<'a>,
    /// shape [numTokens, numQHeads, headDim]
    query: &'a [f32],
    /// shape [numTokens, numQHeads, headDim]; items write disjoint rows.
    out: SharedMut<f32>,
    /// shape [numChunks, numQHeads, headDim + 1]: (v, lse) of split chunks.
    partial: SharedMut<f32>,
    /// Folded into q: softmax scale * per-tensor K scale * raw unit.
    q_factor: f32,
    /// Applied to each output: per-tensor V scale * raw unit.
    v_factor: f32,
}

#[derive(Clone, Copy)]
enum Item {
    /// A decode chunk (row of plan.decodeChunks), every kv head.
    Chunk(usize),
    /// A prefill tile (row of plan.prefillTiles) for one kv head.
    Tile(usize, usize),
}

/// The span of pages `p0..p1` (at most MAX_SPAN keys) of sequence `s`,
/// kv head `h`.
#[inline(always)]
unsafe fn span_of<T>(job: &Job<T>, s: usize, h: usize, p0: usize, p1: usize) -> Span<T> {
    let (layer, kv, ps) = (&job.layer, &job.kv, job.layer.page_size);
    let pages = job.plan.pages(s);
    let d = layer.head_dim;
    let seg = |p: usize| {
        let row = layer.row(pages[p.min(p1 - 1)] as usize, h, 0);
        Seg {
            k: kv.keys.as_ptr().add(row * d),
            v: kv.values.as_ptr().add(row * d),
            k_scales: kv.key_scales.map(|x| x.as_ptr().add(row)),
            v_scales: kv.value_scales.map(|x| x.as_ptr().add(row)),
        }
    };
    Span {
        segs: [seg(p0), seg(p0 + 1), seg(p0 + 2), seg(p0 + 3)],
        page: ps,
        j0: p0 * ps,
        n: (p1 - p0) * ps,
    }
}

/// Pages per span.
fn span_pages(layer: &Layer) -> usize {
    MAX_SPAN / layer.page_size
}

/// Runs the keys [k0, k1) of sequence `s` for kv head `h` against `rows`,
/// a span of whole pages at a time (rows' bounds mask the rest).
#[inline(always)]
unsafe fn run_keys<S: SpanKernel, C: Codes>(
    job: &Job<C::T>,
    t: &Tiles,
    rows: &Rows,
    s: usize,
    h: usize,
    k0: usize,
    k1: usize,
) {
    let (ps, sp) = (job.layer.page_size, span_pages(&job.layer));
    let end = k1.div_ceil(ps);
    for p0 in (k0 / ps..end).step_by(sp) {
        let span = span_of(job, s, h, p0, (p0 + sp).min(end));
        S::span_fn::<C>()(rows, t, &span);
    }
}

/// Hints L2 to load `n` elements from `p` (no fault if out of range); L2,
/// not L1: a span is as large as L1 and would evict the one in use.
#[inline(always)]
fn prefetch<T>(p: *const T, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
        let bytes = n * std::mem::size_of::<T>();
        let p = p.cast::<i8>();
        for at in (0..bytes).step_by(64) {
            // Safety: a prefetch never faults; SSE is baseline on x86_64.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(at)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, n);
}

/// Scratch for `rows` query rows: q, o, m, l, two tiles, scores, scales.
fn scratch_len(d: usize, rows: usize) -> usize {
    2 * rows * d + 2 * rows + 2 * MAX_SPAN * d + RB.max(rows) * MAX_SPAN + 2 * MAX_SPAN
}

/// Copies query rows (times the K factor) into `q`, zeroing the padding;
/// resets the state.
unsafe fn load_rows(
    job_q: &[f32],
    first: impl Fn(usize) -> Option<usize>,
    np: usize,
    d: usize,
    factor: f32,
    base: *mut f32,
) -> (*mut f32, *mut f32, *mut f32, *mut f32) {
    let (q, o) = (base, base.add(np * d));
    let (m, l) = (o.add(np * d), o.add(np * d + np));
    for r in 0..np {
        let src = first(r).map(|at| &job_q[at..at + d]);
        for e in 0..d {
            *q.add(r * d + e) = src.map_or(0.0, |x| x[e] * factor);
            *o.add(r * d + e) = 0.0;
        }
        *m.add(r) = f32::NEG_INFINITY;
        *l.add(r) = 0.0;
    }
    (q, o, m, l)
}

#[inline(always)]
unsafe fn run_chunk<S: SpanKernel, C: Codes>(job: &Job<C::T>, c: usize) {
    let layer = &job.layer;
    let [token, s, k0, k1] = job.plan.chunk(c);
    let (g, d, hq) = (layer.group(), layer.head_dim, layer.num_q_heads);
    let np = g.div_ceil(RB) * RB;
    let all = layer.num_kv_heads * np;
    let mut scratch = Scratch::take(scratch_len(d, all));
    let base = scratch.ptr();
    // Rows of kv head h are h*np .. h*np + g; the padding is zero queries.
    let first = |r: usize| (r % np < g).then(|| (token * hq + (r / np) * g + r % np) * d);
    let (q, o, m, l) = load_rows(job.query, first, all, d, job.q_factor, base);
    let tiles = base.add(2 * all * d + 2 * all);
    let t = Tiles {
        d,
        k_zero_point: job.kv.scales.k_zero_point as f32,
        v_zero_point: job.kv.scales.v_zero_point as f32,
        soft_cap: layer.soft_cap,
        k: tiles,
        v: tiles.add(MAX_SPAN * d),
        row_scales: tiles.add(2 * MAX_SPAN * d),
        scores: tiles.add(2 * MAX_SPAN * d + 2 * MAX_SPAN),
    };
    let seq_len = job.plan.seq_len(s);
    let lo = layer.first_visible(seq_len - 1).max(k0);
    let rows_of = |h: usize| Rows {
        n: g,
        np,
        group: g,
        bounds: [(lo, k1); MAX_TILE_TOKENS],
        q: q.add(h * np * d),
        m: m.add(h * np),
        l: l.add(h * np),
        o: o.add(h * np * d),
    };
    if lo < k1 {
        // Page-outer: a page's kv heads are adjacent, read in one sweep.
        let ps = layer.page_size;
        let (hk, sp) = (layer.num_kv_heads, span_pages(layer));
        let end = k1.div_ceil(ps);
        for p0 in (lo / ps..end).step_by(sp) {
            let p1 = (p0 + sp).min(end);
            for h in 0..hk {
                // Block tables scatter pages: fetch the next (span, head)
                // while this one computes.
                let next = if h + 1 < hk {
                    Some((p0, p1, h + 1))
                } else {
                    (p1 < end).then(|| (p1, (p1 + sp).min(end), 0))
                };
                if let Some((q0, q1, nh)) = next {
                    let span = span_of(job, s, nh, q0, q1);
                    for seg in &span.segs[..q1 - q0] {
                        prefetch(seg.k, ps * d);
                        prefetch(seg.v, ps * d);
                    }
                }
                S::span_fn::<C>()(&rows_of(h), &t, &span_of(job, s, h, p0, p1));
            }
        }
    }
    // Chunks tile [0, seqLen): a chunk that is all of it needs no merge.
    let single = k0 == 0 && k1 == seq_len;
    let mut mean = [0.0f32; MAX_HEAD_DIM];
    for h in 0..layer.num_kv_heads {
        for r in 0..g {
            let at = h * np + r;
            let head = h * g + r;
            let lse = finish(
                *m.add(at),
                *l.add(at),
                std::slice::from_raw_parts(o.add(at * d), d),
                &mut mean[..d],
            );
            let dst = if single {
                job.out.0.add((token * hq + head) * d)
            } else {
                let p = job.partial.0.add((c * hq + head) * (d + 1));
                *p.add(d) = lse;
                p
            };
            for (e, x) in mean[..d].iter().enumerate() {
                *dst.add(e) = x * job.v_factor;
            }
        }
    }
}

#[inline(always)]
unsafe fn run_tile<S: SpanKernel, C: Codes>(job: &Job<C::T>, i: usize, h: usize) {
    let layer = &job.layer;
    let [t0, count, s, _] = job.plan.tile(i);
    let (g, d, hq) = (layer.group(), layer.head_dim, layer.num_q_heads);
    let n = count * g;
    let np = n.div_ceil(RB) * RB;
    let mut scratch = Scratch::take(scratch_len(d, np));
    let base = scratch.ptr();
    let first = |r: usize| (r < n).then(|| ((t0 + r / g) * hq + h * g + r % g) * d);
    let (q, o, m, l) = load_rows(job.query, first, np, d, job.q_factor, base);
    let tiles = base.add(2 * np * d + 2 * np);
    let t = Tiles {
        d,
        k_zero_point: job.kv.scales.k_zero_point as f32,
        v_zero_point: job.kv.scales.v_zero_point as f32,
        soft_cap: layer.soft_cap,
        k: tiles,
        v: tiles.add(MAX_SPAN * d),
        row_scales: tiles.add(2 * MAX_SPAN * d),
        scores: tiles.add(2 * MAX_SPAN * d + 2 * MAX_SPAN),
    };
    let mut bounds = [(0, 0); MAX_TILE_TOKENS];
    for (k, b) in bounds.iter_mut().enumerate().take(count) {
        let pos = job.plan.position(s, t0 + k);
        *b = (layer.first_visible(pos), pos + 1);
    }
    let rows = Rows {
        n,
        np,
        group: g,
        bounds,
        q,
        m,
        l,
        o,
    };
    run_keys::<S, C>(job, &t, &rows, s, h, bounds[0].0, bounds[count - 1].1);
    for r in 0..n {
        let dst = job.out.0.add(((t0 + r / g) * hq + h * g + r % g) * d);
        let out = std::slice::from_raw_parts_mut(dst, d);
        finish(
            *m.add(r),
            *l.add(r),
            std::slice::from_raw_parts(o.add(r * d), d),
            out,
        );
        out.iter_mut().for_each(|x| *x *= job.v_factor);
    }
}

#[inline(always)]
unsafe fn run_item<S: SpanKernel, C: Codes>(job: &Job<C::T>, item: Item) {
    match item {
        Item::Chunk(c) => run_chunk::<S, C>(job, c),
        Item::Tile(i, h) => run_tile::<S, C>(job, i, h),
    }
}

unsafe fn item_scalar<C: Codes>(job: &Job<C::T>, item: Item) {
    run_item::<Scalar, C>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn item_avx2<C: Codes>(job: &Job<C::T>, item: Item) {
    run_item::<crate::simd::Avx2, C>(job, item)
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn item_avx512<C: Codes>(job: &Job<C::T>, item: Item) {
    run_item::<crate::simd::Avx512, C>(job, item)
}

/// The items of a validated plan, most keys times rows first.
fn items(layer: &Layer, plan: &Plan) -> Vec<Item> {
    let mut items = Vec::new();
    for c in 0..plan.decode_chunks.len() / 4 {
        let [_, _, k0, k1] = plan.chunk(c);
        items.push(((k1 - k0) * layer.num_q_heads, Item::Chunk(c)));
    }
    for i in 0..plan.prefill_tiles.len() / 4 {
        let [t0, count, s, _] = plan.tile(i);
        let last = plan.position(s, t0 + count - 1) + 1;
        let keys = last - layer.first_visible(plan.position(s, t0));
        for h in 0..layer.num_kv_heads {
            items.push((keys * count * layer.group(), Item::Tile(i, h)));
        }
    }
    items.sort_by_key(|(cost, _)| std::cmp::Reverse(*cost));
    items.into_iter().map(|(_, item)| item).collect()
}

/// `p + at` (a function, so that a closure captures `p` whole: Sync).
fn row_ptr(p: SharedMut<f32>, at: usize) -> *mut f32 {
    p.0.wrapping_add(at)
}

/// Joins the split chunks of every decode token that has several.
fn merge_all(layer: &Layer, plan: &Plan, partial: &[f32], out: SharedMut<f32>) {
    let (d, hq) = (layer.head_dim, layer.num_q_heads);
    let split: Vec<[usize; 3]> = (0..plan.decode_items.len() / 3)
        .map(|i| plan.item(i))
        .filter(|[_, _, count]| *count > 1)
        .collect();
    pool().run(split.len() * hq, &|w| {
        let ([token, first, count], h) = (split[w / hq], w % hq);
        let mut v = vec![0.0f32; count * d];
        let mut s = vec![0.0f32; count];
        for k in 0..count {
            let p = &partial[((first + k) * hq + h) * (d + 1)..][..d + 1];
            v[k * d..(k + 1) * d].copy_from_slice(&p[..d]);
            s[k] = p[d];
        }
        // Safety: one (token, head) row per work index, disjoint.
        let dst = unsafe { std::slice::from_raw_parts_mut(row_ptr(out, (token * hq + h) * d), d) };
        merge(&v, &s, dst);
    });
}

fn run_path<C: Codes>(path: KernelPath, job: &Job<C::T>, items: &[Item]) {
    let entry: unsafe fn(&Job<C::T>, Item) = match path {
        KernelPath::Scalar => item_scalar::<C>,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx2 => item_avx2::<C>,
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        KernelPath::Avx512 | KernelPath::Avx512Vnni => item_avx512::<C>,
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        _ => item_scalar::<C>,
    };
    // Safety: the path was selected for this CPU, the plan validated, and
    // items write disjoint output rows and partial slots.
    pool().run(items.len(), &|i| unsafe { entry(job, items[i]) });
}

/// Runs a validated plan for one layer on `path`.
///
/// # Safety
/// `plan` passed `Plan::validate` for `layer`; the cache arrays have
/// `layer.cache_len()` codes (and `layer.rows()` scales); `query` and `out`
/// hold numTokens * numQHeads * headDim values; `out` overlaps nothing else.
pub unsafe fn run(
    path: KernelPath,
    layer: Layer,
    kv: AnyKv,
    plan: Plan,
    query: &[f32],
    out: *mut f32,
) {
    let items = items(&layer, &plan);
    let chunks = plan.decode_chunks.len() / 4;
    let mut partial = vec![0.0f32; chunks * layer.num_q_heads * (layer.head_dim + 1)];
    let out = SharedMut(out);
    macro_rules! go {
        ($codes:ty, $kv:expr) => {{
            let kv = $kv;
            let raw = <$codes>::DTYPE.raw_unit();
            let k = if kv.key_scales.is_some() {
                1.0
            } else {
                kv.scales.k_scale
            };
            let v = if kv.value_scales.is_some() {
                1.0
            } else {
                kv.scales.v_scale
            };
            let job = Job {
                layer,
                kv,
                plan,
                query,
                out,
                partial: SharedMut(partial.as_mut_ptr()),
                q_factor: layer.softmax_scale * k * raw,
                v_factor: v * raw,
            };
            run_path::<$codes>(path, &job, &items)
        }};
    }
    match kv {
        AnyKv::F32(kv) => go!(F32Codes, kv),
        AnyKv::F16(kv) => go!(F16Codes, kv),
        AnyKv::Bf16(kv) => go!(Bf16Codes, kv),
        AnyKv::E4m3(kv) => go!(E4m3Codes, kv),
        AnyKv::E5m2(kv) => go!(E5m2Codes, kv),
        AnyKv::I8(kv) => go!(I8Codes, kv),
    }
    merge_all(&layer, &plan, &partial, out);
}
