//! Reading arguments: typed arrays of every element type the kernels use,
//! borrowed in place (no copies), and named properties of plain objects.
//!
//! Mutable borrows are `unsafe`: JavaScript may pass two views of one
//! buffer, so a caller that writes must first prove, with
//! [`check_disjoint`], that what it writes overlaps nothing else it reads.

use crate::napi::{check, Env, JsError, JsResult};
use crate::napi_sys as sys;
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// An element type a typed array can hold, with its JavaScript class.
pub trait Element: Copy {
    const KIND: sys::TypedArrayType;
    const NAME: &'static str;
}

macro_rules! element {
    ($t:ty, $kind:expr, $name:literal) => {
        impl Element for $t {
            const KIND: sys::TypedArrayType = $kind;
            const NAME: &'static str = $name;
        }
    };
}
element!(f32, sys::FLOAT32_ARRAY, "Float32Array");
element!(i32, sys::INT32_ARRAY, "Int32Array");
element!(u16, sys::UINT16_ARRAY, "Uint16Array");
element!(u8, sys::UINT8_ARRAY, "Uint8Array");
element!(i8, sys::INT8_ARRAY, "Int8Array");

/// A typed array's elements, borrowed for the scope `'a` of one call.
#[derive(Clone, Copy)]
pub struct TypedArray<'a> {
    kind: sys::TypedArrayType,
    data: *mut c_void,
    length: usize,
    bytes: usize,
    scope: PhantomData<&'a ()>,
}

impl<'a> TypedArray<'a> {
    /// Elements in the view (not bytes).
    pub fn len(&self) -> usize {
        self.length
    }

    /// True when the view holds elements of type `T`.
    pub fn is<T: Element>(&self) -> bool {
        self.kind == T::KIND
    }

    fn checked<T: Element>(&self, what: &str) -> JsResult<*mut T> {
        if !self.is::<T>() {
            return Err(JsError::TypeError(format!("{what} must be a {}", T::NAME)));
        }
        if self.length == 0 || self.data.is_null() {
            return Ok(NonNull::<T>::dangling().as_ptr());
        }
        // Typed-array offsets are multiples of the element size: aligned.
        Ok(self.data.cast::<T>())
    }

    /// The elements as `&[T]`; a `TypeError` naming `what` for another class.
    pub fn slice<T: Element>(&self, what: &str) -> JsResult<&'a [T]> {
        let data = self.checked::<T>(what)?;
        Ok(unsafe { std::slice::from_raw_parts(data, self.length) })
    }

    /// The elements as `&mut [T]`.
    ///
    /// # Safety
    /// No other borrow of these bytes may be alive while the result is: call
    /// [`check_disjoint`] with every other array of the call first.
    pub unsafe fn slice_mut<T: Element>(&self, what: &str) -> JsResult<&'a mut [T]> {
        let data = self.checked::<T>(what)?;
        Ok(std::slice::from_raw_parts_mut(data, self.length))
    }

    /// The byte range [start, end) the view covers.
    pub fn span(&self) -> (usize, usize) {
        let start = self.data as usize;
        (start, start + self.bytes)
    }
}

/// Fails with a `TypeError` when an array the call writes (`all[w]` for
/// each `w` in `writes`) shares bytes with any other array of the call, e.g.
/// `out` passed as a view over `query`'s buffer.
pub fn check_disjoint(all: &[(&str, TypedArray)], writes: &[usize]) -> JsResult<()> {
    for &w in writes {
        let (name, written) = all[w];
        let (a0, a1) = written.span();
        for (j, (other, array)) in all.iter().enumerate() {
            let (b0, b1) = array.span();
            let empty = a0 == a1 || b0 == b1;
            if j != w && !empty && a0 < b1 && b0 < a1 {
                return Err(JsError::TypeError(format!(
                    "{name} must not share memory with {other}: pass a separate buffer"
                )));
            }
        }
    }
    Ok(())
}

impl<'a> Env<'a> {
    /// The `napi_valuetype` of a value.
    pub fn value_type(self, value: sys::Value) -> JsResult<sys::ValueType> {
        let mut kind = -1;
        check(
            unsafe { sys::napi_typeof(self.raw(), value, &mut kind) },
            "napi_typeof",
        )?;
        Ok(kind)
    }

    /// Borrows any typed array; a `TypeError` naming `what` otherwise.
    pub fn typed_array(self, value: sys::Value, what: &str) -> JsResult<TypedArray<'a>> {
        let mut is_typed = false;
        check(
            unsafe { sys::napi_is_typedarray(self.raw(), value, &mut is_typed) },
            "napi_is_typedarray",
        )?;
        if !is_typed {
            return Err(JsError::TypeError(format!("{what} must be a typed array")));
        }
        let (mut kind, mut length, mut data) = (-1, 0usize, ptr::null_mut());
        let status = unsafe {
            sys::napi_get_typedarray_info(
                self.raw(),
                value,
                &mut kind,
                &mut length,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(status, "napi_get_typedarray_info")?;
        let width = match kind {
            sys::INT8_ARRAY | sys::UINT8_ARRAY | 2 => 1,
            3 | sys::UINT16_ARRAY => 2,
            8..=10 => 8,
            _ => 4,
        };
        Ok(TypedArray {
            kind,
            data,
            length,
            bytes: length * width,
            scope: PhantomData,
        })
    }

    /// `object[name]`; a `TypeError` when `object` is not an object.
    pub fn property(self, object: sys::Value, name: &str, what: &str) -> JsResult<sys::Value> {
        if self.value_type(object)? != sys::OBJECT {
            return Err(JsError::TypeError(format!("{what} must be an object")));
        }
        let key = CString::new(name).unwrap_or_default();
        let mut out = ptr::null_mut();
        let status =
            unsafe { sys::napi_get_named_property(self.raw(), object, key.as_ptr(), &mut out) };
        check(status, "napi_get_named_property")?;
        Ok(out)
    }

    /// A number argument; a `TypeError` naming `what` otherwise.
    pub fn number(self, value: sys::Value, what: &str) -> JsResult<f64> {
        if self.value_type(value)? != sys::NUMBER {
            return Err(JsError::TypeError(format!("{what} must be a number")));
        }
        let mut out = 0.0;
        check(
            unsafe { sys::napi_get_value_double(self.raw(), value, &mut out) },
            "napi_get_value_double",
        )?;
        Ok(out)
    }

    /// A string argument (UTF-8, up to 255 bytes: names, not text).
    pub fn short_string(self, value: sys::Value, what: &str) -> JsResult<String> {
        if self.value_type(value)? != sys::STRING {
            return Err(JsError::TypeError(format!("{what} must be a string")));
        }
        let mut buffer = [0u8; 256];
        let mut length = 0usize;
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                self.raw(),
                value,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut length,
            )
        };
        check(status, "napi_get_value_string_utf8")?;
        Ok(String::from_utf8_lossy(&buffer[..length]).into_owned())
    }

    /// True for `null` and `undefined`.
    pub fn is_nullish(self, value: sys::Value) -> JsResult<bool> {
        let kind = self.value_type(value)?;
        Ok(kind == sys::NULL || kind == sys::UNDEFINED)
    }
}
