//! Building a [`GuardTree`] from the tracer's `(source, guard)` list: sources sharing a
//! prefix share the nodes for it, so each access runs once per check.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyType;

use super::access::Access;
use super::dict_tag::dict_tags_supported;
use super::leaf::{Guard, Leaf};
use super::node::Node;
use super::source::Source;
use super::tree::GuardTree;

/// Where a node hangs while building: under another node or at the top.
#[derive(Clone, Copy)]
enum Parent {
    Top,
    Node(usize),
}

struct Builder<'py> {
    py: Python<'py>,
    /// Nodes by arena index; `None` once moved into the finished tree.
    arena: Vec<Option<Node>>,
    children: Vec<Vec<usize>>,
    tops: Vec<usize>,
    by_source: HashMap<Arc<Source>, usize>,
    globals_root: Option<usize>,
    builtins_root: Option<usize>,
    /// Classes pinned by exact-type guards (`Source::Class`), by address.
    classes: HashMap<usize, Py<PyType>>,
}

impl<'py> Builder<'py> {
    fn push(&mut self, parent: Parent, node: Node) -> usize {
        let idx = self.arena.len();
        self.arena.push(Some(node));
        self.children.push(Vec::new());
        match parent {
            Parent::Top => self.tops.push(idx),
            Parent::Node(p) => self.children[p].push(idx),
        }
        idx
    }

    fn dict_root(&mut self, builtins: bool) -> usize {
        let slot = if builtins {
            self.builtins_root
        } else {
            self.globals_root
        };
        if let Some(i) = slot {
            return i;
        }
        let node = if builtins {
            Node::new(Access::Builtins, "__builtins__".into())
        } else {
            Node::new(Access::Globals, "G".into())
        };
        let i = self.push(Parent::Top, node);
        if builtins {
            self.builtins_root = Some(i);
        } else {
            self.globals_root = Some(i);
        }
        i
    }

    /// The node for `src`, creating it and its missing ancestors.
    fn node_for(&mut self, src: &Arc<Source>) -> usize {
        if let Some(&i) = self.by_source.get(src) {
            return i;
        }
        if let Source::Globals = &**src {
            let i = self.dict_root(false);
            self.by_source.insert(src.clone(), i);
            return i;
        }
        let parent = match &**src {
            Source::Local { .. } => Parent::Top,
            Source::Global { .. } => Parent::Node(self.dict_root(false)),
            Source::Builtin { .. } => Parent::Node(self.dict_root(true)),
            other => match other.base() {
                Some(base) => Parent::Node(self.node_for(base)),
                None => Parent::Top,
            },
        };
        let access = match &**src {
            Source::Class { ptr, .. } => match self.classes.get(ptr) {
                Some(c) => Access::Class(c.clone_ref(self.py).into_any()),
                None => Access::for_source(self.py, src),
            },
            _ => Access::for_source(self.py, src),
        };
        let node = Node::new(access, src.render());
        let i = self.push(parent, node);
        self.by_source.insert(src.clone(), i);
        i
    }

    fn assemble(&mut self, idx: usize) -> Option<Node> {
        let mut node = self.arena.get_mut(idx)?.take()?;
        let kids = std::mem::take(&mut self.children[idx]);
        node.children = kids.into_iter().filter_map(|k| self.assemble(k)).collect();
        Some(node)
    }
}

impl GuardTree {
    /// Builds the tree. `fetch`: sources whose values the runtime needs (graph inputs),
    /// in the order [`check`](GuardTree::check) pushes them. Subtree skipping starts on
    /// where the interpreter supports dict version tags.
    pub fn build(
        py: Python<'_>,
        guards: &[(Arc<Source>, Guard)],
        fetch: &[Arc<Source>],
    ) -> PyResult<GuardTree> {
        let mut b = Builder {
            py,
            arena: Vec::new(),
            children: Vec::new(),
            tops: Vec::new(),
            by_source: HashMap::new(),
            globals_root: None,
            builtins_root: None,
            classes: HashMap::new(),
        };
        let mut reroot = Reroot::new(py, guards);
        // Identity guards already on a node (re-rooted paths repeat them once per instance).
        let mut seen: std::collections::HashSet<(usize, u8, usize)> = Default::default();
        for (src, guard) in guards {
            let src = reroot.apply(src);
            let i = b.node_for(&src);
            let key = match guard {
                Guard::IdMatch(o) => Some((0u8, o.as_ptr() as usize)),
                Guard::TypeMatch(t) => Some((1u8, t.as_ptr() as usize)),
                _ => None,
            };
            if let Some((kind, ptr)) = key {
                if !seen.insert((i, kind, ptr)) {
                    continue;
                }
            }
            let leaf = Leaf::compile(py, guard.clone_ref(py), &src.render())?;
            if let Some(node) = b.arena[i].as_mut() {
                node.leaves.push(leaf);
            }
        }
        b.classes = std::mem::take(&mut reroot.used);
        // Nodes made above looked their classes up before `classes` was filled: classes
        // are only reached through guards, so rebuild their roots' accessors now.
        for (src, &i) in &b.by_source {
            if let Source::Class { ptr, .. } = &**src {
                if let (Some(c), Some(node)) = (b.classes.get(ptr), b.arena[i].as_mut()) {
                    node.access = Access::Class(c.clone_ref(py).into_any());
                }
            }
        }
        for (slot, src) in fetch.iter().enumerate() {
            let src = reroot.apply(src);
            let i = b.node_for(&src);
            if let Some(node) = b.arena[i].as_mut() {
                node.fetch_slots.push(slot);
            }
        }
        let tops = std::mem::take(&mut b.tops);
        let mut roots: Vec<Node> = tops.into_iter().filter_map(|t| b.assemble(t)).collect();
        for r in &mut roots {
            r.finish();
        }
        let tags = dict_tags_supported(py);
        Ok(GuardTree::from_parts(roots, fetch.len(), tags))
    }
}

/// Re-rooting of paths through `type(x)` at the class itself, where a guard pins `x`'s
/// exact type: `type(m).forward` of 200 `nn.Linear` modules becomes one node under
/// `Source::Class(Linear)` instead of 200 (the `TypeMatch` on each `m` still runs, and the
/// check passes only when every guard does, so the class's guards hold for each `m`).
struct Reroot<'py> {
    py: Python<'py>,
    /// Sources with an exact-type guard, and the class it pins.
    pinned: HashMap<Arc<Source>, Py<PyType>>,
    memo: HashMap<Arc<Source>, Arc<Source>>,
    /// Classes a re-rooted source refers to, by address.
    used: HashMap<usize, Py<PyType>>,
}

impl<'py> Reroot<'py> {
    fn new(py: Python<'py>, guards: &[(Arc<Source>, Guard)]) -> Reroot<'py> {
        let mut pinned = HashMap::new();
        for (src, guard) in guards {
            if let Guard::TypeMatch(t) = guard {
                pinned.insert(src.clone(), t.clone_ref(py));
            }
        }
        Reroot {
            py,
            pinned,
            memo: HashMap::new(),
            used: HashMap::new(),
        }
    }

    fn apply(&mut self, src: &Arc<Source>) -> Arc<Source> {
        if self.pinned.is_empty() {
            return src.clone();
        }
        if let Some(r) = self.memo.get(src) {
            return r.clone();
        }
        let out = match (&**src, src.base()) {
            (Source::TypeOf { base }, _) if self.pinned.contains_key(base) => {
                let t = &self.pinned[base];
                let py = self.py;
                let ptr = t.as_ptr() as usize;
                let name = t
                    .bind(py)
                    .fully_qualified_name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "<class>".into());
                self.used.entry(ptr).or_insert_with(|| t.clone_ref(py));
                Arc::new(Source::Class { ptr, name })
            }
            (_, Some(base)) => {
                let base = base.clone();
                let new_base = self.apply(&base);
                if Arc::ptr_eq(&new_base, &base) {
                    src.clone()
                } else {
                    Arc::new(src.with_base(new_base))
                }
            }
            (_, None) => src.clone(),
        };
        self.memo.insert(src.clone(), out.clone());
        out
    }
}
