//! The model-ops exports: weight packing and the packed matmul (see
//! ops/). Packed weights are a Float32Array (f32) or a Uint16Array (bf16
//! bits): the array's type chooses the storage. Typed arrays are read in place; every size is checked before a
//! kernel runs. Signatures are mirrored in native/types.ts.

use crate::cpu_features::CpuFeatures;
use crate::formats::bf16;
use crate::kernel_path::{self, KernelPath};
use crate::napi::{callback, Env, JsError, JsResult};
use crate::napi_args::{check_disjoint, TypedArray};
use crate::napi_sys as sys;
use crate::ops::job::{Matmul, Packed};
use crate::ops::matmul::matmul;
use crate::ops::pack::{pack, packed_len};

fn error(message: String) -> JsError {
    JsError::Error(message)
}

/// A dimension argument: an integer in 0..=i32::MAX.
fn dim(env: Env, value: sys::Value, what: &str) -> JsResult<usize> {
    let number = env.number(value, what)?;
    if number.fract() != 0.0 || !(0.0..=f64::from(i32::MAX)).contains(&number) {
        return Err(error(format!(
            "{what} must be an integer in 0..{}, got {number}",
            i32::MAX
        )));
    }
    Ok(number as usize)
}

/// As `KVPLUG_NATIVE_PATH`: a downgrade is honoured, anything else gives
/// the best path; `null` or `undefined` defers to the variable.
fn path_arg(env: Env, value: sys::Value) -> JsResult<KernelPath> {
    if env.is_nullish(value)? {
        return Ok(kernel_path::select_from_env().path);
    }
    let request = env.short_string(value, "kernelPath")?;
    Ok(kernel_path::select(&CpuFeatures::detect(), Some(&request)).path)
}

fn packed_len_of(rows: usize, cols: usize) -> JsResult<usize> {
    packed_len(rows, cols).ok_or_else(|| error(format!("weight shape [{rows}, {cols}] overflows")))
}

/// `opsPackedLength(rows, cols): number`.
unsafe extern "C" fn ops_packed_length(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<2>(env, info, "opsPackedLength", |env, [rows, cols]| {
        let len = packed_len_of(dim(env, rows, "rows")?, dim(env, cols, "cols")?)?;
        env.double(len as f64)
    })
}

/// `opsPackWeights(weight, rows, cols, out): undefined`; `out` is a
/// Float32Array (f32) or a Uint16Array (bf16, rounded to nearest even).
unsafe extern "C" fn ops_pack_weights(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<4>(
        env,
        info,
        "opsPackWeights",
        |env, [weight, rows, cols, out]| {
            let (rows, cols) = (dim(env, rows, "rows")?, dim(env, cols, "cols")?);
            let all = [
                ("weight", env.typed_array(weight, "weight")?),
                ("out", env.typed_array(out, "out")?),
            ];
            let weight = all[0].1.slice::<f32>("weight")?;
            if weight.len() != rows * cols {
                return Err(error(format!(
                    "weight has {} elements, expected {rows} x {cols}",
                    weight.len()
                )));
            }
            let want = packed_len_of(rows, cols)?;
            if all[1].1.len() != want {
                return Err(error(format!(
                    "out has {} elements, expected {want}: allocate opsPackedLength({rows}, {cols})",
                    all[1].1.len()
                )));
            }
            check_disjoint(&all, &[1])?;
            let out = all[1].1;
            // Safety: out is disjoint from weight (checked just above).
            if out.is::<u16>() {
                pack(
                    weight,
                    rows,
                    cols,
                    out.slice_mut::<u16>("out")?,
                    bf16::encode,
                );
            } else {
                let out = out.slice_mut::<f32>("out").map_err(|_| {
                    JsError::TypeError(
                        "out must be a Float32Array (f32) or a Uint16Array (bf16)".to_string(),
                    )
                })?;
                pack(weight, rows, cols, out, |x| x);
            }
            env.undefined()
        },
    )
}

/// `opsMatmul(x, packed, rows, cols, bias, out, kernelPath): string`, the
/// kernel path that ran.
unsafe extern "C" fn ops_matmul(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<7>(
        env,
        info,
        "opsMatmul",
        |env, [x, packed, rows, cols, bias, out, path]| {
            let (n, k) = (dim(env, rows, "rows")?, dim(env, cols, "cols")?);
            let mut all: Vec<(&str, TypedArray)> = vec![
                ("x", env.typed_array(x, "x")?),
                ("packed", env.typed_array(packed, "packed")?),
                ("out", env.typed_array(out, "out")?),
            ];
            if !env.is_nullish(bias)? {
                all.push(("bias", env.typed_array(bias, "bias")?));
            }
            let x = all[0].1.slice::<f32>("x")?;
            if k == 0 && !x.is_empty() {
                return Err(error("cols is 0 but x is not empty".to_string()));
            }
            if k > 0 && x.len() % k != 0 {
                return Err(error(format!(
                    "x has {} elements, not a multiple of the weight's {k} columns",
                    x.len()
                )));
            }
            let out_len = all[2].1.len();
            let m = x.len().checked_div(k).unwrap_or(out_len / n.max(1));
            let packed = all[1].1;
            let job = Matmul {
                x,
                packed: if packed.is::<u16>() {
                    Packed::Bf16(packed.slice::<u16>("packed")?)
                } else {
                    Packed::F32(packed.slice::<f32>("packed").map_err(|_| {
                        JsError::TypeError(
                            "packed must be a Float32Array (f32) or a Uint16Array (bf16)"
                                .to_string(),
                        )
                    })?)
                },
                bias: match all.get(3) {
                    Some((_, b)) => Some(b.slice::<f32>("bias")?),
                    None => None,
                },
                m,
                n,
                k,
            };
            job.check(out_len).map_err(error)?;
            check_disjoint(&all, &[2])?;
            // Safety: out is disjoint from every other argument (checked above).
            let out = all[2].1.slice_mut::<f32>("out")?;
            let path = path_arg(env, path)?;
            // Safety: path selected for this CPU; sizes checked; out disjoint.
            matmul(path, &job, out);
            env.string(path.name())
        },
    )
}

/// Adds the ops exports to `exports`.
pub fn register(env: Env<'_>, exports: sys::Value) -> JsResult<()> {
    env.export(exports, "opsPackedLength", Some(ops_packed_length))?;
    env.export(exports, "opsPackWeights", Some(ops_pack_weights))?;
    env.export(exports, "opsMatmul", Some(ops_matmul))
}
