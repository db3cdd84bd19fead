//! ferrodyn's Rust core: bytecode layer, symbolic interpreter, function-spec cache,
//! guard tree and cache. The Python boundary (the `ferrodyn._core` extension module) is
//! `py_api.rs`; nothing else registers Python-visible names.

pub mod bytecode;
pub mod caches;
pub mod glue;
pub mod guards;
pub mod interp;
pub mod py_api;
pub mod runtime;
pub mod side_effects;
pub mod spec_cache;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py_api::register(m)
}
