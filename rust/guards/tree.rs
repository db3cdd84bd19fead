//! The guard tree: evaluates every guard of one compiled entry against a call's frame,
//! sharing accesses between guards with a common source prefix, and fetches the values
//! that become graph inputs in the same pass.
//!
//! Subtree skipping (on by default where dict version tags are readable): at each node
//! whose value is an exact dict, the dict's version tag is compared with the one recorded
//! at the end of the last passing evaluation. CPython draws tags from one global counter
//! on every dict creation and mutation, so an equal tag means the same dict, unmutated.
//! Then
//! * its `DictItem` children are the same objects as last time: they are taken from a
//!   per-node cache of strong references instead of being looked up again (this is also
//!   how fetched values are still produced for skipped lookups: the cached object *is*
//!   the value a lookup would return);
//! * leaves that depend only on the dict's state (`DictKeys`, `Len`) and, on those
//!   children, leaves that depend only on identity (`IdMatch`, `Equals` on immutable
//!   constants, `TypeMatch` on types whose instances cannot change class) are skipped;
//! * children with nothing else to do (no children, no fetches, only such leaves) are not
//!   visited at all.
//!
//! Everything else still runs: tensor leaves (metadata changes in place), `HasAttr`,
//! `TypeMatch` on heap types (`obj.__class__ = ...`), and every non-`DictItem` access
//! (attributes, instance dicts, indexing), since those can change without any dict on the
//! path changing. Nested dicts are checked by their own tags, so mutating any dict on a
//! path invalidates exactly the part of the tree below it.

use std::sync::atomic::Ordering;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::access::Access;
use super::dict_tag::dict_tag;
use super::leaf::Stability;
use super::node::Node;

pub struct GuardTree {
    roots: Vec<Node>,
    n_fetch: usize,
    n_leaves: usize,
    /// Subtree skipping requested (see the module docs).
    skipping: bool,
    /// Dict version tags readable on this interpreter.
    tags_supported: bool,
    /// Identity constraints between fetched values: (slot a, slot b, must be the same
    /// object) — e.g. `attention(x, x, x)` traced with query `is` key.
    identity: Vec<(usize, usize, bool, String)>,
}

/// The per-call inputs of an evaluation.
struct Frame<'a, 'py> {
    locals: &'a [Bound<'py, PyAny>],
    globals: &'a Bound<'py, PyDict>,
    builtins: &'a Bound<'py, PyDict>,
}

impl<'py> Frame<'_, 'py> {
    /// The value of a root node.
    fn root(&self, node: &Node) -> Option<Bound<'py, PyAny>> {
        match node.access {
            Access::Local(i) => self.locals.get(i).cloned(),
            Access::Globals => Some(self.globals.as_any().clone()),
            Access::Builtins => Some(self.builtins.as_any().clone()),
            Access::SysModules => {
                let py = self.globals.py();
                // SAFETY: the interpreter's module dict, a borrowed reference (NULL only
                // during finalization, when no guard runs).
                unsafe {
                    let m = pyo3::ffi::PyImport_GetModuleDict();
                    (!m.is_null()).then(|| Bound::from_borrowed_ptr(py, m))
                }
            }
            Access::AbcCacheToken(ref f) | Access::ThreadIdent(ref f) => {
                f.bind(self.globals.py()).call0().ok()
            }
            Access::Class(ref c) => {
                let c = c.bind(self.globals.py());
                (!c.is_none()).then(|| c.clone())
            }
            _ => None,
        }
    }
}

impl GuardTree {
    pub(crate) fn from_parts(roots: Vec<Node>, n_fetch: usize, tags_supported: bool) -> Self {
        let n_leaves = roots.iter().map(Node::count_leaves).sum();
        GuardTree {
            roots,
            n_fetch,
            n_leaves,
            skipping: tags_supported,
            tags_supported,
            identity: Vec::new(),
        }
    }

    /// Require fetched values `a` and `b` to be (or not be) the same object on every call;
    /// `what` is the user-facing text (`"x is y"`) for failure messages.
    pub fn add_identity_constraint(&mut self, a: usize, b: usize, same: bool, what: String) {
        self.identity.push((a, b, same, what));
    }

    /// Turns subtree skipping on or off (it stays off where tags are unsupported).
    pub fn set_subtree_skipping(&mut self, on: bool) {
        self.skipping = on && self.tags_supported;
    }

    pub fn subtree_skipping(&self) -> bool {
        self.skipping
    }

    /// Number of leaf guards.
    pub fn len(&self) -> usize {
        self.n_leaves
    }

    pub fn is_empty(&self) -> bool {
        self.n_leaves == 0
    }

    /// Number of accessor nodes (each runs at most once per check), dict roots included.
    pub fn node_count(&self) -> usize {
        self.roots.iter().map(Node::count_nodes).sum()
    }

    /// Number of values `check` fetches.
    pub fn fetch_count(&self) -> usize {
        self.n_fetch
    }

    /// Evaluates every guard; on success appends the fetched values to `out` in fetch
    /// order and returns true. On failure `out` is left as it was. Never raises.
    pub fn check(
        &self,
        py: Python<'_>,
        frame: &[Bound<'_, PyAny>],
        globals: &Bound<'_, PyDict>,
        builtins: &Bound<'_, PyDict>,
        out: &mut Vec<Py<PyAny>>,
    ) -> bool {
        let base = out.len();
        out.reserve(self.n_fetch);
        for _ in 0..self.n_fetch {
            out.push(py.None());
        }
        let f = Frame {
            locals: frame,
            globals,
            builtins,
        };
        let ok = self.roots.iter().all(|root| {
            f.root(root)
                .is_some_and(|v| self.eval(root, &v, false, &mut out[base..]))
        }) && self.identity.iter().all(|(a, b, same, _)| {
            let (Some(x), Some(y)) = (out.get(base + a), out.get(base + b)) else {
                return false;
            };
            (x.as_ptr() == y.as_ptr()) == *same
        });
        if !ok {
            out.truncate(base);
        }
        ok
    }

    fn eval(&self, node: &Node, v: &Bound<'_, PyAny>, same: bool, out: &mut [Py<PyAny>]) -> bool {
        let tag = if self.skipping && node.tracks_tag {
            dict_tag(v, true)
        } else {
            0
        };
        let unchanged = tag != 0 && tag == node.tag.load(Ordering::Relaxed);
        if self.skipping && node.tracks_tag && !unchanged {
            // The children's caches are about to describe this dict: until the whole node
            // passes, no recorded tag may vouch for them (a failing evaluation of another
            // dict of the same shape, e.g. a sibling module's, would otherwise leave its
            // children cached under the previous dict's tag).
            node.tag.store(0, Ordering::Relaxed);
        }
        for leaf in &node.leaves {
            let known = match leaf.stability {
                Stability::Identity => same || unchanged,
                Stability::DictState => unchanged,
                Stability::Never => false,
            };
            if !known && !leaf.check(v) {
                return false;
            }
        }
        for &slot in &node.fetch_slots {
            if let Some(o) = out.get_mut(slot) {
                *o = v.clone().unbind();
            }
        }
        for child in &node.children {
            let item = child.access.is_dict_item();
            if unchanged && item {
                if child.skip_when_cached {
                    continue;
                }
                if let Some(cv) = child.cached.get(v.py()) {
                    if !self.eval(child, &cv, true, out) {
                        return false;
                    }
                    continue;
                }
            }
            let Some(cv) = child.access.child(v) else {
                return false;
            };
            if self.skipping && item {
                child.cached.set(&cv);
            }
            if !self.eval(child, &cv, false, out) {
                return false;
            }
        }
        if tag != 0 && !unchanged {
            node.tag.store(tag, Ordering::Relaxed);
        }
        true
    }

    /// The first failing guard, user-facing with `old -> new`; `None` if all pass.
    /// Evaluates from scratch (no skipping) and leaves the skipping state untouched.
    pub fn explain_failure(
        &self,
        _py: Python<'_>,
        frame: &[Bound<'_, PyAny>],
        globals: &Bound<'_, PyDict>,
        builtins: &Bound<'_, PyDict>,
    ) -> Option<String> {
        let f = Frame {
            locals: frame,
            globals,
            builtins,
        };
        let node_failure = self.roots.iter().find_map(|root| match f.root(root) {
            Some(v) => explain_node(root, &v),
            None => Some(format!(
                "{}: no such local slot in the frame",
                root.rendered
            )),
        });
        if node_failure.is_some() || self.identity.is_empty() {
            return node_failure;
        }
        let mut out = Vec::new();
        if !self.check(_py, frame, globals, builtins, &mut out) {
            if let Some((_, _, same, what)) = self.identity.first() {
                let word = |b: bool| if b { "True" } else { "False" };
                return Some(format!("{what}: {} -> {}", word(*same), word(!*same)));
            }
        }
        None
    }

    /// One line per leaf guard, e.g.
    /// `x: tensor(float32, cpu, size=[4], stride=[1], requires_grad=False)`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.n_leaves);
        for r in &self.roots {
            r.describe_into(&mut out);
        }
        out
    }
}

fn explain_node(node: &Node, v: &Bound<'_, PyAny>) -> Option<String> {
    if let Some(msg) = node
        .leaves
        .iter()
        .find_map(|l| l.explain(v, &node.rendered))
    {
        return Some(msg);
    }
    node.children.iter().find_map(|c| match c.access.child(v) {
        Some(cv) => explain_node(c, &cv),
        None => Some(format!("{}: {}", c.rendered, c.access.why_inaccessible(v))),
    })
}
