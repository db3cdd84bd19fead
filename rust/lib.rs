//! ferrodyn's Rust core: bytecode layer, symbolic interpreter, function-spec cache,
//! guard tree and cache. The Python boundary (the `ferrodyn._core` extension module) is
//! `py_api.rs`; nothing else registers Python-visible names.

pub mod artifact;
pub mod bytecode;
pub mod caches;
pub mod frame_hook;
pub mod glue;
pub mod guards;
pub mod interp;
pub mod py_api;
pub mod runtime;
pub mod side_effects;
pub mod spec_cache;
pub mod vectorcall;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py_api::register(m)
}

/// `py.import(name)` that finds an imported module in `sys.modules` first. `PyImport_Import`
/// looks `__import__` up in the *calling frame's* builtins, which fails inside frames whose
/// globals carry an empty `__builtins__` (namedtuple's generated `__new__`, glue running in
/// such a frame's globals); ferrodyn imports its own and torch's modules, already loaded.
pub trait ImportCached<'py> {
    fn import_cached(self, name: &str) -> PyResult<Bound<'py, PyModule>>;
}

impl<'py> ImportCached<'py> for Python<'py> {
    fn import_cached(self, name: &str) -> PyResult<Bound<'py, PyModule>> {
        let key = pyo3::types::PyString::new(self, name);
        // SAFETY: GIL held; PyImport_GetModule returns a new reference or NULL (with an
        // exception set only on a real error).
        let m = unsafe { pyo3::ffi::PyImport_GetModule(key.as_ptr()) };
        if m.is_null() {
            if let Some(e) = PyErr::take(self) {
                return Err(e);
            }
            return self.import(name);
        }
        // SAFETY: `m` is a new reference.
        let m = unsafe { Bound::from_owned_ptr(self, m) };
        match m.cast_into::<PyModule>() {
            Ok(m) => Ok(m),
            Err(_) => self.import(name),
        }
    }
}
