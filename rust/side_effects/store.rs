//! The store itself: pending mutations of Python state, keyed by object identity, in
//! program order. Nothing here touches a real object; reads consult the store first so a
//! trace sees its own writes, and `replay.rs` turns the log into a plan run after the graph.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;

use super::table::ObjectTable;
use crate::guards::Source;
use crate::interp::value::{DictVal, ExternalCell, ListVal, SourceRef, Value};

/// Identity of a Python object (its address; the store keeps it alive while tracing).
pub type Ptr = usize;

pub fn ptr_of(o: &Py<PyAny>) -> Ptr {
    o.as_ptr() as usize
}

/// One recorded mutation of state that exists outside the trace.
pub enum Mutation {
    /// The contents of a pre-existing set, changed through its mirror (a pinned
    /// `StdVal::Set`): replayed as `clear()` and re-adding what the mirror holds.
    SetContents(Rc<crate::interp::stdlib::StdVal>),
    /// `target.name = value` on a pre-existing object (`Value::Object` with a source).
    SetAttr {
        target: Value,
        name: String,
        value: Value,
        /// Written into the instance dict (`obj.__dict__[name] = v`), past a data
        /// descriptor of that name on the class; else `object.__setattr__`.
        raw: bool,
    },
    DelAttr {
        target: Value,
        name: String,
    },
    /// A pre-existing list whose contents changed: replayed as `lst[:] = final items`.
    ListContents(Rc<ListVal>),
    /// A pre-existing dict whose contents changed: `d.clear(); d.update(final items)`.
    DictContents(Rc<DictVal>),
    /// `globals_dict[name] = value` (None: `del`).
    Global {
        globals: Py<PyAny>,
        name: String,
        value: Option<Value>,
    },
    /// `cell.cell_contents = value` on a closure cell that exists outside the trace.
    Cell {
        cell: Rc<ExternalCell>,
        value: Value,
    },
    /// A pre-existing tuple/list iterator advanced in the trace (through its mirror
    /// `Value::Iter`): replayed as `it.__setstate__(start + items consumed)`.
    IterAdvance {
        target: Value,
        mirror: Value,
        start: usize,
    },
    /// `print(*args, **kwargs)`, replayed in order after the graph.
    Print {
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    },
}

/// An object created during the trace. The shell is an empty instance of `cls` made with
/// `object.__new__` (no user code), standing for the object while tracing; its attributes
/// live here, in first-store order.
pub struct NewObject {
    pub shell: Py<PyAny>,
    pub cls: Py<PyAny>,
    /// Where the class was read from (guards on its methods hang below it).
    pub cls_source: SourceRef,
    pub attrs: Vec<(String, Value)>,
}

#[derive(Default)]
pub struct SideEffects {
    pub log: Vec<Mutation>,
    /// Pre-existing objects whose `__dict__` the trace read as a mirror of the real dict
    /// (attrs.rs): a later attribute store would not show in it, so it breaks.
    pub dict_exposed: HashSet<Ptr>,
    /// Those mirrors (by Rc address) with their object: `mirror[k] = v` is the instance-dict
    /// store on the object, shown in the mirror too (`inst_dict::store_through_mirror`).
    pub namespace_mirrors: HashMap<usize, (Rc<DictVal>, Value)>,
    /// Class attribute stores recorded (enables `attrs::inherited_pending_store`).
    pub class_stores: usize,
    /// Pending attribute state of pre-existing objects: Some(v) stored, None deleted.
    existing_attrs: HashMap<(Ptr, String), Option<Value>>,
    /// Pending entries written as `obj.__dict__[name] = v` under a class data descriptor.
    raw_attrs: HashSet<(Ptr, String)>,
    /// Pre-existing objects with any pending attribute mutation.
    touched: HashSet<Ptr>,
    pub new_objects: HashMap<Ptr, NewObject>,
    /// Pending global writes: (globals dict, name) -> Some(v) stored, None deleted.
    globals: HashMap<(Ptr, String), Option<Value>>,
    /// Pending contents of pre-existing closure cells.
    cells: HashMap<Ptr, Value>,
    /// Pre-existing containers already in the log (by Rc address).
    mutated_containers: HashSet<usize>,
    /// Pre-existing mutable objects realized from sources: identity -> (first source, value).
    /// Used to share one mirror between aliases, and to check aliasing on later calls.
    pub realized: HashMap<Ptr, (Arc<Source>, Value)>,
    /// Every (source, identity) realized as a pre-existing mutable object, in order.
    pub realized_sources: Vec<(Arc<Source>, Ptr)>,
    /// Escaping objects created in the trace, built once per call.
    pub table: ObjectTable,
    /// Bumped by every recorded mutation (see `generation`).
    generation: u64,
    /// How to undo each attribute, global and cell store, in order (see `rollback_to`).
    undo: Vec<Undo>,
}

/// The map state one store replaced.
enum Undo {
    Attr {
        key: (Ptr, String),
        prev: Option<Option<Value>>,
        was_touched: bool,
        prev_raw: bool,
    },
    Global {
        key: (Ptr, String),
        prev: Option<Option<Value>>,
    },
    Cell {
        key: Ptr,
        prev: Option<Value>,
    },
    Print,
}

/// Where the store stood at a graph-break snapshot.
#[derive(Clone, Copy, Debug)]
pub struct StoreMark {
    generation: u64,
    log: usize,
    undo: usize,
}

impl SideEffects {
    /// A counter of recorded mutations: equal values at two points of a trace mean nothing
    /// was recorded in between (e.g. a graph-break snapshot can check that the breaking
    /// step, which will run eagerly, left nothing in the store).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Note an in-place mutation of a value created in the trace that the store does not
    /// track (deque, set): a graph break inside the mutating call must not split the
    /// frame, since the call re-runs natively.
    /// Whether the real list at `ptr` was read into the trace and changed there.
    pub fn realized_list_mutated(&self, ptr: Ptr) -> bool {
        match self.realized.get(&ptr) {
            Some((_, Value::List(l))) => {
                self.mutated_containers.contains(&(Rc::as_ptr(l) as usize))
            }
            _ => false,
        }
    }

    /// Whether any real dict read into the trace was changed there.
    pub fn realized_dict_mutated(&self) -> bool {
        self.realized.values().any(|(_, v)| match v {
            Value::Dict(d) => self.mutated_containers.contains(&(Rc::as_ptr(d) as usize)),
            _ => false,
        })
    }

    pub fn note_mutation(&mut self) {
        self.generation += 1;
    }

    /// A pre-existing tuple/list iterator is now traced through `mirror` (see
    /// `Mutation::IterAdvance`).
    pub fn iter_advanced(&mut self, target: Value, mirror: Value, start: usize) {
        self.generation += 1;
        self.log.push(Mutation::IterAdvance {
            target,
            mirror,
            start,
        });
    }

    /// Where the store stands now (for a graph-break snapshot).
    pub fn mark(&self) -> StoreMark {
        StoreMark {
            generation: self.generation,
            log: self.log.len(),
            undo: self.undo.len(),
        }
    }

    /// Whether any mutation of a pre-existing object, iterator advance or print was
    /// recorded since `m` (stores on objects created since are not logged).
    pub fn logged_since(&self, m: &StoreMark) -> bool {
        self.log.len() > m.log
    }

    /// Undo what was recorded since `m`, when that was only attribute, global and cell
    /// stores and prints (the breaking call re-runs natively and redoes them): true, and
    /// the store is as it was at `m`. Anything else (container contents, new objects,
    /// untracked mutations) is not undone: false, nothing changed.
    pub fn rollback_to(&mut self, m: StoreMark) -> bool {
        let entries = self.log.len().saturating_sub(m.log);
        let undos = self.undo.len().saturating_sub(m.undo);
        let bumps = self.generation.saturating_sub(m.generation);
        let simple = self.log[m.log.min(self.log.len())..].iter().all(|e| {
            matches!(
                e,
                Mutation::SetAttr { .. }
                    | Mutation::DelAttr { .. }
                    | Mutation::Global { .. }
                    | Mutation::Cell { .. }
                    | Mutation::Print { .. }
            )
        });
        if !simple || entries != undos || bumps != entries as u64 {
            return false;
        }
        while self.undo.len() > m.undo {
            match self.undo.pop() {
                Some(Undo::Attr {
                    key,
                    prev,
                    was_touched,
                    prev_raw,
                }) => {
                    if prev_raw {
                        self.raw_attrs.insert(key.clone());
                    } else {
                        self.raw_attrs.remove(&key);
                    }
                    if !was_touched {
                        self.touched.remove(&key.0);
                    }
                    match prev {
                        Some(v) => self.existing_attrs.insert(key, v),
                        None => self.existing_attrs.remove(&key),
                    };
                }
                Some(Undo::Global { key, prev }) => {
                    match prev {
                        Some(v) => self.globals.insert(key, v),
                        None => self.globals.remove(&key),
                    };
                }
                Some(Undo::Cell { key, prev }) => {
                    match prev {
                        Some(v) => self.cells.insert(key, v),
                        None => self.cells.remove(&key),
                    };
                }
                Some(Undo::Print) | None => {}
            }
        }
        self.log.truncate(m.log);
        self.generation = m.generation;
        true
    }

    // ---- attributes ------------------------------------------------------------------------

    /// The pending value of `obj.name`: Some(Some(v)) stored, Some(None) deleted, None: no
    /// pending mutation (for new objects: not set on the instance).
    pub fn pending_attr(&self, obj: Ptr, name: &str) -> Option<Option<Value>> {
        if let Some(n) = self.new_objects.get(&obj) {
            return n
                .attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| Some(v.clone()));
        }
        self.existing_attrs.get(&(obj, name.to_string())).cloned()
    }

    pub fn has_class_stores(&self) -> bool {
        self.class_stores > 0
    }

    pub fn is_new(&self, obj: Ptr) -> bool {
        self.new_objects.contains_key(&obj)
    }

    /// Whether the object's real state differs from what the trace sees.
    pub fn has_pending(&self, obj: Ptr) -> bool {
        self.touched.contains(&obj) || self.new_objects.contains_key(&obj)
    }

    pub fn new_object(&self, obj: Ptr) -> Option<&NewObject> {
        self.new_objects.get(&obj)
    }

    /// `obj.name = value` (None: `del obj.name`) on a new object. Returns false when
    /// deleting an attribute the object does not have.
    pub fn store_new_attr(&mut self, obj: Ptr, name: &str, value: Option<Value>) -> bool {
        self.generation += 1;
        let Some(n) = self.new_objects.get_mut(&obj) else {
            return false;
        };
        let pos = n.attrs.iter().position(|(k, _)| k == name);
        match (pos, value) {
            (Some(i), Some(v)) => n.attrs[i].1 = v,
            (None, Some(v)) => n.attrs.push((name.to_string(), v)),
            (Some(i), None) => {
                n.attrs.remove(i);
            }
            (None, None) => return false,
        }
        true
    }

    /// `target.name = value` (None: delete) on a pre-existing object.
    pub fn store_existing_attr(
        &mut self,
        target: &Value,
        obj: Ptr,
        name: &str,
        value: Option<Value>,
    ) {
        self.store_existing(target, obj, name, value, false);
    }

    /// `obj.__dict__[name] = value` on a pre-existing object whose class has a data
    /// descriptor `name`: reads of `obj.name` still go through the descriptor.
    pub fn store_existing_dict_entry(
        &mut self,
        target: &Value,
        obj: Ptr,
        name: &str,
        value: Value,
    ) {
        self.store_existing(target, obj, name, Some(value), true);
    }

    fn store_existing(
        &mut self,
        target: &Value,
        obj: Ptr,
        name: &str,
        value: Option<Value>,
        raw: bool,
    ) {
        self.generation += 1;
        let was_touched = !self.touched.insert(obj);
        let prev = self
            .existing_attrs
            .insert((obj, name.to_string()), value.clone());
        let key = (obj, name.to_string());
        let prev_raw = if raw {
            !self.raw_attrs.insert(key.clone())
        } else {
            self.raw_attrs.remove(&key)
        };
        self.undo.push(Undo::Attr {
            key,
            prev,
            was_touched,
            prev_raw,
        });
        self.log.push(match value {
            Some(value) => Mutation::SetAttr {
                target: target.clone(),
                name: name.to_string(),
                value,
                raw,
            },
            None => Mutation::DelAttr {
                target: target.clone(),
                name: name.to_string(),
            },
        });
    }

    /// Whether the pending entry `name` of `obj` was written into its instance dict past a
    /// class data descriptor (reads of `obj.name` still go through the descriptor).
    pub fn pending_is_raw(&self, obj: Ptr, name: &str) -> bool {
        !self.raw_attrs.is_empty() && self.raw_attrs.contains(&(obj, name.to_string()))
    }

    pub fn track_new_object(&mut self, n: NewObject) {
        self.new_objects.insert(ptr_of(&n.shell), n);
    }

    // ---- containers ------------------------------------------------------------------------

    /// Note that a container mirroring a pre-existing list changed (first time: logged).
    pub fn list_mutated(&mut self, l: &Rc<ListVal>) {
        if !crate::interp::value::container_is_fresh(Rc::as_ptr(l) as usize) {
            self.generation += 1;
        }
        if l.source.is_some() && self.mutated_containers.insert(Rc::as_ptr(l) as usize) {
            self.log.push(Mutation::ListContents(l.clone()));
        }
    }

    /// A mirror of a pre-existing set is about to change (first time: logged).
    pub fn set_mutated(&mut self, s: &Rc<crate::interp::stdlib::StdVal>) {
        self.generation += 1;
        if self.mutated_containers.insert(Rc::as_ptr(s) as usize) {
            self.log.push(Mutation::SetContents(s.clone()));
        }
    }

    pub fn dict_mutated(&mut self, d: &Rc<DictVal>) {
        if !crate::interp::value::container_is_fresh(Rc::as_ptr(d) as usize) {
            self.generation += 1;
        }
        if d.source.is_some() && self.mutated_containers.insert(Rc::as_ptr(d) as usize) {
            self.log.push(Mutation::DictContents(d.clone()));
        }
    }

    // ---- globals and cells -----------------------------------------------------------------

    pub fn has_pending_globals(&self) -> bool {
        !self.globals.is_empty()
    }

    pub fn pending_global(&self, globals: &Py<PyAny>, name: &str) -> Option<Option<Value>> {
        self.globals
            .get(&(ptr_of(globals), name.to_string()))
            .cloned()
    }

    pub fn store_global(
        &mut self,
        py: Python<'_>,
        globals: &Py<PyAny>,
        name: &str,
        value: Option<Value>,
    ) {
        self.generation += 1;
        let prev = self
            .globals
            .insert((ptr_of(globals), name.to_string()), value.clone());
        self.undo.push(Undo::Global {
            key: (ptr_of(globals), name.to_string()),
            prev,
        });
        self.log.push(Mutation::Global {
            globals: globals.clone_ref(py),
            name: name.to_string(),
            value,
        });
    }

    pub fn pending_cell(&self, cell: &ExternalCell) -> Option<Value> {
        self.cells.get(&ptr_of(&cell.cell)).cloned()
    }

    pub fn store_cell(&mut self, cell: &Rc<ExternalCell>, value: Value) {
        self.generation += 1;
        let prev = self.cells.insert(ptr_of(&cell.cell), value.clone());
        self.undo.push(Undo::Cell {
            key: ptr_of(&cell.cell),
            prev,
        });
        self.log.push(Mutation::Cell {
            cell: cell.clone(),
            value,
        });
    }

    pub fn record_print(&mut self, args: Vec<Value>, kwargs: Vec<(String, Value)>) {
        self.generation += 1;
        self.undo.push(Undo::Print);
        self.log.push(Mutation::Print { args, kwargs });
    }

    /// Whether any pre-existing object or container is mutated (aliasing then matters).
    pub fn mutates_existing_objects(&self) -> bool {
        self.log.iter().any(|m| {
            matches!(
                m,
                Mutation::SetAttr { .. }
                    | Mutation::DelAttr { .. }
                    | Mutation::ListContents(_)
                    | Mutation::DictContents(_)
            )
        })
    }
}
