//! The functions the addon exports to JavaScript. Each one converts its
//! arguments, calls a plain Rust function and converts the result.

use crate::cpu_features::CpuFeatures;
use crate::kernel_path::{self, SelectionStatus};
use crate::napi::{callback, Env, JsResult};
use crate::napi_sys as sys;
use crate::sum_f32::sum_f32;
use crate::ADDON_ABI_VERSION;

/// `abiVersion(): number`.
unsafe extern "C" fn abi_version(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "abiVersion", |env, []| {
        env.uint32(ADDON_ABI_VERSION)
    })
}

/// `cpuFeatures(): string[]`.
unsafe extern "C" fn cpu_features(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "cpuFeatures", |env, []| {
        env.string_array(&CpuFeatures::detect().names())
    })
}

/// `kernelPath(): string`, reading `KVPLUG_NATIVE_PATH` on each call.
unsafe extern "C" fn kernel_path(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "kernelPath", |env, []| {
        env.string(kernel_path::select_from_env().path.name())
    })
}

/// `kernelSelection(): { path, best, requested, status, reason }`.
unsafe extern "C" fn kernel_selection(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "kernelSelection", |env, []| {
        let selection = kernel_path::select_from_env();
        let status = match selection.status {
            SelectionStatus::Auto => "auto",
            SelectionStatus::Override => "override",
            SelectionStatus::Fallback => "fallback",
        };
        let requested = match &selection.requested {
            Some(text) => env.string(text)?,
            None => env.null()?,
        };
        let object = env.object()?;
        env.set(object, "path", env.string(selection.path.name())?)?;
        env.set(object, "best", env.string(selection.best.name())?)?;
        env.set(object, "requested", requested)?;
        env.set(object, "status", env.string(status)?)?;
        env.set(object, "reason", env.string(&selection.reason)?)?;
        Ok(object)
    })
}

/// `threads(): number`.
unsafe extern "C" fn threads(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<0>(env, info, "threads", |env, []| {
        let count = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        env.uint32(u32::try_from(count).unwrap_or(u32::MAX))
    })
}

/// `sumF32(a: Float32Array): number`, reading `a` in place.
unsafe extern "C" fn sum_f32_js(env: sys::Env, info: sys::CallbackInfo) -> sys::Value {
    callback::<1>(env, info, "sumF32", |env, [values]| {
        let values = env.f32_slice(values, "sumF32() argument a")?;
        env.double(sum_f32(values))
    })
}

/// Adds every export to `exports`.
pub fn register(env: Env<'_>, exports: sys::Value) -> JsResult<()> {
    env.export(exports, "abiVersion", Some(abi_version))?;
    env.export(exports, "cpuFeatures", Some(cpu_features))?;
    env.export(exports, "kernelPath", Some(kernel_path))?;
    env.export(exports, "kernelSelection", Some(kernel_selection))?;
    env.export(exports, "threads", Some(threads))?;
    env.export(exports, "sumF32", Some(sum_f32_js))?;
    env.export(
        exports,
        "streamRead",
        Some(crate::bandwidth::stream_read_js),
    )?;
    crate::exports_ops::register(env, exports)?;
    crate::exports_flashinfer::register(env, exports)?;
    crate::exports_fa3::register(env, exports)?;
    crate::exports_xformers::register(env, exports)
}
