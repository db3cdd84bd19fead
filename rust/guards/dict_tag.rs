//! Reading a dict's version tag (`PyDictObject.ma_version_tag`, CPython 3.6-3.13) for
//! guard-subtree skipping.
//!
//! CPython bumps the tag from one interpreter-wide counter on every creation and every
//! mutation of any dict, so an unchanged tag means "the same dict object, not mutated
//! since". pyo3's `ffi::PyDictObject` exposes the field only for some interpreter
//! versions (cfg-gated), so this crate reads it through a `#[repr(C)]` mirror of the
//! struct's head, and [`dict_tags_supported`] validates the mirror at runtime (interpreter
//! version, `ma_used` agreeing with `len`, tags changing on mutation and differing between
//! dicts). Where validation fails, skipping is simply disabled.

use crate::ImportCached;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

/// The head of CPython's `PyDictObject` (3.6 to 3.13): object header, `ma_used`,
/// `ma_version_tag`, then the keys and (for a split-table dict) the values.
#[repr(C)]
struct DictHead {
    ob_base: ffi::PyObject,
    ma_used: ffi::Py_ssize_t,
    ma_version_tag: u64,
    _ma_keys: *mut std::ffi::c_void,
    ma_values: *mut std::ffi::c_void,
}

static SUPPORTED: PyOnceLock<bool> = PyOnceLock::new();

/// Whether dict version tags can be read on this interpreter (validated once).
pub fn dict_tags_supported(py: Python<'_>) -> bool {
    *SUPPORTED.get_or_init(py, || validate(py).unwrap_or(false))
}

fn validate(py: Python<'_>) -> PyResult<bool> {
    let version = py.version_info();
    if (version.major, version.minor) < (3, 6) || (version.major, version.minor) > (3, 13) {
        return Ok(false);
    }
    // Free-threaded builds: the skipping caches rely on the GIL serialising access.
    let sys = py.import_cached("sys")?;
    if let Ok(gil_enabled) = sys.call_method0("_is_gil_enabled") {
        if !gil_enabled.extract::<bool>()? {
            return Ok(false);
        }
    }
    let a = PyDict::new(py);
    let b = PyDict::new(py);
    // SAFETY: both are live exact dicts (just created) and the interpreter version was
    // checked above to be one whose PyDictObject starts with `DictHead`.
    let (ta0, tb0) = unsafe { (raw_tag(a.as_ptr()), raw_tag(b.as_ptr())) };
    a.set_item("k", 1)?;
    // SAFETY: as above.
    let (ta1, used1) = unsafe { (raw_tag(a.as_ptr()), raw_used(a.as_ptr())) };
    a.set_item("k", 2)?;
    a.set_item("j", 3)?;
    // SAFETY: as above.
    let (ta2, used2) = unsafe { (raw_tag(a.as_ptr()), raw_used(a.as_ptr())) };
    let ok = ta0 != 0
        && tb0 != 0
        && ta0 != tb0
        && ta1 != ta0
        && ta2 != ta1
        && used1 == 1
        && used2 == 2
        && a.len() == 2;
    Ok(ok)
}

/// # Safety
/// `dict` must point to a live exact `dict` on an interpreter validated by [`validate`].
unsafe fn raw_tag(dict: *mut ffi::PyObject) -> u64 {
    // SAFETY: the caller guarantees `dict` is a live PyDictObject whose head is DictHead.
    unsafe { (*(dict as *const DictHead)).ma_version_tag }
}

/// # Safety
/// As for [`raw_tag`].
unsafe fn raw_used(dict: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    // SAFETY: the caller guarantees `dict` is a live PyDictObject whose head is DictHead.
    unsafe { (*(dict as *const DictHead)).ma_used }
}

/// Whether a dict's tag may miss mutations: on 3.13 an instance `__dict__` built from an
/// object's inline values shares them with the object (a split-table dict, `ma_values`
/// set), and an attribute store through the object writes the shared values without
/// bumping the dict's tag. (3.12 moves the values into the dict when it is made, so every
/// store goes through the dict.)
///
/// # Safety
/// As for [`raw_tag`].
unsafe fn tag_may_miss_stores(dict: *mut ffi::PyObject) -> bool {
    // SAFETY: the caller guarantees `dict` is a live PyDictObject whose head is DictHead.
    cfg!(Py_3_13) && unsafe { !(*(dict as *const DictHead)).ma_values.is_null() }
}

/// The version tag of `v` if it is an exact dict and tags are supported (`supported` is
/// the cached result of [`dict_tags_supported`]); 0 ("unknown") otherwise, and for a dict
/// whose tag may miss stores (`tag_may_miss_stores`).
#[inline]
pub fn dict_tag(v: &Bound<'_, PyAny>, supported: bool) -> u64 {
    // SAFETY: PyDict_CheckExact only reads the type pointer of a live object.
    if supported && unsafe { ffi::PyDict_CheckExact(v.as_ptr()) } != 0 {
        // SAFETY: `v` is a live exact dict and `supported` says the mirror was validated.
        unsafe {
            if tag_may_miss_stores(v.as_ptr()) {
                0
            } else {
                raw_tag(v.as_ptr())
            }
        }
    } else {
        0
    }
}
