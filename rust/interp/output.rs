//! Rebuilding the return value: a template over the graph's outputs, constants, and
//! pre-existing objects fetched by source on each call.

use crate::ImportCached;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::{IterVal, Value};
use crate::guards::Source;

pub enum OutTemplate {
    /// The i-th output of the compiled graph.
    Graph(usize),
    Const(Py<PyAny>),
    /// The i-th value fetched by the guard tree (after the graph inputs).
    Fetched(usize),
    Tuple(Vec<OutTemplate>),
    /// A namedtuple (`cls(*items)`) or structseq (`cls(items)`).
    NamedTuple(Py<PyAny>, bool, Vec<OutTemplate>),
    List(Vec<OutTemplate>),
    Dict(Vec<(Py<PyAny>, OutTemplate)>),
    /// `callable(*args)`: bound methods, iterators, and other rebuilt helpers.
    Call(Py<PyAny>, Vec<OutTemplate>),
    /// The i-th object of the per-call object table (side_effects/table.rs).
    Obj(usize),
}

/// Marks the tuples reached more than once from `roots` (by identity) as shared: they are
/// rebuilt once and every reference gets that object (`Tracer::shared_tuples`).
pub fn note_shared_tuples(tx: &mut Tracer<'_>, roots: &[&Value]) {
    fn walk(v: &Value, seen: &mut std::collections::HashMap<usize, u32>, depth: usize) {
        if depth > 32 {
            return;
        }
        match v {
            Value::Tuple(t) => {
                let n = seen
                    .entry(std::rc::Rc::as_ptr(t) as *const u8 as usize)
                    .or_insert(0);
                *n += 1;
                if *n == 1 {
                    t.iter().for_each(|i| walk(i, seen, depth + 1));
                }
            }
            Value::NamedTuple(n) => n.items.iter().for_each(|i| walk(i, seen, depth + 1)),
            Value::List(l) if l.source.is_none() => l
                .items
                .borrow()
                .iter()
                .for_each(|i| walk(i, seen, depth + 1)),
            Value::Dict(d) if d.source.is_none() => d
                .entries
                .borrow()
                .iter()
                .for_each(|(_, i)| walk(i, seen, depth + 1)),
            _ => {}
        }
    }
    let mut seen = std::collections::HashMap::new();
    for r in roots {
        walk(r, &mut seen, 0);
    }
    tx.shared_tuples
        .extend(seen.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k));
}

/// How a namedtuple (or a tuple subclass) made in the trace is rebuilt. One whose class
/// gives instances a `__dict__` has identity: `side_effects::table::escape` builds it once.
pub fn named_tuple_template(
    tx: &mut Tracer<'_>,
    n: &super::value::NamedTupleVal,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<OutTemplate> {
    let py = tx.py;
    let items = n
        .items
        .iter()
        .map(|i| template_for(tx, i, outputs, extra))
        .collect::<TResult<Vec<_>>>()?;
    Ok(if n.fields.is_empty() && !n.structseq {
        // A tuple subclass without fields (made by `tuple.__new__(cls, items)`): the same
        // call again, which runs no method of the class.
        OutTemplate::Call(
            py.get_type::<pyo3::types::PyTuple>()
                .getattr("__new__")
                .map_err(|e| tx.err(e))?
                .unbind(),
            vec![
                OutTemplate::Const(n.cls.clone_ref(py)),
                OutTemplate::Tuple(items),
            ],
        )
    } else {
        OutTemplate::NamedTuple(n.cls.clone_ref(py), n.structseq, items)
    })
}

/// Where a value rebuilt after the graph (returned, or live across a break) takes its
/// parts from: the graph's outputs and the objects the guard tree fetches by source on each
/// call. Each family's `reconstruct` verb builds its values' templates through it.
pub struct Rebuild<'a> {
    pub outputs: &'a mut Vec<Py<PyAny>>,
    pub extra: &'a mut Vec<Arc<Source>>,
}

impl Rebuild<'_> {
    /// The object at `s`, fetched on each call (once however often it is used).
    pub fn fetch(&mut self, s: &Arc<Source>) -> OutTemplate {
        let i = self.extra.iter().position(|e| e == s).unwrap_or_else(|| {
            self.extra.push(s.clone());
            self.extra.len() - 1
        });
        OutTemplate::Fetched(i)
    }

    /// A graph value as one of the graph's outputs (once however often it is used).
    pub fn graph_output(&mut self, py: Python<'_>, var: &Py<PyAny>) -> OutTemplate {
        let i = self
            .outputs
            .iter()
            .position(|o| o.is(var))
            .unwrap_or_else(|| {
                self.outputs.push(var.clone_ref(py));
                self.outputs.len() - 1
            });
        OutTemplate::Graph(i)
    }

    /// The template of a part (`template_for`).
    pub fn value(&mut self, tx: &mut Tracer<'_>, v: &Value) -> TResult<OutTemplate> {
        template_for(tx, v, self.outputs, self.extra)
    }

    /// The templates of several parts.
    pub fn values<'v>(
        &mut self,
        tx: &mut Tracer<'_>,
        vs: impl IntoIterator<Item = &'v Value>,
    ) -> TResult<Vec<OutTemplate>> {
        vs.into_iter().map(|v| self.value(tx, v)).collect()
    }
}

/// How `v` is rebuilt after the graph: an object with identity made or changed in the trace
/// through the per-call object table (`side_effects::table::escape`), anything else by its
/// family's `reconstruct` verb.
pub fn template_for(
    tx: &mut Tracer<'_>,
    v: &Value,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<OutTemplate> {
    let _depth = tx.nesting()?;
    if let Some(t) = crate::side_effects::table::escape(tx, v, outputs, extra)? {
        return Ok(t);
    }
    super::families::reconstruct(tx, v, &mut Rebuild { outputs, extra })
}

/// `iter(...)`/`enumerate(...)`/`zip(...)` rebuilding a traced iterator in its current
/// state (a user iterator object is itself).
pub fn iter_template(
    tx: &mut Tracer<'_>,
    it: &std::cell::RefCell<IterVal>,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<OutTemplate> {
    let py = tx.py;
    let iter_fn = tx.hooks.b.iter.clone_ref(py);
    Ok(match &*it.borrow() {
        // The real iterator (advanced after the graph by the replayed `__setstate__`).
        IterVal::Dunder(obj) | IterVal::Real { obj, .. } => template_for(tx, obj, outputs, extra)?,
        IterVal::Range { next, stop, step } => {
            let r = tx
                .hooks
                .b
                .range
                .bind(py)
                .call1((*next, *stop, *step))
                .map_err(|e| tx.err(e))?;
            OutTemplate::Call(iter_fn, vec![OutTemplate::Const(r.unbind())])
        }
        IterVal::Items { items, pos } => {
            let rest = items[(*pos).min(items.len())..]
                .iter()
                .map(|i| template_for(tx, i, outputs, extra))
                .collect::<TResult<Vec<_>>>()?;
            OutTemplate::Call(iter_fn, vec![OutTemplate::Tuple(rest)])
        }
        IterVal::Enumerate { inner, count } => {
            let inner = template_for(tx, inner, outputs, extra)?;
            let count = Value::constant(py, *count);
            let count = template_for(tx, &count, outputs, extra)?;
            OutTemplate::Call(tx.hooks.b.enumerate.clone_ref(py), vec![inner, count])
        }
        IterVal::Zip { inners, .. } => {
            let inners = inners
                .iter()
                .map(|i| template_for(tx, i, outputs, extra))
                .collect::<TResult<Vec<_>>>()?;
            OutTemplate::Call(tx.hooks.b.zip.clone_ref(py), inners)
        }
    })
}

impl OutTemplate {
    /// Build the Python value from the graph's outputs and the fetched objects.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        outputs: &Bound<'py, PyAny>,
        fetched: &[Py<PyAny>],
    ) -> PyResult<Bound<'py, PyAny>> {
        self.build_with(py, outputs, fetched, &[])
    }

    /// `build`, with the objects the replay plan built for this call.
    pub fn build_with<'py>(
        &self,
        py: Python<'py>,
        outputs: &Bound<'py, PyAny>,
        fetched: &[Py<PyAny>],
        objs: &[Py<PyAny>],
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            OutTemplate::Obj(i) => objs.get(*i).map(|o| o.bind(py).clone()).ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err("ferrodyn: missing rebuilt object")
            })?,
            OutTemplate::Graph(i) => match outputs.cast::<PyTuple>() {
                // The usual case (an FX graph returns a tuple): no index object, no lookup.
                Ok(t) if *i < t.len() => t.get_item(*i)?,
                _ => outputs.get_item(*i)?,
            },
            OutTemplate::Const(c) => c.bind(py).clone(),
            OutTemplate::Fetched(i) => {
                fetched.get(*i).map(|o| o.bind(py).clone()).ok_or_else(|| {
                    pyo3::exceptions::PyRuntimeError::new_err("ferrodyn: missing fetched value")
                })?
            }
            OutTemplate::Tuple(items) => {
                let v: Vec<_> = items
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, objs))
                    .collect::<PyResult<_>>()?;
                PyTuple::new(py, v)?.into_any()
            }
            OutTemplate::NamedTuple(cls, structseq, items) => {
                let v: Vec<_> = items
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, objs))
                    .collect::<PyResult<_>>()?;
                let t = PyTuple::new(py, v)?;
                if *structseq {
                    cls.bind(py).call1((t,))?
                } else {
                    cls.bind(py).call1(t)?
                }
            }
            OutTemplate::Call(f, args) => {
                let v: Vec<_> = args
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, objs))
                    .collect::<PyResult<_>>()?;
                f.bind(py).call1(PyTuple::new(py, v)?)?
            }
            OutTemplate::List(items) => {
                let v: Vec<_> = items
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, objs))
                    .collect::<PyResult<_>>()?;
                PyList::new(py, v)?.into_any()
            }
            OutTemplate::Dict(items) => {
                let d = PyDict::new(py);
                for (k, t) in items {
                    d.set_item(k.bind(py), t.build_with(py, outputs, fetched, objs)?)?;
                }
                d.into_any()
            }
        })
    }
}

pub fn py_attr(tx: &Tracer<'_>, module: &str, name: &str) -> TResult<Py<PyAny>> {
    tx.py
        .import_cached(module)
        .and_then(|m| m.getattr(name))
        .map(|o| o.unbind())
        .map_err(|e| tx.err(e))
}

/// An id() the trace made up for an object it created (builtins.rs) cannot leave it: the
/// real object's id is only known at run time.
pub fn no_fake_id(tx: &Tracer<'_>, c: &Py<PyAny>) -> TResult<()> {
    if c.bind(tx.py).get_type().is(tx.hooks.fake_id.bind(tx.py)) {
        return Err(Exit::brk(
            "an id() of an object created in the compiled region leaves it",
        ));
    }
    Ok(())
}
