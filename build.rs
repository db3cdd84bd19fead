//! Exposes pyo3's interpreter-version cfgs (`Py_3_12`, `Py_3_13`, ...) to this crate, so the
//! bytecode layer can pick `PyVersion::CURRENT` and the frame hook can mirror each version's
//! frame layout.
fn main() {
    pyo3_build_config::use_pyo3_cfgs();
}
