//! The xformers exports: cache write, attention, readout, plus the pool
//! size and a dequantization probe for tests. Every typed array is read in
//! place; every size is checked before a kernel runs (see xformers_args.rs
//! and xformers/batch.rs). Signatures are mirrored in native/types.ts.

use crate::cpu_features::CpuFeatures;
use crate::formats::KvDtype;
use crate::kernel_path::{self, KernelPath};
use crate::napi::{callback, Env, JsError, JsResult};
use crate::napi_args::{check_disjoint, TypedArray};
use crate::napi_sys as sys;
use crate::simd::dequantize::{dequantize, AnyCodes};
use crate::thread_pool::pool;
use crate::xformers::cache_write::{write, Side};
use crate::xformers::{attend::attend, read::read, Batch};
use crate::xformers_args::{count, parse_cache};

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

/// `xformersWrite(cache, keys, values, slotMapping): undefined`.
unsafe extern "C" fn xformers_write(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "xformersWrite",
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
            let side = |values: bool, input: &'static str| -> JsResult<Side> {
                let (scale, zero_point) = if values {
                    (args.scales.v_scale, args.scales.v_zero_point)
                } else {
                    (args.scales.k_scale, args.scales.k_zero_point)
                };
                let input = all.iter().find(|(n, _)| *n == input).map(|(_, a)| *a);
                Ok(Side {
                    transposed: !values,
                    input: input.expect("input listed above").slice::<f32>("input")?,
                    // Safety: check_disjoint proved the cache overlaps no input.
                    codes: unsafe { args.codes_mut(values)? },
                    row_scales: unsafe { args.row_scales_mut(values)? },
                    scale,
                    zero_point,
                })
            };
            let (k, v) = (side(false, "keys")?, side(true, "values")?);
            // Safety: sizes and slots checked above, arrays disjoint.
            unsafe { write(&layer, slots, k, v) };
            env.undefined()
        },
    )
}

fn batch_of<'a>(
    env: Env<'a>,
    object: sys::Value,
) -> JsResult<(Batch<'a>, [(&'static str, TypedArray<'a>); 3])> {
    let field = |name: &'static str| -> JsResult<(&'static str, TypedArray<'a>)> {
        let array = env.typed_array(env.property(object, name, "batch")?, name)?;
        array.slice::<i32>(name)?;
        Ok((name, array))
    };
    let arrays = [
        field("queryStartLoc")?,
        field("seqLens")?,
        field("blockTables")?,
    ];
    let batch = Batch {
        query_start_loc: arrays[0].1.slice::<i32>("queryStartLoc")?,
        seq_lens: arrays[1].1.slice::<i32>("seqLens")?,
        block_tables: arrays[2].1.slice::<i32>("blockTables")?,
        max_blocks_per_seq: count(env, object, "maxBlocksPerSeq", "batch", 0.0)?,
    };
    Ok((batch, arrays))
}

/// The kernel path an explicit `kernelPath` argument asks for: a
/// downgrade is honoured, anything else gives the best path (as
/// `KVPLUG_NATIVE_PATH` does); `null` or `undefined` defers to the variable.
fn kernel_path_arg(env: Env, value: sys::Value) -> JsResult<KernelPath> {
    if env.is_nullish(value)? {
        return Ok(kernel_path::select_from_env().path);
    }
    let request = env.short_string(value, "kernelPath")?;
    Ok(kernel_path::select(&CpuFeatures::detect(), Some(&request)).path)
}

/// `xformersAttend(cache, batch, query, out, kernelPath): string`, the
/// kernel path that ran.
unsafe extern "C" fn xformers_attend(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<5>(
        env,
        info,
        "xformersAttend",
        |env, [cache, batch, query, out, path]| {
            let args = parse_cache(env, cache)?;
            let layer = args.layer;
            let (batch, tables) = batch_of(env, batch)?;
            batch.validate(&layer).map_err(error)?;
            let mut all = args.arrays();
            all.extend(tables);
            all.push(("query", env.typed_array(query, "query")?));
            all.push(("out", env.typed_array(out, "out")?));
            let want = batch.num_tokens() * layer.num_q_heads * layer.head_dim;
            let query = all[all.len() - 2].1.slice::<f32>("query")?;
            expect_len("query", query.len(), want)?;
            expect_len("out", all[all.len() - 1].1.len(), want)?;
            check_disjoint(&all, &[all.len() - 1])?;
            // Safety: disjoint from every other argument (checked just above).
            let out = unsafe { all[all.len() - 1].1.slice_mut::<f32>("out")? };
            let path = kernel_path_arg(env, path)?;
            // Safety: batch validated for this layer; lengths checked.
            unsafe { attend(path, layer, args.kv()?, batch, query, out.as_mut_ptr()) };
            env.string(path.name())
        },
    )
}

/// `xformersRead(cache, slots, keysOut, valuesOut): undefined`.
unsafe extern "C" fn xformers_read(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "xformersRead",
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

/// `dequantizeCodes(dtype, codes, scale, zeroPoint, out, kernelPath):
/// string` (for tests): the attention loaders on one kernel path; returns
/// the path that ran.
unsafe extern "C" fn dequantize_codes(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<6>(
        env,
        info,
        "dequantizeCodes",
        |env, [dtype, codes, scale, zp, out, path]| {
            let name = env.short_string(dtype, "dtype")?;
            let dtype = KvDtype::parse(&name)
                .ok_or_else(|| error(format!("dtype \"{name}\" is not a KV cache dtype")))?;
            let all = [
                ("codes", env.typed_array(codes, "codes")?),
                ("out", env.typed_array(out, "out")?),
            ];
            let codes = &all[0].1;
            let codes = match dtype {
                KvDtype::Fp32 => AnyCodes::F32(codes.slice("codes")?),
                KvDtype::Fp16 => AnyCodes::F16(codes.slice("codes")?),
                KvDtype::Bf16 => AnyCodes::Bf16(codes.slice("codes")?),
                KvDtype::Fp8E4m3 => AnyCodes::E4m3(codes.slice("codes")?),
                KvDtype::Fp8E5m2 => AnyCodes::E5m2(codes.slice("codes")?),
                KvDtype::Int8 => AnyCodes::I8(codes.slice("codes")?),
            };
            expect_len("out", all[1].1.len(), all[0].1.len())?;
            check_disjoint(&all, &[1])?;
            let scale = env.number(scale, "scale")? as f32;
            let zp = env.number(zp, "zeroPoint")?;
            if !(scale > 0.0 && scale.is_finite())
                || zp.fract() != 0.0
                || !(-128.0..=127.0).contains(&zp)
            {
                return Err(error(format!("scale must be positive finite and zeroPoint an integer in -128..127, got {scale} and {zp}")));
            }
            // Safety: disjoint from codes (checked above).
            let out = unsafe { all[1].1.slice_mut::<f32>("out")? };
            let path = kernel_path_arg(env, path)?;
            dequantize(path, codes, scale, zp as i32, out);
            env.string(path.name())
        },
    )
}

/// `adviseHugePages(array): boolean`.
unsafe extern "C" fn advise_huge_pages(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<1>(env, info, "adviseHugePages", |env, [array]| {
        let array = env.typed_array(array, "array")?;
        let (start, end) = array.span();
        let taken = crate::huge_pages::advise_huge_pages(start as *const u8, end - start);
        env.boolean(taken)
    })
}

/// `poolThreads(): number`.
unsafe extern "C" fn pool_threads(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "poolThreads", |env, []| {
        env.uint32(u32::try_from(pool().threads()).unwrap_or(u32::MAX))
    })
}

/// Adds the xformers exports to `exports`.
pub fn register(env: Env<'_>, exports: sys::Value) -> JsResult<()> {
    env.export(exports, "xformersWrite", Some(xformers_write))?;
    env.export(exports, "xformersAttend", Some(xformers_attend))?;
    env.export(exports, "xformersRead", Some(xformers_read))?;
    env.export(exports, "dequantizeCodes", Some(dequantize_codes))?;
    env.export(exports, "adviseHugePages", Some(advise_huge_pages))?;
    env.export(exports, "poolThreads", Some(pool_threads))
}
