//! Building a [`GuardTree`] from the tracer's `(source, guard)` list: sources sharing a
//! prefix share the nodes for it, so each access runs once per check.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;

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
        let node = Node::new(Access::for_source(self.py, src), src.render());
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
        };
        for (src, guard) in guards {
            let i = b.node_for(src);
            let leaf = Leaf::compile(py, guard.clone_ref(py), &src.render())?;
            if let Some(node) = b.arena[i].as_mut() {
                node.leaves.push(leaf);
            }
        }
        for (slot, src) in fetch.iter().enumerate() {
            let i = b.node_for(src);
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
