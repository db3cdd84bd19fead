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

/// Turn the PEP 523 frame hook on or off (`ferrodyn.config.frame_hook`).
#[pyfunction]
fn set_frame_hook(enabled: bool) {
    crate::frame_hook::set_enabled(enabled);
}

/// Whether the frame hook is installed in the interpreter now.
#[pyfunction]
fn frame_hook_installed() -> bool {
    crate::frame_hook::installed()
}

/// How the frame hook treats frames of this code: "trace", "skip", "quiet", "skip-wrapped".
#[pyfunction]
fn frame_hook_rule(code: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    if !code.is_instance_of::<pyo3::types::PyCode>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "frame_hook_rule: expected a code object, got {}",
            code.get_type().name()?
        )));
    }
    crate::frame_hook::rule_of(code)
}

/// Called once by `ferrodyn/__init__.py` after torch is imported.
#[pyfunction]
fn init_torch(py: Python<'_>) -> PyResult<bool> {
    let dir = crate::guards::torch_lib_dir(py)?;
    crate::guards::init_native_tensor_reader(py, &dir)
}

/// Measure where instances keep their vectorcall pointer on a throwaway instance, and
/// switch the type to vectorcall.
fn enable_vectorcall(py: Python<'_>) -> PyResult<()> {
    let f = py.eval(c"lambda: None", None, None)?;
    let sample = Bound::new(py, CompiledCode::create(py, f.clone(), f, false, 1)?)?;
    crate::vectorcall::enable(py, &sample)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    for (name, value) in kinds::ALL {
        m.add(*name, *value)?;
    }
    m.add_class::<CompiledCode>()?;
    enable_vectorcall(m.py())?;
    m.add_function(wrap_pyfunction!(reset, m)?)?;
    m.add_function(wrap_pyfunction!(native_tensor_reader_active, m)?)?;
    m.add_function(wrap_pyfunction!(native_tensor_reader_note, m)?)?;
    m.add_function(wrap_pyfunction!(init_torch, m)?)?;
    m.add_function(wrap_pyfunction!(global_state_readers, m)?)?;
    m.add_function(wrap_pyfunction!(set_frame_hook, m)?)?;
    m.add_function(wrap_pyfunction!(frame_hook_rule, m)?)?;
    m.add_function(wrap_pyfunction!(frame_hook_installed, m)?)?;
    Ok(())
}
