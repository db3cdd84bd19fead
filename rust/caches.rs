//! The caches each compiled function owns (entries, graph-break glue and resume functions,
//! redirects for a replaced `__code__`) and the registry of live ones, so `reset()` drops
//! every graph at once instead of at each function's next call.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::guards::CodeCache;
use crate::runtime::{Artifact, CompiledCode};
use crate::spec_cache::SPEC_CACHE;

/// Every live CompiledCode's caches, so `reset()` can drop them all at once.
static LIVE: Mutex<Vec<std::sync::Weak<Caches>>> = Mutex::new(Vec::new());

/// What `reset()` drops: compiled entries, graph-break glue and resume functions, and the
/// compiled functions for other code objects assigned to `fn.__code__`.
#[derive(Default)]
pub struct Caches {
    pub(crate) entries: Mutex<CodeCache<Arc<Artifact>>>,
    pub(crate) glue: crate::glue::GlueCache,
    /// `fn.__code__` replaced since compile: a CompiledCode per code object seen since.
    pub(crate) redirects: Mutex<Vec<(Py<PyAny>, Py<CompiledCode>)>>,
    /// Ops in the graphs the function's traces and its resume functions' traces made.
    pub(crate) ops_compiled: std::sync::atomic::AtomicUsize,
    /// Dynamic-shape state of the code (sizes its traces saw, by source): a Python dict.
    pub(crate) dynamic: Mutex<Option<Py<PyAny>>>,
}

impl Caches {
    /// The code's dynamic-shape state (made on first use).
    pub(crate) fn dynamic_state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut d = self
            .dynamic
            .lock()
            .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("ferrodyn: lock poisoned"))?;
        Ok(
            d.get_or_insert_with(|| pyo3::types::PyDict::new(py).into_any().unbind())
                .clone_ref(py),
        )
    }

    pub(crate) fn new_registered() -> Arc<Caches> {
        let c = Arc::new(Caches::default());
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&c));
        }
        c
    }

    /// Takes everything out under the locks and drops it after they are released (dropping
    /// Python objects may run finalizers that call back into ferrodyn).
    pub(crate) fn clear(&self) {
        let entries = self.entries.lock().map(|mut c| c.take_all()).ok();
        let glue = self.glue.lock().map(|mut g| std::mem::take(&mut *g)).ok();
        let redirects = self
            .redirects
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .ok();
        self.ops_compiled
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let dynamic = self.dynamic.lock().map(|mut d| d.take()).ok();
        drop((entries, glue, redirects, dynamic));
    }
}

/// `ferrodyn._core.reset()`: forget every compiled entry and every decoded code object.
#[pyfunction]
pub fn reset() {
    let live: Vec<Arc<Caches>> = match LIVE.lock() {
        Ok(mut l) => {
            l.retain(|w| w.strong_count() > 0);
            l.iter().filter_map(|w| w.upgrade()).collect()
        }
        Err(_) => Vec::new(),
    };
    for c in &live {
        c.clear();
    }
    drop(live);
    SPEC_CACHE.clear();
    crate::frame_hook::reset();
}
