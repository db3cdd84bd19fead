//! A guard-tree node: one accessor, the leaves checked on its value, its children, the
//! fetch slots its value fills, and the per-node state used by subtree skipping.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;

use super::access::Access;
use super::leaf::{Leaf, Stability};

/// A strong reference to the value a `DictItem` node fetched last (for skipping).
///
/// Every access happens with the GIL held (all methods take a `Python`/`Bound`, and
/// skipping is disabled on free-threaded builds), so a load followed by an incref cannot
/// race with a swap followed by a decref. Atomics are used only so that the tree is
/// `Sync` for `#[pyclass]` without `unsafe impl`.
#[derive(Debug, Default)]
pub(crate) struct ValueCache(AtomicPtr<ffi::PyObject>);

impl ValueCache {
    #[inline]
    pub fn get<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        let p = self.0.load(Ordering::Relaxed);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is a strong reference owned by this cache; under the GIL nothing can
        // release it between the load and this incref.
        Some(unsafe { Bound::from_borrowed_ptr(py, p) })
    }

    #[inline]
    pub fn set(&self, v: &Bound<'_, PyAny>) {
        let new = v.clone().into_ptr();
        let old = self.0.swap(new, Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: `old` was a strong reference owned by this cache; we release it.
            drop(unsafe { Bound::from_owned_ptr(v.py(), old) });
        }
    }
}

impl Drop for ValueCache {
    fn drop(&mut self) {
        let p = std::mem::replace(self.0.get_mut(), std::ptr::null_mut());
        if !p.is_null() {
            // Attaching is a no-op when the thread already holds the GIL (the usual case:
            // a #[pyclass] being deallocated). If the interpreter is gone, the reference
            // is leaked rather than released without it.
            // SAFETY: `p` is the strong reference this cache owned.
            let _ = Python::try_attach(|py| drop(unsafe { Bound::from_owned_ptr(py, p) }));
        }
    }
}

#[derive(Debug)]
pub(crate) struct Node {
    pub access: Access,
    /// `source.render()` (or `G` / `__builtins__` for the dict roots).
    pub rendered: String,
    pub leaves: Vec<Leaf>,
    pub children: Vec<Node>,
    /// Positions in the fetch list this node's value fills.
    pub fetch_slots: Vec<usize>,
    /// The value is expected to be a dict whose version tag matters (it has `DictItem`
    /// children or dict-state leaves).
    pub tracks_tag: bool,
    /// Nothing to do when the value is known unchanged: no children, no fetches, only
    /// identity-stable leaves.
    pub skip_when_cached: bool,
    /// Dict version tag at the end of the last passing evaluation (0: unknown).
    pub tag: AtomicU64,
    /// For `DictItem` nodes: the value fetched last (while skipping is on).
    pub cached: ValueCache,
}

impl Node {
    pub fn new(access: Access, rendered: String) -> Node {
        Node {
            access,
            rendered,
            leaves: Vec::new(),
            children: Vec::new(),
            fetch_slots: Vec::new(),
            tracks_tag: false,
            skip_when_cached: false,
            tag: AtomicU64::new(0),
            cached: ValueCache::default(),
        }
    }

    /// Orders leaves cheapest first and derives the skipping flags (after building).
    pub fn finish(&mut self) {
        self.leaves.sort_by_key(|l| l.cost_rank());
        for c in &mut self.children {
            c.finish();
        }
        self.tracks_tag = self.children.iter().any(|c| c.access.is_dict_item())
            || self
                .leaves
                .iter()
                .any(|l| l.stability == Stability::DictState);
        self.skip_when_cached = self.children.is_empty()
            && self.fetch_slots.is_empty()
            && self
                .leaves
                .iter()
                .all(|l| l.stability == Stability::Identity);
    }

    pub fn count_leaves(&self) -> usize {
        self.leaves.len() + self.children.iter().map(Node::count_leaves).sum::<usize>()
    }

    pub fn count_nodes(&self) -> usize {
        1 + self.children.iter().map(Node::count_nodes).sum::<usize>()
    }

    pub fn describe_into(&self, out: &mut Vec<String>) {
        out.extend(self.leaves.iter().map(|l| l.desc.clone()));
        for c in &self.children {
            c.describe_into(out);
        }
    }
}
