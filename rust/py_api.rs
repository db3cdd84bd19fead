//! The one place where Rust items become Python-visible (`ferrodyn._core`).
//! Keep `pysrc/ferrodyn/_core.pyi` in sync with what is registered here.

use pyo3::prelude::*;

use crate::caches::reset;
use crate::interp::kinds;
use crate::runtime::CompiledCode;

#[pyfunction]
fn native_tensor_reader_active() -> bool {
    crate::guards::native_tensor_reader_active()
}

/// Why the native tensor reader is on or off, and whether TensorImpl fields were located.
#[pyfunction]
fn native_tensor_reader_note() -> String {
    crate::guards::native_tensor_reader_note()
}

/// Each global-state field and how it is read ("per-thread bit", "native call", "python"…).
#[pyfunction]
fn global_state_readers(py: Python<'_>) -> PyResult<Vec<(String, &'static str)>> {
    crate::guards::global_state_readers(py)
}

/// Called once by `ferrodyn/__init__.py` after torch is imported.
#[pyfunction]
fn init_torch(py: Python<'_>) -> PyResult<bool> {
    let dir = crate::guards::torch_lib_dir(py)?;
    crate::guards::init_native_tensor_reader(py, &dir)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    for (name, value) in kinds::ALL {
        m.add(*name, *value)?;
    }
    m.add_class::<CompiledCode>()?;
    m.add_function(wrap_pyfunction!(reset, m)?)?;
    m.add_function(wrap_pyfunction!(native_tensor_reader_active, m)?)?;
    m.add_function(wrap_pyfunction!(native_tensor_reader_note, m)?)?;
    m.add_function(wrap_pyfunction!(init_torch, m)?)?;
    m.add_function(wrap_pyfunction!(global_state_readers, m)?)?;
    Ok(())
}
