//! kvplug_native: the native target of @kvplug/attention, loaded as a
//! Node-API addon by deno or node. No dependencies: Node-API is declared by
//! hand in `napi_sys.rs`.

mod bandwidth;
mod cpu_features;
mod exports;
mod exports_fa3;
mod exports_flashinfer;
mod exports_ops;
mod exports_xformers;
mod fa3;
mod flashinfer;
mod formats;
mod huge_pages;
mod kernel_path;
mod napi;
mod napi_args;
mod napi_sys;
mod ops;
mod simd;
mod sum_f32;
mod thread_pool;
mod xformers;
mod xformers_args;

/// The ABI between this addon and native/mod.ts. Bump it whenever an export
/// is removed or changes meaning; native/mod.ts refuses any other number.
pub const ADDON_ABI_VERSION: u32 = 1;

/// Node-API entry point: called once per environment that loads the addon.
///
/// # Safety
/// Called by the host with a live `env` and its `exports` object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(
    env: napi_sys::Env,
    exports: napi_sys::Value,
) -> napi_sys::Value {
    let env = napi::Env::from_raw(env);
    if let Err(error) = exports::register(env, exports) {
        env.throw(error);
    }
    exports
}
