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
        let hit = self
            .entries
            .iter()
            .position(|e| e.state == *state && e.tree.check(py, frame, globals, builtins, out))?;
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
