//! Small safe helpers over the raw declarations in `napi_sys.rs`.
//!
//! An [`Env`] is only handed out inside [`callback`] or module registration,
//! and its lifetime `'a` is that scope: values and borrowed typed-array data
//! cannot outlive the JavaScript call that produced them.

use crate::napi_sys as sys;
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// An error to throw into JavaScript.
#[derive(Debug)]
pub enum JsError {
    /// Thrown as `Error`.
    Error(String),
    /// Thrown as `TypeError`.
    TypeError(String),
}

/// The result of a helper or callback body.
pub type JsResult<T> = Result<T, JsError>;

/// The JavaScript environment of one call, valid for the scope `'a`.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    raw: sys::Env,
    scope: PhantomData<&'a ()>,
}

/// Turns a Node-API status into a result naming the call.
pub(crate) fn check(status: sys::Status, call: &str) -> JsResult<()> {
    if status == sys::STATUS_OK {
        Ok(())
    } else {
        Err(JsError::Error(format!(
            "Node-API call {call} failed with status {status}"
        )))
    }
}

fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

impl<'a> Env<'a> {
    /// Wraps a raw env. Safety: `raw` must be live for the whole scope `'a`.
    pub unsafe fn from_raw(raw: sys::Env) -> Self {
        Env {
            raw,
            scope: PhantomData,
        }
    }

    /// The raw handle, for helpers in other modules (`napi_args.rs`).
    pub(crate) fn raw(self) -> sys::Env {
        self.raw
    }

    /// JavaScript `undefined`: what a function without a result returns.
    pub fn undefined(self) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_get_undefined(self.raw, &mut out) },
            "napi_get_undefined",
        )?;
        Ok(out)
    }

    /// A JavaScript boolean.
    pub fn boolean(self, value: bool) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_get_boolean(self.raw, value, &mut out) },
            "napi_get_boolean",
        )?;
        Ok(out)
    }

    /// A JavaScript number from a `u32`.
    pub fn uint32(self, value: u32) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_create_uint32(self.raw, value, &mut out) },
            "napi_create_uint32",
        )?;
        Ok(out)
    }

    /// A JavaScript number from an `f64`.
    pub fn double(self, value: f64) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_create_double(self.raw, value, &mut out) },
            "napi_create_double",
        )?;
        Ok(out)
    }

    /// A JavaScript string (copied from UTF-8).
    pub fn string(self, text: &str) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        let status = unsafe {
            sys::napi_create_string_utf8(self.raw, text.as_ptr().cast(), text.len(), &mut out)
        };
        check(status, "napi_create_string_utf8")?;
        Ok(out)
    }

    /// JavaScript `null`.
    pub fn null(self) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_get_null(self.raw, &mut out) },
            "napi_get_null",
        )?;
        Ok(out)
    }

    /// An empty JavaScript object.
    pub fn object(self) -> JsResult<sys::Value> {
        let mut out = ptr::null_mut();
        check(
            unsafe { sys::napi_create_object(self.raw, &mut out) },
            "napi_create_object",
        )?;
        Ok(out)
    }

    /// `object[name] = value`.
    pub fn set(self, object: sys::Value, name: &str, value: sys::Value) -> JsResult<()> {
        let name = c_string(name);
        let status =
            unsafe { sys::napi_set_named_property(self.raw, object, name.as_ptr(), value) };
        check(status, "napi_set_named_property")
    }

    /// A JavaScript array of strings.
    pub fn string_array(self, items: &[&str]) -> JsResult<sys::Value> {
        let mut array = ptr::null_mut();
        let status =
            unsafe { sys::napi_create_array_with_length(self.raw, items.len(), &mut array) };
        check(status, "napi_create_array_with_length")?;
        for (index, item) in items.iter().enumerate() {
            let value = self.string(item)?;
            let status = unsafe { sys::napi_set_element(self.raw, array, index as u32, value) };
            check(status, "napi_set_element")?;
        }
        Ok(array)
    }

    /// Borrows the elements of a `Float32Array` without copying.
    ///
    /// Node-API returns the data pointer already advanced by `byteOffset`, so
    /// a subarray yields exactly its own elements. The borrow ends with the
    /// call; JavaScript cannot run (and so cannot write the buffer) meanwhile.
    pub fn f32_slice(self, value: sys::Value, what: &str) -> JsResult<&'a [f32]> {
        let mut is_typed = false;
        check(
            unsafe { sys::napi_is_typedarray(self.raw, value, &mut is_typed) },
            "napi_is_typedarray",
        )?;
        let mut kind = -1;
        let mut length = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        if is_typed {
            let status = unsafe {
                sys::napi_get_typedarray_info(
                    self.raw,
                    value,
                    &mut kind,
                    &mut length,
                    &mut data,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
            check(status, "napi_get_typedarray_info")?;
        }
        if kind != sys::FLOAT32_ARRAY {
            return Err(JsError::TypeError(format!("{what} must be a Float32Array")));
        }
        if length == 0 || data.is_null() {
            return Ok(&[]);
        }
        // Float32Array offsets are multiples of 4, so `data` is aligned for f32.
        Ok(unsafe { std::slice::from_raw_parts(data.cast::<f32>(), length) })
    }

    /// Adds `name` as a function property of `exports`.
    pub fn export(self, exports: sys::Value, name: &str, cb: sys::Callback) -> JsResult<()> {
        let mut function = ptr::null_mut();
        let status = unsafe {
            sys::napi_create_function(
                self.raw,
                name.as_ptr().cast(),
                name.len(),
                cb,
                ptr::null_mut(),
                &mut function,
            )
        };
        check(status, "napi_create_function")?;
        self.set(exports, name, function)
    }

    /// Throws `error` unless an exception is already pending.
    pub fn throw(self, error: JsError) {
        let mut pending = false;
        unsafe { sys::napi_is_exception_pending(self.raw, &mut pending) };
        if pending {
            return;
        }
        let code = c_string("KVPLUG_NATIVE");
        match error {
            JsError::Error(message) => unsafe {
                sys::napi_throw_error(self.raw, code.as_ptr(), c_string(&message).as_ptr());
            },
            JsError::TypeError(message) => unsafe {
                sys::napi_throw_type_error(self.raw, code.as_ptr(), c_string(&message).as_ptr());
            },
        }
    }
}

/// Runs the body of an exported function that takes exactly `N` arguments.
///
/// Too few arguments throw a `TypeError`; an `Err` from `body` is thrown; a
/// panic is caught (it must not unwind into the host) and thrown as `Error`.
///
/// Safety: `raw_env` and `info` must be the ones Node-API passed to the callback.
pub unsafe fn callback<const N: usize>(
    raw_env: sys::Env,
    info: sys::CallbackInfo,
    name: &str,
    body: impl for<'a> FnOnce(Env<'a>, [sys::Value; N]) -> JsResult<sys::Value>,
) -> sys::Value {
    let env = Env::from_raw(raw_env);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut argv = [ptr::null_mut(); N];
        let mut argc = N;
        let status = sys::napi_get_cb_info(
            raw_env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        check(status, "napi_get_cb_info")?;
        if argc < N {
            return Err(JsError::TypeError(format!(
                "{name}() expects {N} argument(s), got {argc}"
            )));
        }
        body(env, argv)
    }));
    match outcome {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            env.throw(error);
            ptr::null_mut()
        }
        Err(payload) => {
            let detail = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            env.throw(JsError::Error(format!(
                "kvplug_native panicked in {name}(): {detail}"
            )));
            ptr::null_mut()
        }
    }
}
