//! Test helpers: an interpreter that sees the project venv, and small builders.

use std::ffi::CStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::guards::{init_native_tensor_reader, torch_lib_dir, Guard, GuardTree, Source};

/// Runs `f` with the GIL, after putting the venv's site-packages on `sys.path`.
pub fn with_py<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    Python::attach(|py| {
        let venv = std::env::var("FERRODYN_VENV").unwrap_or_else(|_| {
            format!(
                "{}/.cache/ferrodyn-venv",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let v = py.version_info();
        let site = format!("{venv}/lib/python{}.{}/site-packages", v.major, v.minor);
        let sys = py.import("sys").unwrap();
        let path = sys.getattr("path").unwrap();
        if !path.contains(&site).unwrap() {
            path.call_method1("insert", (0, &site)).unwrap();
        }
        f(py)
    })
}

/// Imports torch and initialises the native reader; `false` (with a note) if torch is
/// not importable, so tensor tests can skip.
pub fn torch_ready(py: Python<'_>) -> bool {
    if let Err(e) = py.import("torch") {
        eprintln!("note: torch not importable, skipping tensor test: {e}");
        return false;
    }
    let dir = torch_lib_dir(py).unwrap();
    init_native_tensor_reader(py, &dir).unwrap();
    true
}

/// Runs `code` in a fresh namespace and returns it.
pub fn run<'py>(py: Python<'py>, code: &CStr) -> Bound<'py, PyDict> {
    let ns = PyDict::new(py);
    py.run(code, Some(&ns), Some(&ns)).unwrap();
    ns
}

pub fn get<'py>(ns: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    ns.get_item(name).unwrap().unwrap()
}

pub fn local(index: u32, name: &str) -> Arc<Source> {
    Arc::new(Source::Local {
        index,
        name: name.into(),
    })
}

pub fn attr(base: &Arc<Source>, name: &str) -> Arc<Source> {
    Arc::new(Source::Attr {
        base: base.clone(),
        name: name.into(),
    })
}

pub fn inst_dict(base: &Arc<Source>) -> Arc<Source> {
    Arc::new(Source::InstDict { base: base.clone() })
}

pub fn item(base: &Arc<Source>, key: &str) -> Arc<Source> {
    Arc::new(Source::DictItem {
        base: base.clone(),
        key: crate::guards::DictKey::Str(key.into()),
    })
}

pub fn global(name: &str) -> Arc<Source> {
    Arc::new(Source::Global { name: name.into() })
}

/// Empty globals and builtins dicts.
pub fn dicts(py: Python<'_>) -> (Bound<'_, PyDict>, Bound<'_, PyDict>) {
    (PyDict::new(py), PyDict::new(py))
}

/// Checks one guard on one value (as local `x`).
pub fn check1(py: Python<'_>, guard: Guard, v: &Bound<'_, PyAny>) -> bool {
    let tree = GuardTree::build(py, &[(local(0, "x"), guard)], &[]).unwrap();
    let (g, b) = dicts(py);
    let mut out = Vec::new();
    let ok = tree.check(py, std::slice::from_ref(v), &g, &b, &mut out);
    assert!(!pyo3::PyErr::occurred(py), "check left an exception set");
    ok
}

/// The explanation of one guard failing on one value (as local `x`).
pub fn explain1(py: Python<'_>, guard: Guard, v: &Bound<'_, PyAny>) -> Option<String> {
    let tree = GuardTree::build(py, &[(local(0, "x"), guard)], &[]).unwrap();
    let (g, b) = dicts(py);
    tree.explain_failure(py, std::slice::from_ref(v), &g, &b)
}
