//! The fa3 exports: cache write (quantize on write), 8-bit attention and
//! readout. Every typed array is read in place; every size is checked
//! before a kernel runs (fa3/args.rs and `Batch::validate`). Signatures
//! are mirrored in native/types.ts.

use crate::cpu_features::CpuFeatures;
use crate::fa3::args::parse_cache;
use crate::fa3::cache_write::{write, Side};
use crate::fa3::{attend::attend, read::read, Batch, Settings, MAX_PROMOTE_EVERY};
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

/// `fa3Write(cache, keys, values, slotMapping): undefined`.
unsafe extern "C" fn fa3_write(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "fa3Write",
        |env, [cache, keys, values, slots]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let mut all = args.arrays();
            let cache_arrays: Vec<usize> = (0..all.len()).collect();
            all.push(("keys", env.typed_array(keys, "keys")?));
            all.push(("values", env.typed_array(values, "values")?));
            all.push(("slotMapping", env.typed_array(slots, "slotMapping")?));
            let n = all.len();
            let slots = all[n - 1].1.slice::<i32>("slotMapping")?;
            let row = layer.num_kv_heads * layer.head_dim;
            let keys = all[n - 3].1.slice::<f32>("keys")?;
            let values = all[n - 2].1.slice::<f32>("values")?;
            expect_len("keys", keys.len(), slots.len() * row)?;
            expect_len("values", values.len(), slots.len() * row)?;
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
            check_disjoint(&all, &cache_arrays)?;
            let s = args.scales;
            // Safety: check_disjoint proved the cache overlaps no input.
            let ((k_codes, k_rows), (v_codes, v_rows)) =
                unsafe { (args.codes_mut(false)?, args.codes_mut(true)?) };
            let k = Side {
                is_values: false,
                input: keys,
                codes: k_codes,
                row_scales: k_rows,
                scale: s.k_scale,
                zero_point: s.k_zero_point,
            };
            let v = Side {
                is_values: true,
                input: values,
                codes: v_codes,
                row_scales: v_rows,
                scale: s.v_scale,
                zero_point: s.v_zero_point,
            };
            // Safety: sizes and slots checked above, arrays disjoint.
            unsafe { write(&layer, slots, k, v) };
            env.undefined()
        },
    )
}

fn batch_of<'a>(
    env: Env<'a>,
    object: sys::Value,
) -> JsResult<(Batch<'a>, Vec<(&'static str, TypedArray<'a>)>)> {
    let mut arrays = Vec::new();
    for name in ["queryStartLoc", "seqLens", "blockTables"] {
        let array = env.typed_array(env.property(object, name, "batch")?, name)?;
        array.slice::<i32>(name)?;
        arrays.push((name, array));
    }
    let batch = Batch {
        query_start_loc: arrays[0].1.slice::<i32>("queryStartLoc")?,
        seq_lens: arrays[1].1.slice::<i32>("seqLens")?,
        block_tables: arrays[2].1.slice::<i32>("blockTables")?,
        max_blocks_per_seq: count(env, object, "maxBlocksPerSeq", "batch", 0.0)?,
    };
    Ok((batch, arrays))
}

/// `settings`: `{ promotion: boolean, promoteEveryBlocks: number }`.
fn settings_of(env: Env, object: sys::Value) -> JsResult<Settings> {
    let promotion = env.number(
        env.property(object, "promotion", "settings")?,
        "settings.promotion",
    )?;
    let every = count(env, object, "promoteEveryBlocks", "settings", 1.0)?;
    if every > MAX_PROMOTE_EVERY || !(promotion == 0.0 || promotion == 1.0) {
        return Err(error(format!(
            "settings must have promotion 0 or 1 and promoteEveryBlocks from 1 to {MAX_PROMOTE_EVERY}, got {promotion} and {every}"
        )));
    }
    Ok(Settings {
        promotion: promotion == 1.0,
        promote_every: every,
    })
}

/// The kernel path an explicit argument asks for (downgrades only, as
/// `KVPLUG_NATIVE_PATH`); `null` defers to the variable.
fn kernel_path_arg(env: Env, value: sys::Value) -> JsResult<KernelPath> {
    if env.is_nullish(value)? {
        return Ok(kernel_path::select_from_env().path);
    }
    let request = env.short_string(value, "kernelPath")?;
    Ok(kernel_path::select(&CpuFeatures::detect(), Some(&request)).path)
}

/// `fa3Attend(cache, batch, query, out, kernelPath, settings): string`,
/// the kernel path that ran.
unsafe extern "C" fn fa3_attend(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<6>(
        env,
        info,
        "fa3Attend",
        |env, [cache, batch, query, out, path, settings]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let (batch, tables) = batch_of(env, batch)?;
            batch.validate(&layer).map_err(error)?;
            let settings = settings_of(env, settings)?;
            let mut all = args.arrays();
            all.extend(tables);
            all.push(("query", env.typed_array(query, "query")?));
            all.push(("out", env.typed_array(out, "out")?));
            let n = all.len();
            let want = batch.num_tokens() * layer.num_q_heads * layer.head_dim;
            let query = all[n - 2].1.slice::<f32>("query")?;
            expect_len("query", query.len(), want)?;
            expect_len("out", all[n - 1].1.len(), want)?;
            check_disjoint(&all, &[n - 1])?;
            // Safety: disjoint from every other argument (checked just above).
            let out = unsafe { all[n - 1].1.slice_mut::<f32>("out")? };
            let path = kernel_path_arg(env, path)?;
            // Safety: batch validated for this layer; lengths checked.
            unsafe {
                attend(
                    path,
                    args.cache()?,
                    batch,
                    settings,
                    query,
                    out.as_mut_ptr(),
                )
            };
            env.string(path.name())
        },
    )
}

/// `fa3Read(cache, slots, keysOut, valuesOut): undefined`.
unsafe extern "C" fn fa3_read(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(env, info, "fa3Read", |env, [cache, slots, keys, values]| {
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
        read(&args.cache()?, slots, keys, values);
        env.undefined()
    })
}

/// Adds the fa3 exports to `exports`.
pub fn register(env: Env<'_>, exports: sys::Value) -> JsResult<()> {
    env.export(exports, "fa3Write", Some(fa3_write))?;
    env.export(exports, "fa3Attend", Some(fa3_attend))?;
    env.export(exports, "fa3Read", Some(fa3_read))
}
