//! The C-level call entry of `CompiledCode`: CPython's vectorcall protocol (PEP 590).
//!
//! A pyclass is otherwise called through `tp_call`, which makes CPython pack the positional
//! arguments into a tuple and PyO3 unpack them again. With vectorcall the arguments arrive
//! as a C array: a call with exactly the function's positional parameters binds its frame
//! straight from that array, and the tuple is only built when a path needs one (eager
//! fallback, a miss). Any other call shape builds the tuple and dict and takes `__call__`.
//!
//! The type's `tp_vectorcall_offset` points at the `vectorcall` field of every instance
//! (found once at module init).

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::impl_::trampoline::{fastcall_cfunction_with_keywords, MethodDef};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::runtime::CompiledCode;

/// How a call's arguments were given.
pub(crate) enum CallArgs<'a, 'py> {
    /// A tuple and optional keyword dict (`tp_call`, or a call shape the fast path skips).
    Given(&'a Bound<'py, PyTuple>, Option<&'a Bound<'py, PyDict>>),
    /// Positional arguments only, as borrowed pointers (a vectorcall).
    Vector(&'a [*mut ffi::PyObject]),
}

impl<'py> CallArgs<'_, 'py> {
    /// Call `f` with these arguments.
    pub fn call(&self, f: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            CallArgs::Given(a, k) => f.call(*a, *k),
            CallArgs::Vector(v) => {
                let py = f.py();
                // SAFETY: `v` holds borrowed references valid for the duration of the call
                // (the caller's argument array); the result is new or NULL with an error set.
                unsafe {
                    let r = ffi::PyObject_Vectorcall(
                        f.as_ptr(),
                        v.as_ptr(),
                        v.len(),
                        std::ptr::null_mut(),
                    );
                    Bound::from_owned_ptr_or_err(py, r)
                }
            }
        }
    }
}

/// A tuple of borrowed references (new references are taken for it).
///
/// # Safety
/// Every pointer is a valid object reference for the duration of the call.
pub(crate) unsafe fn tuple_of<'py>(
    py: Python<'py>,
    items: &[*mut ffi::PyObject],
) -> PyResult<Bound<'py, PyTuple>> {
    // SAFETY: a fresh tuple of the right length, each slot filled once with a new reference.
    unsafe {
        let t = ffi::PyTuple_New(items.len() as ffi::Py_ssize_t);
        if t.is_null() {
            return Err(PyErr::fetch(py));
        }
        for (i, p) in items.iter().enumerate() {
            ffi::Py_INCREF(*p);
            ffi::PyTuple_SET_ITEM(t, i as ffi::Py_ssize_t, *p);
        }
        Ok(Bound::from_owned_ptr(py, t).cast_into_unchecked::<PyTuple>())
    }
}

/// `tp_vectorcall` of `CompiledCode`: PyO3's fastcall trampoline (it marks the thread
/// attached for PyO3 and turns a panic into a Python exception) around [`body`].
unsafe extern "C" fn compiled_vectorcall(
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this attached, with the arguments `body` expects.
    unsafe {
        fastcall_cfunction_with_keywords::<Body>(callable, args, nargsf as ffi::Py_ssize_t, kwnames)
    }
}

struct Body;

impl MethodDef<fastcall_cfunction_with_keywords::Func> for Body {
    const METH: fastcall_cfunction_with_keywords::Func = body;
}

/// A call of a `CompiledCode`: exactly its positional parameters go straight to the frame;
/// any other shape is packed into a tuple and dict for `__call__`.
unsafe fn body(
    py: Python<'_>,
    callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: CPython passes the callable (an instance of this type) and an array of
    // `nargs + len(kwnames)` borrowed references; kwnames is NULL or a tuple of str.
    unsafe {
        let slf = Bound::from_borrowed_ptr(py, callable).cast_into_unchecked::<CompiledCode>();
        let nargs = ffi::PyVectorcall_NARGS(nargsf as usize) as usize;
        let nkw = if kwnames.is_null() {
            0
        } else {
            ffi::PyTuple_GET_SIZE(kwnames) as usize
        };
        let all: &[*mut ffi::PyObject] = if nargs + nkw == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(args, nargs + nkw)
        };
        let cc = slf.get();
        if nkw == 0 && cc.takes_positional(nargs) {
            return cc.call_vector(py, &all[..nargs]).map(Py::into_ptr);
        }
        let pos = tuple_of(py, &all[..nargs])?;
        let kw = if nkw == 0 {
            None
        } else {
            let d = PyDict::new(py);
            let names = Bound::from_borrowed_ptr(py, kwnames).cast_into_unchecked::<PyTuple>();
            for (name, p) in names.iter().zip(&all[nargs..]) {
                d.set_item(name, Bound::from_borrowed_ptr(py, *p))?;
            }
            Some(d)
        };
        cc.__call__(py, &pos, kw.as_ref()).map(Py::into_ptr)
    }
}

/// The value every instance stores in its `vectorcall` field.
pub(crate) const VECTORCALL: ffi::vectorcallfunc = compiled_vectorcall;

/// Make the `CompiledCode` type vectorcall-able: its instances' `vectorcall` field sits at
/// `offset` bytes from the object start (measured on `sample`, an instance).
pub(crate) fn enable(py: Python<'_>, sample: &Bound<'_, CompiledCode>) -> PyResult<()> {
    let field = sample.get().vectorcall_field() as usize;
    let base = sample.as_ptr() as usize;
    let ty = py.get_type::<CompiledCode>();
    let size = {
        // SAFETY: a type object; tp_basicsize is a plain field.
        unsafe { (*ty.as_type_ptr()).tp_basicsize as usize }
    };
    let offset = field.wrapping_sub(base);
    if field < base || offset + std::mem::size_of::<ffi::vectorcallfunc>() > size {
        return Err(PyRuntimeError::new_err(
            "ferrodyn internal: CompiledCode's vectorcall field lies outside the object",
        ));
    }
    // SAFETY: the type is ready and ours; every instance initialises the field at this
    // offset (`CompiledCode::create`), and `tp_call` stays for callers that use it.
    unsafe {
        let tp = ty.as_type_ptr();
        (*tp).tp_vectorcall_offset = offset as ffi::Py_ssize_t;
        (*tp).tp_flags |= ffi::Py_TPFLAGS_HAVE_VECTORCALL;
    }
    Ok(())
}
