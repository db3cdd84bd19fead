//! The one place where Rust items become Python-visible (`ferrodyn._core`).
//! Keep `pysrc/ferrodyn/_core.pyi` in sync with what is registered here.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
