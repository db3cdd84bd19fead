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

pub fn template_for(
    tx: &mut Tracer<'_>,
    v: &Value,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<OutTemplate> {
    let _depth = tx.nesting()?;
    let py = tx.py;
    if let Some(t) = crate::side_effects::table::escape(tx, v, outputs, extra)? {
        return Ok(t);
    }
    let fetch = |s: &Arc<Source>, extra: &mut Vec<Arc<Source>>| {
        let i = extra.iter().position(|e| e == s).unwrap_or_else(|| {
            extra.push(s.clone());
            extra.len() - 1
        });
        OutTemplate::Fetched(i)
    };
    Ok(match v {
        Value::Tensor(var) => {
            use crate::interp::tensor_subclass::{leaves, Leaves};
            match crate::interp::numpy_arrays::leaves(tx, v)? {
                Some(crate::interp::numpy_arrays::Leaves::Input(src)) => return Ok(fetch(&src, extra)),
                Some(crate::interp::numpy_arrays::Leaves::Computed(to_numpy)) => {
                    let i = outputs.iter().position(|o| o.is(var)).unwrap_or_else(|| {
                        outputs.push(var.clone_ref(py));
                        outputs.len() - 1
                    });
                    return Ok(OutTemplate::Call(to_numpy, vec![OutTemplate::Graph(i)]));
                }
                None => {}
            }
            let leaving = leaves(tx, v);
            if let Some(Leaves::Input(src)) = &leaving {
                return Ok(fetch(src, extra));
            }
            let i = outputs.iter().position(|o| o.is(var)).unwrap_or_else(|| {
                outputs.push(var.clone_ref(py));
                outputs.len() - 1
            });
            match leaving {
                // A tensor-subclass instance computed in the graph.
                Some(Leaves::Computed(cls)) => OutTemplate::Call(
                    py_attr(tx, "torch._C", "TensorBase")?
                        .bind(py)
                        .getattr("as_subclass")
                        .map_err(|e| tx.err(e))?
                        .unbind(),
                    vec![OutTemplate::Graph(i), OutTemplate::Const(cls)],
                ),
                _ => OutTemplate::Graph(i),
            }
        }
        Value::Const(c) => {
            no_fake_id(tx, c)?;
            OutTemplate::Const(c.clone_ref(py))
        }
        Value::NamedTuple(n) => named_tuple_template(tx, n, outputs, extra)?,
        Value::Tuple(items) => OutTemplate::Tuple(items.iter().map(|i| template_for(tx, i, outputs, extra)).collect::<TResult<_>>()?),
        Value::List(l) => match &l.source {
            Some(s) => fetch(s, extra),
            None => OutTemplate::List(l.items.borrow().iter().map(|i| template_for(tx, i, outputs, extra)).collect::<TResult<_>>()?),
        },
        Value::Dict(d) => match &d.source {
            Some(s) => fetch(s, extra),
            None => OutTemplate::Dict(
                d.entries
                    .borrow()
                    .iter()
                    .map(|(k, i)| {
                        no_fake_id(tx, k)?;
                        Ok((k.clone_ref(py), template_for(tx, i, outputs, extra)?))
                    })
                    .collect::<TResult<_>>()?,
            ),
        },
        // An entry of a dict from the inputs the trace never read: the same object.
        Value::Lazy(l) => fetch(&l.source, extra),
        Value::Object(_) if crate::interp::random_objects::is_trace_random(tx, v) => {
            let (make, state) = crate::interp::random_objects::template(tx, v)?
                .ok_or_else(|| Exit::internal("random generator template"))?;
            OutTemplate::Call(make, vec![OutTemplate::Const(state)])
        }
        Value::Object(o) => match &o.source {
            Some(s) => fetch(s, extra),
            None if o.obj.is(&tx.hooks.pending_traceback) => {
                return Err(Exit::brk(
                    "the traceback of an exception raised in the compiled region leaves it",
                ))
            }
            None => OutTemplate::Const(o.obj.clone_ref(py)),
        },
        Value::Function(f) => match (&f.source, &f.obj) {
            (Some(s), _) => fetch(s, extra),
            (None, Some(o)) => OutTemplate::Const(o.clone_ref(py)),
            (None, None) => return Err(Exit::brk("returning a function created in the compiled region (rebuilding it is not supported yet)")),
        },
        Value::Slice(_) => match tx.as_python_constant(v) {
            Some(c) => OutTemplate::Const(c.unbind()),
            None => return Err(Exit::brk("returning a slice of tensors")),
        },
        Value::BoundMethod(m) => {
            let f = template_for(tx, &m.1, outputs, extra)?;
            let this = template_for(tx, &m.0, outputs, extra)?;
            OutTemplate::Call(py_attr(tx, "types", "MethodType")?, vec![f, this])
        }
        Value::BuiltinMethod(m) => match &m.0 {
            Value::GradMode(prev) => {
                let helper = py_attr(tx, "ferrodyn._glue", "GradModeExit")?;
                let obj = helper.bind(py).call1((*prev,)).map_err(|e| tx.err(e))?;
                OutTemplate::Const(obj.unbind())
            }
            recv => {
                let r = template_for(tx, recv, outputs, extra)?;
                let name = pyo3::types::PyString::new(py, &m.1).into_any().unbind();
                // On a user object it is the C method under any Python override (reached
                // through super()): `getattr` would find the override again.
                let get = if matches!(recv, Value::Object(_)) {
                    py_attr(tx, "ferrodyn._glue", "builtin_method")?
                } else {
                    tx.hooks.b.getattr.clone_ref(py)
                };
                OutTemplate::Call(get, vec![r, OutTemplate::Const(name)])
            }
        },
        Value::Iter(it) => iter_template(tx, it, outputs, extra)?,
        // `super()` escaping: `super(cls, receiver)` again, after the graph.
        Value::Super(s) => {
            let recv = template_for(tx, &s.1, outputs, extra)?;
            OutTemplate::Call(
                tx.hooks.super_type.clone_ref(py),
                vec![OutTemplate::Const(s.0.clone_ref(py)), recv],
            )
        }
        other => return Err(Exit::brk(format!("returning a '{}' from the compiled region", other.type_name(py)))),
    })
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

fn py_attr(tx: &Tracer<'_>, module: &str, name: &str) -> TResult<Py<PyAny>> {
    tx.py
        .import_cached(module)
        .and_then(|m| m.getattr(name))
        .map(|o| o.unbind())
        .map_err(|e| tx.err(e))
}

/// An id() the trace made up for an object it created (builtins.rs) cannot leave it: the
/// real object's id is only known at run time.
fn no_fake_id(tx: &Tracer<'_>, c: &Py<PyAny>) -> TResult<()> {
    if c.bind(tx.py).get_type().is(tx.hooks.fake_id.bind(tx.py)) {
        return Err(Exit::brk(
            "an id() of an object created in the compiled region leaves it",
        ));
    }
    Ok(())
}
