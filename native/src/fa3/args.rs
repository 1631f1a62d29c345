//! Reads the `cache` object the fa3 exports take (`NativeFa3Cache` in
//! native/types.ts, built once per layer cache by backends/fa3) and checks
//! every size the kernels index with, so that no argument can make them
//! read or write out of bounds.

use super::cache_write::CodesMut;
use super::{Cache, Codes, Layer, Scales};
use crate::napi::{Env, JsError, JsResult};
use crate::napi_args::TypedArray;
use crate::napi_sys as sys;
use crate::thread_pool::SharedMut;
use crate::xformers_args::count;

/// A parsed, size-checked cache argument.
pub struct CacheArgs<'a> {
    pub layer: Layer,
    pub e4m3: bool,
    pub scales: Scales,
    pub soft_cap: Option<f32>,
    pub keys: TypedArray<'a>,
    pub values: TypedArray<'a>,
    pub key_scales: Option<TypedArray<'a>>,
    pub value_scales: Option<TypedArray<'a>>,
}

fn error(message: String) -> JsError {
    JsError::Error(message)
}

fn number(env: Env, object: sys::Value, name: &str) -> JsResult<f64> {
    env.number(
        env.property(object, name, "cache")?,
        &format!("cache.{name}"),
    )
}

fn positive(env: Env, object: sys::Value, name: &str) -> JsResult<f32> {
    let value = number(env, object, name)? as f32;
    if !(value > 0.0 && value.is_finite()) {
        return Err(error(format!(
            "cache.{name} must be a positive finite fp32 number, got {value}"
        )));
    }
    Ok(value)
}

fn zero_point(env: Env, object: sys::Value, name: &str) -> JsResult<i32> {
    let value = number(env, object, name)?;
    if value.fract() != 0.0 || !(-128.0..=127.0).contains(&value) {
        return Err(error(format!(
            "cache.{name} must be an integer from -128 to 127, got {value}"
        )));
    }
    Ok(value as i32)
}

fn array<'a>(env: Env<'a>, object: sys::Value, name: &str, len: usize) -> JsResult<TypedArray<'a>> {
    let array = env.typed_array(
        env.property(object, name, "cache")?,
        &format!("cache.{name}"),
    )?;
    if array.len() != len {
        return Err(error(format!(
            "cache.{name} has {} elements, expected {len}",
            array.len()
        )));
    }
    Ok(array)
}

/// Parses and checks `cache`.
pub fn parse_cache<'a>(env: Env<'a>, cache: sys::Value) -> JsResult<CacheArgs<'a>> {
    let name = env.short_string(env.property(cache, "dtype", "cache")?, "cache.dtype")?;
    let e4m3 = match name.as_str() {
        "fp8_e4m3" => true,
        "int8" => false,
        _ => {
            return Err(error(format!(
                "cache.dtype \"{name}\" is not an fa3 cache dtype: use fp8_e4m3 or int8"
            )))
        }
    };
    let num_kv_heads = count(env, cache, "numKvHeads", "cache", 1.0)?;
    let num_q_heads = count(env, cache, "numQHeads", "cache", 1.0)?;
    let head_dim = count(env, cache, "headDim", "cache", 16.0)?;
    if num_q_heads % num_kv_heads != 0 || head_dim % 16 != 0 || head_dim > 256 {
        return Err(error(format!(
            "cache must have numQHeads ({num_q_heads}) a multiple of numKvHeads ({num_kv_heads}) and headDim ({head_dim}) a multiple of 16 up to 256"
        )));
    }
    let block_size = count(env, cache, "blockSize", "cache", 1.0)?;
    if ![16, 32, 64].contains(&block_size) {
        return Err(error(format!(
            "cache.blockSize must be 16, 32 or 64, got {block_size}"
        )));
    }
    let window = count(env, cache, "slidingWindow", "cache", 0.0)?;
    let cap = number(env, cache, "softCap")? as f32;
    if !(cap >= 0.0 && cap.is_finite()) {
        return Err(error(format!(
            "cache.softCap must be 0 (off) or a positive finite number, got {cap}"
        )));
    }
    let layer = Layer {
        num_q_heads,
        num_kv_heads,
        head_dim,
        block_size,
        num_blocks: count(env, cache, "numBlocks", "cache", 1.0)?,
        window: if window == 0 { None } else { Some(window) },
        softmax_scale: positive(env, cache, "softmaxScale")?,
    };
    let fits = layer
        .num_blocks
        .checked_mul(num_kv_heads * block_size)
        .and_then(|rows| rows.checked_mul(head_dim))
        .is_some();
    if !fits {
        return Err(error("cache is too large to index".to_string()));
    }
    let keys = array(env, cache, "keys", layer.cache_len())?;
    let values = array(env, cache, "values", layer.cache_len())?;
    let per_token_head = !env.is_nullish(env.property(cache, "keyScales", "cache")?)?;
    if per_token_head && e4m3 {
        return Err(error(
            "cache.keyScales is only for int8 per_token_head caches, not fp8_e4m3".to_string(),
        ));
    }
    let rows = layer.scales_len();
    let (key_scales, value_scales) = if per_token_head {
        (
            Some(array(env, cache, "keyScales", rows)?),
            Some(array(env, cache, "valueScales", rows)?),
        )
    } else {
        (None, None)
    };
    let scales = if per_token_head {
        Scales {
            k_scale: 1.0,
            v_scale: 1.0,
            k_zero_point: 0,
            v_zero_point: 0,
        }
    } else {
        Scales {
            k_scale: positive(env, cache, "kScale")?,
            v_scale: positive(env, cache, "vScale")?,
            k_zero_point: if e4m3 {
                0
            } else {
                zero_point(env, cache, "kZeroPoint")?
            },
            v_zero_point: if e4m3 {
                0
            } else {
                zero_point(env, cache, "vZeroPoint")?
            },
        }
    };
    let args = CacheArgs {
        layer,
        e4m3,
        scales,
        soft_cap: if cap > 0.0 { Some(cap) } else { None },
        keys,
        values,
        key_scales,
        value_scales,
    };
    args.cache()?; // checks the arrays' element types now
    Ok(args)
}

impl<'a> CacheArgs<'a> {
    /// The cache's arrays, named, for `check_disjoint`.
    pub fn arrays(&self) -> Vec<(&'static str, TypedArray<'a>)> {
        let mut all = vec![("cache.keys", self.keys), ("cache.values", self.values)];
        all.extend(self.key_scales.map(|a| ("cache.keyScales", a)));
        all.extend(self.value_scales.map(|a| ("cache.valueScales", a)));
        all
    }

    /// Read-only views for attention and readout.
    pub fn cache(&self) -> JsResult<Cache<'a>> {
        let scales = |a: Option<TypedArray<'a>>, what| a.map(|a| a.slice::<f32>(what)).transpose();
        let codes = if self.e4m3 {
            Codes::E4m3 {
                keys: self.keys.slice("cache.keys")?,
                values: self.values.slice("cache.values")?,
            }
        } else {
            Codes::I8 {
                keys: self.keys.slice("cache.keys")?,
                values: self.values.slice("cache.values")?,
            }
        };
        Ok(Cache {
            layer: self.layer,
            codes,
            scales: self.scales,
            key_scales: scales(self.key_scales, "cache.keyScales")?,
            value_scales: scales(self.value_scales, "cache.valueScales")?,
            soft_cap: self.soft_cap,
        })
    }

    /// Writable pointers to one side's codes and row scales.
    ///
    /// # Safety
    /// The caller has checked that no other argument overlaps the cache.
    pub unsafe fn codes_mut(&self, values: bool) -> JsResult<(CodesMut, Option<SharedMut<f32>>)> {
        let (array, scales) = if values {
            (self.values, self.value_scales)
        } else {
            (self.keys, self.key_scales)
        };
        let codes = if self.e4m3 {
            CodesMut::E4m3(SharedMut(
                array.slice_mut::<u8>("cache codes")?.as_mut_ptr(),
            ))
        } else {
            CodesMut::I8(SharedMut(
                array.slice_mut::<i8>("cache codes")?.as_mut_ptr(),
            ))
        };
        let scales = scales
            .map(|a| {
                Ok(SharedMut(
                    a.slice_mut::<f32>("cache row scales")?.as_mut_ptr(),
                ))
            })
            .transpose()?;
        Ok((codes, scales))
    }
}
