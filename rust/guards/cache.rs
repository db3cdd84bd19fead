//! The per-code-object cache of compiled entries, most recently used first.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::global_state::GlobalState;
use super::tree::GuardTree;

/// How many entries one code object may compile before the runtime stops recompiling.
pub const DEFAULT_RECOMPILE_LIMIT: usize = 8;

/// One compiled entry: the guards it is valid under, and what was compiled.
pub struct CacheEntry<A> {
    /// The global torch state the trace started under; compared first, as a whole.
    pub state: GlobalState,
    pub tree: GuardTree,
    /// The shape environment's guards on the graph inputs (dynamic shapes), checked after
    /// the tree passed: a Python callable taking the list of fetched graph inputs.
    pub shape_guard: Option<Py<PyAny>>,
    pub artifact: A,
}

/// The entries of one code object, most recently used first.
pub struct CodeCache<A> {
    entries: Vec<CacheEntry<A>>,
    compile_count: usize,
}

impl<A> Default for CodeCache<A> {
    fn default() -> Self {
        CodeCache {
            entries: Vec::new(),
            compile_count: 0,
        }
    }
}

/// Runs an entry's shape guard on the graph inputs just fetched.
fn shape_guard_passes(py: Python<'_>, guard: Option<&Py<PyAny>>, inputs: &[Py<PyAny>]) -> bool {
    let Some(g) = guard else {
        return true;
    };
    let Ok(list) = pyo3::types::PyList::new(py, inputs.iter().map(|i| i.bind(py))) else {
        return false;
    };
    g.bind(py)
        .call1((list,))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
}

/// Why an entry's shape guard rejects this frame (its tree passing), if it does.
fn explain_shape_guard<A>(
    py: Python<'_>,
    e: &CacheEntry<A>,
    frame: &[Bound<'_, PyAny>],
    globals: &Bound<'_, PyDict>,
    builtins: &Bound<'_, PyDict>,
) -> Option<String> {
    let g = e.shape_guard.as_ref()?;
    let mut fetched = Vec::new();
    if !e.tree.check(py, frame, globals, builtins, &mut fetched) {
        return None;
    }
    let list = pyo3::types::PyList::new(py, fetched.iter().map(|i| i.bind(py))).ok()?;
    if g.bind(py)
        .call1((&list,))
        .and_then(|r| r.is_truthy())
        .unwrap_or(false)
    {
        return None;
    }
    g.bind(py)
        .call_method1("explain", (list,))
        .and_then(|s| s.extract::<String>())
        .ok()
}

impl<A> CodeCache<A> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first entry (MRU order) traced under `state` whose guards pass; it moves to the
    /// front and its fetched values are appended to `out`. On a miss `out` is unchanged.
    pub fn lookup(
        &mut self,
        py: Python<'_>,
        state: &GlobalState,
        frame: &[Bound<'_, PyAny>],
        globals: &Bound<'_, PyDict>,
        builtins: &Bound<'_, PyDict>,
        out: &mut Vec<Py<PyAny>>,
    ) -> Option<&A> {
        let start = out.len();
        let hit = self.entries.iter().position(|e| {
            e.state == *state
                && e.tree.check(py, frame, globals, builtins, out)
                && (e.shape_guard.is_none() || {
                    let ok = shape_guard_passes(py, e.shape_guard.as_ref(), &out[start..]);
                    if !ok {
                        out.truncate(start);
                    }
                    ok
                })
        })?;
        self.entries[..=hit].rotate_right(1);
        self.entries.first().map(|e| &e.artifact)
    }

    /// Adds a freshly compiled entry at the front.
    pub fn insert(&mut self, entry: CacheEntry<A>) {
        self.entries.insert(0, entry);
        self.compile_count += 1;
    }

    /// Why each entry (MRU order) rejects this frame, one line per entry.
    pub fn last_miss_reasons(
        &self,
        py: Python<'_>,
        state: &GlobalState,
        frame: &[Bound<'_, PyAny>],
        globals: &Bound<'_, PyDict>,
        builtins: &Bound<'_, PyDict>,
    ) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                e.state
                    .explain_mismatch(py, state)
                    .or_else(|| e.tree.explain_failure(py, frame, globals, builtins))
                    .or_else(|| explain_shape_guard(py, e, frame, globals, builtins))
                    .unwrap_or_else(|| "all guards pass".to_string())
            })
            .collect()
    }

    /// Compilations since creation or the last [`clear`](Self::clear).
    pub fn compile_count(&self) -> usize {
        self.compile_count
    }

    /// Whether the recompile limit ([`DEFAULT_RECOMPILE_LIMIT`]) has been reached.
    pub fn at_recompile_limit(&self) -> bool {
        self.compile_count >= DEFAULT_RECOMPILE_LIMIT
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, most recently used first.
    pub fn entries(&self) -> &[CacheEntry<A>] {
        &self.entries
    }

    /// Takes every entry out (to be dropped by the caller) and resets the compile count.
    pub fn take_all(&mut self) -> Vec<CacheEntry<A>> {
        self.compile_count = 0;
        std::mem::take(&mut self.entries)
    }

    /// Drops every entry and resets the compile count.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.compile_count = 0;
    }
}
