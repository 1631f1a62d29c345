//! The flashinfer exports: cache write, run (attention over a plan),
//! readout, and the log-sum-exp merge for tests. Every typed array is read
//! in place; every size is checked before a kernel runs (flashinfer/args.rs
//! and flashinfer/plan.rs). Signatures are mirrored in native/types.ts.

use crate::cpu_features::CpuFeatures;
use crate::flashinfer::args::{parse_cache, CacheArgs};
use crate::flashinfer::cache_write::{write, Side};
use crate::flashinfer::plan::Plan;
use crate::flashinfer::{read::read, run::run, state::merge};
use crate::kernel_path::{self, KernelPath};
use crate::napi::{callback, Env, JsError, JsResult};
use crate::napi_args::{check_disjoint, TypedArray};
use crate::napi_sys as sys;
use crate::xformers_args::count;

fn error(message: String) -> JsError {
    JsError::Error(message)
}

fn expect_len(what: &str, got: usize, want: usize) -> JsResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(error(format!("{what} has {got} elements, expected {want}")))
    }
}

/// A requested kernel path (downgrades only), or the variable's when nullish.
fn path_arg(env: Env, value: sys::Value) -> JsResult<KernelPath> {
    if env.is_nullish(value)? {
        return Ok(kernel_path::select_from_env().path);
    }
    let request = env.short_string(value, "kernelPath")?;
    Ok(kernel_path::select(&CpuFeatures::detect(), Some(&request)).path)
}

/// One side's write arguments.
///
/// # Safety
/// No other argument of the call overlaps the cache.
unsafe fn side<'a>(args: &CacheArgs, values: bool, input: &'a [f32]) -> JsResult<Side<'a>> {
    let s = args.scales;
    let (scale, zero_point) = if values {
        (s.v_scale, s.v_zero_point)
    } else {
        (s.k_scale, s.k_zero_point)
    };
    let (codes, row_scales) = args.side_mut(values)?;
    Ok(Side {
        input,
        codes,
        row_scales,
        scale,
        zero_point,
    })
}

/// `flashinferWrite(cache, keys, values, slotMapping): undefined`.
unsafe extern "C" fn flashinfer_write(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "flashinferWrite",
        |env, [cache, keys, values, slots]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let inputs = [
                ("keys", env.typed_array(keys, "keys")?),
                ("values", env.typed_array(values, "values")?),
                ("slotMapping", env.typed_array(slots, "slotMapping")?),
            ];
            let slots = inputs[2].1.slice::<i32>("slotMapping")?;
            let row = layer.num_kv_heads * layer.head_dim;
            for (name, array) in &inputs[..2] {
                array.slice::<f32>(name)?;
                expect_len(name, array.len(), slots.len() * row)?;
            }
            if let Some((t, slot)) = slots
                .iter()
                .enumerate()
                .find(|(_, s)| **s < -1 || **s as i64 >= layer.num_slots() as i64)
            {
                return Err(error(format!(
                    "slotMapping[{t}] is {slot}, outside the cache's {} slots: use -1 for padding",
                    layer.num_slots()
                )));
            }
            let mut all = args.arrays();
            let cache_arrays: Vec<usize> = (0..all.len()).collect();
            all.extend(inputs);
            check_disjoint(&all, &cache_arrays)?;
            let n = all.len();
            let (k_in, v_in) = (
                all[n - 3].1.slice::<f32>("keys")?,
                all[n - 2].1.slice::<f32>("values")?,
            );
            // Safety: check_disjoint proved the cache overlaps no input.
            let (k, v) = unsafe { (side(&args, false, k_in)?, side(&args, true, v_in)?) };
            // Safety: sizes and slots checked above, arrays disjoint.
            unsafe { write(&layer, slots, k, v) };
            env.undefined()
        },
    )
}

fn plan_of<'a>(
    env: Env<'a>,
    object: sys::Value,
) -> JsResult<(Plan<'a>, Vec<(&'static str, TypedArray<'a>)>)> {
    const FIELDS: [&str; 7] = [
        "queryStartLoc",
        "kvIndptr",
        "kvIndices",
        "kvLastPageLen",
        "decodeChunks",
        "decodeItems",
        "prefillTiles",
    ];
    let mut arrays = Vec::new();
    for name in FIELDS {
        let array = env.typed_array(env.property(object, name, "plan")?, name)?;
        array.slice::<i32>(name)?;
        arrays.push((name, array));
    }
    let get = |i: usize| arrays[i].1.slice::<i32>(FIELDS[i]);
    let plan = Plan {
        query_start_loc: get(0)?,
        kv_indptr: get(1)?,
        kv_indices: get(2)?,
        kv_last_page_len: get(3)?,
        page_size: count(env, object, "pageSize", "plan", 1.0)?,
        decode_chunks: get(4)?,
        decode_items: get(5)?,
        prefill_tiles: get(6)?,
    };
    Ok((plan, arrays))
}

/// `flashinferRun(cache, plan, query, out, kernelPath): string`, the path
/// that ran.
unsafe extern "C" fn flashinfer_run(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<5>(
        env,
        info,
        "flashinferRun",
        |env, [cache, plan, query, out, path]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let (plan, arrays) = plan_of(env, plan)?;
            plan.validate(&layer).map_err(error)?;
            let mut all = args.arrays();
            all.extend(arrays);
            all.push(("query", env.typed_array(query, "query")?));
            all.push(("out", env.typed_array(out, "out")?));
            let n = all.len();
            let want = plan.num_tokens() * layer.num_q_heads * layer.head_dim;
            let query = all[n - 2].1.slice::<f32>("query")?;
            expect_len("query", query.len(), want)?;
            expect_len("out", all[n - 1].1.len(), want)?;
            check_disjoint(&all, &[n - 1])?;
            // Safety: disjoint from every other argument (checked just above).
            let out = unsafe { all[n - 1].1.slice_mut::<f32>("out")? };
            let path = path_arg(env, path)?;
            // Safety: plan validated for this layer; lengths checked.
            unsafe { run(path, layer, args.kv()?, plan, query, out.as_mut_ptr()) };
            env.string(path.name())
        },
    )
}

/// `flashinferRead(cache, slots, keysOut, valuesOut): undefined`.
unsafe extern "C" fn flashinfer_read(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "flashinferRead",
        |env, [cache, slots, keys, values]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let mut all = args.arrays();
            all.push(("slots", env.typed_array(slots, "slots")?));
            all.push(("keysOut", env.typed_array(keys, "keysOut")?));
            all.push(("valuesOut", env.typed_array(values, "valuesOut")?));
            let n = all.len();
            let slots = all[n - 3].1.slice::<i32>("slots")?;
            if let Some((i, slot)) = slots
                .iter()
                .enumerate()
                .find(|(_, s)| **s < 0 || **s as usize >= layer.num_slots())
            {
                return Err(error(format!(
                    "slots[{i}] is {slot}, outside the cache's {} slots",
                    layer.num_slots()
                )));
            }
            let want = slots.len() * layer.num_kv_heads * layer.head_dim;
            expect_len("keysOut", all[n - 2].1.len(), want)?;
            expect_len("valuesOut", all[n - 1].1.len(), want)?;
            check_disjoint(&all, &[n - 2, n - 1])?;
            // Safety: both outputs are disjoint from everything else.
            let (keys, values) = unsafe {
                (
                    all[n - 2].1.slice_mut::<f32>("keysOut")?,
                    all[n - 1].1.slice_mut::<f32>("valuesOut")?,
                )
            };
            read(&layer, slots, args.kv()?, keys, values);
            env.undefined()
        },
    )
}

/// `flashinferMergeStates(v, s, out): number`: merges `s.length` states
/// (normalised values `v`, log-sum-exps `s`, base e) into `out`; returns
/// the merged log-sum-exp.
unsafe extern "C" fn flashinfer_merge_states(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<3>(env, info, "flashinferMergeStates", |env, [v, s, out]| {
        let all = [
            ("v", env.typed_array(v, "v")?),
            ("s", env.typed_array(s, "s")?),
            ("out", env.typed_array(out, "out")?),
        ];
        let (v, s) = (all[0].1.slice::<f32>("v")?, all[1].1.slice::<f32>("s")?);
        expect_len("v", v.len(), s.len() * all[2].1.len())?;
        check_disjoint(&all, &[2])?;
        // Safety: disjoint from v and s (checked above).
        let out = unsafe { all[2].1.slice_mut::<f32>("out")? };
        env.double(f64::from(merge(v, s, out)))
    })
}

/// Adds the flashinfer exports to `exports`.
pub fn register(env: Env<'_>, exports: sys::Value) -> JsResult<()> {
    env.export(exports, "flashinferWrite", Some(flashinfer_write))?;
    env.export(exports, "flashinferRun", Some(flashinfer_run))?;
    env.export(exports, "flashinferRead", Some(flashinfer_read))?;
    env.export(
        exports,
        "flashinferMergeStates",
        Some(flashinfer_merge_states),
    )
}
