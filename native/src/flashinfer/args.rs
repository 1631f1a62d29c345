//! Reads the `cache` object the flashinfer exports take (a plain object the
//! TypeScript backend builds once per layer cache; `NativeFlashinferCache`
//! in native/types.ts) and checks every size the kernels index with.

use super::cache_write::CodesMut;
use super::run::MAX_HEAD_DIM;
use super::{AnyKv, Kv, Layer, Scales};
use crate::formats::KvDtype;
use crate::napi::{Env, JsError, JsResult};
use crate::napi_args::{Element, TypedArray};
use crate::napi_sys as sys;
use crate::thread_pool::SharedMut;
use crate::xformers_args::count;

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

fn number(env: Env, cache: sys::Value, name: &str) -> JsResult<f64> {
    env.number(
        env.property(cache, name, "cache")?,
        &format!("cache.{name}"),
    )
}

fn positive(env: Env, cache: sys::Value, name: &str) -> JsResult<f32> {
    let value = number(env, cache, name)? as f32;
    if !(value > 0.0 && value.is_finite()) {
        return Err(error(format!(
            "cache.{name} must be a positive finite fp32 number, got {value}"
        )));
    }
    Ok(value)
}

fn zero_point(env: Env, cache: sys::Value, name: &str) -> JsResult<i32> {
    let value = number(env, cache, name)?;
    if value.fract() != 0.0 || !(-128.0..=127.0).contains(&value) {
        return Err(error(format!(
            "cache.{name} must be an integer from -128 to 127, got {value}"
        )));
    }
    Ok(value as i32)
}

fn array<'a>(env: Env<'a>, cache: sys::Value, name: &str, len: usize) -> JsResult<TypedArray<'a>> {
    let array = env.typed_array(
        env.property(cache, name, "cache")?,
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

fn layer_of(env: Env, cache: sys::Value) -> JsResult<Layer> {
    let num_kv_heads = count(env, cache, "numKvHeads", "cache", 1.0)?;
    let num_q_heads = count(env, cache, "numQHeads", "cache", 1.0)?;
    let head_dim = count(env, cache, "headDim", "cache", 64.0)?;
    if num_q_heads % num_kv_heads != 0 || head_dim % 64 != 0 || head_dim > MAX_HEAD_DIM {
        return Err(error(format!(
            "cache must have numQHeads ({num_q_heads}) a multiple of numKvHeads ({num_kv_heads}) and headDim ({head_dim}) a multiple of 64 up to {MAX_HEAD_DIM}"
        )));
    }
    let page_size = count(env, cache, "pageSize", "cache", 1.0)?;
    if ![16, 32, 64].contains(&page_size) {
        return Err(error(format!(
            "cache.pageSize must be 16, 32 or 64, got {page_size}"
        )));
    }
    let window = count(env, cache, "slidingWindow", "cache", 0.0)?;
    let cap = number(env, cache, "softCap")? as f32;
    if !(cap >= 0.0 && cap.is_finite()) {
        return Err(error(format!(
            "cache.softCap must be 0 (none) or a positive finite number, got {cap}"
        )));
    }
    let layer = Layer {
        num_q_heads,
        num_kv_heads,
        head_dim,
        page_size,
        num_pages: count(env, cache, "numPages", "cache", 1.0)?,
        window: (window > 0).then_some(window),
        soft_cap: (cap > 0.0).then_some(cap),
        softmax_scale: positive(env, cache, "softmaxScale")?,
    };
    let fits = layer
        .num_pages
        .checked_mul(num_kv_heads * page_size)
        .and_then(|rows| rows.checked_mul(head_dim))
        .is_some_and(|n| n <= isize::MAX as usize / 4);
    if !fits {
        return Err(error("cache is too large to index".to_string()));
    }
    Ok(layer)
}

/// Parses and checks `cache`.
pub fn parse_cache<'a>(env: Env<'a>, cache: sys::Value) -> JsResult<CacheArgs<'a>> {
    let name = env.short_string(env.property(cache, "dtype", "cache")?, "cache.dtype")?;
    let dtype = KvDtype::parse(&name)
        .ok_or_else(|| error(format!("cache.dtype \"{name}\" is not a KV cache dtype")))?;
    let layer = layer_of(env, cache)?;
    let keys = array(env, cache, "keys", layer.cache_len())?;
    let values = array(env, cache, "values", layer.cache_len())?;
    let nullish = |f: &str| -> JsResult<bool> { env.is_nullish(env.property(cache, f, "cache")?) };
    let per_row = !nullish("keyScales")? || !nullish("valueScales")?;
    if per_row && dtype != KvDtype::Int8 {
        return Err(error(format!(
            "cache.keyScales is only for int8 per_token_head caches, not {name}"
        )));
    }
    let (key_scales, value_scales) = if per_row {
        (
            Some(array(env, cache, "keyScales", layer.rows())?),
            Some(array(env, cache, "valueScales", layer.rows())?),
        )
    } else {
        (None, None)
    };
    let int8 = dtype == KvDtype::Int8;
    let scales = if dtype.quantized() && !per_row {
        Scales {
            k_scale: positive(env, cache, "kScale")?,
            v_scale: positive(env, cache, "vScale")?,
            k_zero_point: if int8 {
                zero_point(env, cache, "kZeroPoint")?
            } else {
                0
            },
            v_zero_point: if int8 {
                zero_point(env, cache, "vZeroPoint")?
            } else {
                0
            },
        }
    } else {
        // 16/32-bit caches are stored unscaled; per-row scales live beside.
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

    /// Writable pointers to one side's codes and per-row scales.
    ///
    /// # Safety
    /// The caller has checked that no other argument overlaps the cache.
    pub unsafe fn side_mut(&self, values: bool) -> JsResult<(CodesMut, Option<SharedMut<f32>>)> {
        let (array, scales, what) = if values {
            (self.values, self.value_scales, "cache.values")
        } else {
            (self.keys, self.key_scales, "cache.keys")
        };
        fn ptr<T: Element>(a: TypedArray, what: &str) -> JsResult<SharedMut<T>> {
            Ok(SharedMut(unsafe { a.slice_mut::<T>(what)? }.as_mut_ptr()))
        }
        let codes = match self.dtype {
            KvDtype::Fp32 => CodesMut::F32(ptr(array, what)?),
            KvDtype::Fp16 => CodesMut::F16(ptr(array, what)?),
            KvDtype::Bf16 => CodesMut::Bf16(ptr(array, what)?),
            KvDtype::Fp8E4m3 => CodesMut::E4m3(ptr(array, what)?),
            KvDtype::Fp8E5m2 => CodesMut::E5m2(ptr(array, what)?),
            KvDtype::Int8 => CodesMut::I8(ptr(array, what)?),
        };
        Ok((
            codes,
            scales
                .map(|a| ptr::<f32>(a, "cache row scales"))
                .transpose()?,
        ))
    }
}
