//! Raw Node-API declarations, written by hand from `js_native_api.h`.
//!
//! Only the functions the addon calls are declared. The symbols stay
//! undefined in the shared library and are resolved by the host process
//! (deno or node) at load time. Safe wrappers live in `napi.rs`.

use std::ffi::{c_char, c_void};

/// Opaque `napi_env__`.
#[repr(C)]
pub struct EnvOpaque {
    _private: [u8; 0],
}

/// Opaque `napi_value__`.
#[repr(C)]
pub struct ValueOpaque {
    _private: [u8; 0],
}

/// Opaque `napi_callback_info__`.
#[repr(C)]
pub struct CallbackInfoOpaque {
    _private: [u8; 0],
}

/// `napi_env`: the JavaScript environment of one call.
pub type Env = *mut EnvOpaque;
/// `napi_value`: a handle to a JavaScript value, valid for one callback scope.
pub type Value = *mut ValueOpaque;
/// `napi_callback_info`: the arguments and receiver of one call.
pub type CallbackInfo = *mut CallbackInfoOpaque;
/// `napi_status`: 0 (`napi_ok`) on success.
pub type Status = i32;
/// `napi_typedarray_type`, a C enum.
pub type TypedArrayType = i32;
/// `napi_callback`: a native function callable from JavaScript.
pub type Callback = Option<unsafe extern "C" fn(env: Env, info: CallbackInfo) -> Value>;

/// `napi_ok`.
pub const STATUS_OK: Status = 0;
/// `napi_int8_array`.
pub const INT8_ARRAY: TypedArrayType = 0;
/// `napi_uint8_array`.
pub const UINT8_ARRAY: TypedArrayType = 1;
/// `napi_uint16_array`.
pub const UINT16_ARRAY: TypedArrayType = 4;
/// `napi_int32_array`.
pub const INT32_ARRAY: TypedArrayType = 5;
/// `napi_float32_array`.
pub const FLOAT32_ARRAY: TypedArrayType = 7;

/// `napi_valuetype`, a C enum.
pub type ValueType = i32;
/// `napi_undefined`.
pub const UNDEFINED: ValueType = 0;
/// `napi_null`.
pub const NULL: ValueType = 1;
/// `napi_number`.
pub const NUMBER: ValueType = 3;
/// `napi_string`.
pub const STRING: ValueType = 4;
/// `napi_object`.
pub const OBJECT: ValueType = 6;

extern "C" {
    pub fn napi_create_function(
        env: Env,
        utf8name: *const c_char,
        length: usize,
        cb: Callback,
        data: *mut c_void,
        result: *mut Value,
    ) -> Status;
    pub fn napi_set_named_property(
        env: Env,
        object: Value,
        utf8name: *const c_char,
        value: Value,
    ) -> Status;
    pub fn napi_create_uint32(env: Env, value: u32, result: *mut Value) -> Status;
    pub fn napi_create_double(env: Env, value: f64, result: *mut Value) -> Status;
    pub fn napi_create_string_utf8(
        env: Env,
        str: *const c_char,
        length: usize,
        result: *mut Value,
    ) -> Status;
    pub fn napi_get_null(env: Env, result: *mut Value) -> Status;
    pub fn napi_get_undefined(env: Env, result: *mut Value) -> Status;
    pub fn napi_get_boolean(env: Env, value: bool, result: *mut Value) -> Status;
    pub fn napi_typeof(env: Env, value: Value, result: *mut ValueType) -> Status;
    pub fn napi_get_named_property(
        env: Env,
        object: Value,
        utf8name: *const c_char,
        result: *mut Value,
    ) -> Status;
    pub fn napi_get_value_double(env: Env, value: Value, result: *mut f64) -> Status;
    pub fn napi_get_value_string_utf8(
        env: Env,
        value: Value,
        buf: *mut c_char,
        bufsize: usize,
        result: *mut usize,
    ) -> Status;
    pub fn napi_get_cb_info(
        env: Env,
        cbinfo: CallbackInfo,
        argc: *mut usize,
        argv: *mut Value,
        this_arg: *mut Value,
        data: *mut *mut c_void,
    ) -> Status;
    pub fn napi_is_typedarray(env: Env, value: Value, result: *mut bool) -> Status;
    pub fn napi_get_typedarray_info(
        env: Env,
        typedarray: Value,
        kind: *mut TypedArrayType,
        length: *mut usize,
        data: *mut *mut c_void,
        arraybuffer: *mut Value,
        byte_offset: *mut usize,
    ) -> Status;
    pub fn napi_create_object(env: Env, result: *mut Value) -> Status;
    pub fn napi_create_array_with_length(env: Env, length: usize, result: *mut Value) -> Status;
    pub fn napi_set_element(env: Env, object: Value, index: u32, value: Value) -> Status;
    pub fn napi_throw_error(env: Env, code: *const c_char, msg: *const c_char) -> Status;
    pub fn napi_throw_type_error(env: Env, code: *const c_char, msg: *const c_char) -> Status;
    pub fn napi_is_exception_pending(env: Env, result: *mut bool) -> Status;
}
