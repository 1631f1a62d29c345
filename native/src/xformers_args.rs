//! Reads the `cache` object the xformers exports take (a plain object the
//! TypeScript backend builds once per layer cache; see `NativeXformersCache`
//! in native/types.ts) and checks every size the kernels index with, so
//! that no argument can make them read or write out of bounds.

use crate::formats::KvDtype;
use crate::napi::{Env, JsError, JsResult};
use crate::napi_args::{Element, TypedArray};
use crate::napi_sys as sys;
use crate::thread_pool::SharedMut;
use crate::xformers::cache_write::CodesMut;
use crate::xformers::{AnyKv, Kv, Layer, Scales};

/// A parsed, size-checked cache argument.
pub struct CacheArgs<'a> {
    pub layer: Layer,
    pub dtype: KvDtype,
    pub scales: Scales,
    pub keys: TypedArray<'a>,
    pub values: TypedArray<'a>,
    pub key_scales: Option<TypedArray<'a>>,
    pub value_scales: Option<TypedArray<'a>>,
}

fn error(message: String) -> JsError {
    JsError::Error(message)
}

/// A non-negative integer property no larger than 2^31 - 1.
pub fn count(env: Env, object: sys::Value, name: &str, what: &str, min: f64) -> JsResult<usize> {
    let value = env.number(env.property(object, name, what)?, &format!("{what}.{name}"))?;
    if value.fract() != 0.0 || !(min..=f64::from(i32::MAX)).contains(&value) {
        return Err(error(format!(
            "{what}.{name} must be an integer >= {min}, got {value}"
        )));
    }
    Ok(value as usize)
}

fn scale(env: Env, object: sys::Value, name: &str) -> JsResult<f32> {
    let value = env.number(
        env.property(object, name, "cache")?,
        &format!("cache.{name}"),
    )? as f32;
    if !(value > 0.0 && value.is_finite()) {
        return Err(error(format!(
            "cache.{name} must be a positive finite fp32 number, got {value}"
        )));
    }
    Ok(value)
}

fn zero_point(env: Env, object: sys::Value, name: &str) -> JsResult<i32> {
    let value = env.number(
        env.property(object, name, "cache")?,
        &format!("cache.{name}"),
    )?;
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
    let dtype = KvDtype::parse(&name)
        .ok_or_else(|| error(format!("cache.dtype \"{name}\" is not a KV cache dtype")))?;
    let num_kv_heads = count(env, cache, "numKvHeads", "cache", 1.0)?;
    let num_q_heads = count(env, cache, "numQHeads", "cache", 1.0)?;
    let head_dim = count(env, cache, "headDim", "cache", 8.0)?;
    if num_q_heads % num_kv_heads != 0 || head_dim % 8 != 0 || head_dim > 4096 {
        return Err(error(format!(
            "cache must have numQHeads ({num_q_heads}) a multiple of numKvHeads ({num_kv_heads}) and headDim ({head_dim}) a multiple of 8 up to 4096"
        )));
    }
    let block_size = count(env, cache, "blockSize", "cache", 1.0)?;
    if ![8, 16, 32].contains(&block_size) {
        return Err(error(format!(
            "cache.blockSize must be 8, 16 or 32, got {block_size}"
        )));
    }
    let window = count(env, cache, "slidingWindow", "cache", 0.0)?;
    let softmax_scale = scale(env, cache, "softmaxScale")?;
    let layer = Layer {
        num_q_heads,
        num_kv_heads,
        head_dim,
        block_size,
        num_blocks: count(env, cache, "numBlocks", "cache", 1.0)?,
        window: if window == 0 { None } else { Some(window) },
        softmax_scale,
    };
    let fits = layer
        .num_blocks
        .checked_mul(layer.num_kv_heads * layer.block_size)
        .and_then(|rows| rows.checked_mul(head_dim))
        .is_some();
    if !fits {
        return Err(error("cache is too large to index".to_string()));
    }
    let rows = layer.scales_len();
    let keys = array(env, cache, "keys", layer.cache_len())?;
    let values = array(env, cache, "values", layer.cache_len())?;
    let nullish =
        |field: &str| -> JsResult<bool> { env.is_nullish(env.property(cache, field, "cache")?) };
    let per_token_head = !nullish("keyScales")? || !nullish("valueScales")?;
    if per_token_head && dtype != KvDtype::Int8 {
        return Err(error(format!(
            "cache.keyScales is only for int8 per_token_head caches, not {name}"
        )));
    }
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
    } else if dtype.quantized() {
        Scales {
            k_scale: scale(env, cache, "kScale")?,
            v_scale: scale(env, cache, "vScale")?,
            k_zero_point: if dtype == KvDtype::Int8 {
                zero_point(env, cache, "kZeroPoint")?
            } else {
                0
            },
            v_zero_point: if dtype == KvDtype::Int8 {
                zero_point(env, cache, "vZeroPoint")?
            } else {
                0
            },
        }
    } else {
        // 16/32-bit caches are stored unscaled, whatever scales are passed.
        Scales {
            k_scale: 1.0,
            v_scale: 1.0,
            k_zero_point: 0,
            v_zero_point: 0,
        }
    };
    let args = CacheArgs {
        layer,
        dtype,
        scales,
        keys,
        values,
        key_scales,
        value_scales,
    };
    args.kv()?; // checks the arrays' element types now
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

    fn kv_of<T: Element>(&self) -> JsResult<Kv<'a, T>> {
        let scales = |a: Option<TypedArray<'a>>, what| a.map(|a| a.slice::<f32>(what)).transpose();
        Ok(Kv {
            keys: self.keys.slice::<T>("cache.keys")?,
            values: self.values.slice::<T>("cache.values")?,
            key_scales: scales(self.key_scales, "cache.keyScales")?,
            value_scales: scales(self.value_scales, "cache.valueScales")?,
            scales: self.scales,
        })
    }

    /// Read-only views of the codes, typed by dtype.
    pub fn kv(&self) -> JsResult<AnyKv<'a>> {
        Ok(match self.dtype {
            KvDtype::Fp32 => AnyKv::F32(self.kv_of()?),
            KvDtype::Fp16 => AnyKv::F16(self.kv_of()?),
            KvDtype::Bf16 => AnyKv::Bf16(self.kv_of()?),
            KvDtype::Fp8E4m3 => AnyKv::E4m3(self.kv_of()?),
            KvDtype::Fp8E5m2 => AnyKv::E5m2(self.kv_of()?),
            KvDtype::Int8 => AnyKv::I8(self.kv_of()?),
        })
    }

    /// Writable pointers to one side's codes (`keys` or `values`).
    ///
    /// # Safety
    /// The caller has checked that no other argument overlaps the cache.
    pub unsafe fn codes_mut(&self, values: bool) -> JsResult<CodesMut> {
        let (array, what) = if values {
            (self.values, "cache.values")
        } else {
            (self.keys, "cache.keys")
        };
        fn ptr<T: Element>(a: TypedArray, what: &str) -> JsResult<SharedMut<T>> {
            Ok(SharedMut(unsafe { a.slice_mut::<T>(what)? }.as_mut_ptr()))
        }
        Ok(match self.dtype {
            KvDtype::Fp32 => CodesMut::F32(ptr(array, what)?),
            KvDtype::Fp16 => CodesMut::F16(ptr(array, what)?),
            KvDtype::Bf16 => CodesMut::Bf16(ptr(array, what)?),
            KvDtype::Fp8E4m3 => CodesMut::E4m3(ptr(array, what)?),
            KvDtype::Fp8E5m2 => CodesMut::E5m2(ptr(array, what)?),
            KvDtype::Int8 => CodesMut::I8(ptr(array, what)?),
        })
    }

    /// Writable pointer to one side's per-row scales, if any.
    ///
    /// # Safety
    /// As [`CacheArgs::codes_mut`].
    pub unsafe fn row_scales_mut(&self, values: bool) -> JsResult<Option<SharedMut<f32>>> {
        let array = if values {
            self.value_scales
        } else {
            self.key_scales
        };
        array
            .map(|a| {
                Ok(SharedMut(
                    a.slice_mut::<f32>("cache row scales")?.as_mut_ptr(),
                ))
            })
            .transpose()
    }
}
