//! The per-call object table: objects, lists, dicts, closure cells and functions created
//! in the trace that escape it (returned, stored into existing state) are rebuilt once per
//! call, and every reference to one (`OutTemplate::Obj(i)`) uses the same built object, so
//! identity holds and an object referenced from several places is built once.
//!
//! Building runs in two phases: first every entry is allocated empty (objects via
//! `object.__new__`, `[]`, `{}`, empty cells; functions after them, dependencies first),
//! then contents are filled in. Cycles through objects, containers and cells are fine.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::store::ptr_of;
use crate::guards::Source;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{template_for, OutTemplate};
use crate::interp::tracer::Tracer;
use crate::interp::value::{FuncVal, IterVal, Value};

pub enum Entry {
    /// Being registered (never seen by `build`).
    Pending,
    /// A user object: `object.__new__(cls)`, then `object.__setattr__` per attribute.
    Object {
        cls: Py<PyAny>,
        attrs: Vec<(String, OutTemplate)>,
    },
    List(Vec<OutTemplate>),
    Dict(Vec<(Py<PyAny>, OutTemplate)>),
    Cell(Option<OutTemplate>),
    /// Allocated by `alloc(arg)`, then filled by `fill(obj, *parts)` (exceptions).
    Custom {
        alloc: Py<PyAny>,
        arg: Py<PyAny>,
        fill: Py<PyAny>,
        parts: Vec<OutTemplate>,
    },
    /// `types.FunctionType(code, globals, None, defaults, closure)` + `__kwdefaults__`.
    Function {
        code: Py<PyAny>,
        globals: Py<PyAny>,
        defaults: Vec<OutTemplate>,
        kwdefaults: Vec<(String, OutTemplate)>,
        closure: Vec<OutTemplate>,
        /// The flat `(name, value, ...)` annotations tuple, set as `__annotations__`.
        annotations: Option<OutTemplate>,
        /// Attributes set in the trace (`setattr` after creation, in order).
        attrs: Vec<(String, OutTemplate)>,
    },
    /// A stdlib container (deque, set, OrderedDict, defaultdict): `alloc()`, then
    /// `obj.attr = ...` for each attribute and `obj.<method>(fill)` (interp/stdlib.rs).
    Filled {
        alloc: Py<PyAny>,
        attrs: Vec<(String, OutTemplate)>,
        fill: Option<(String, OutTemplate)>,
    },
    /// `f(*args, **kwargs)` (functools.partial, operator.itemgetter), built with the
    /// functions, after what it refers to.
    Call {
        f: Py<PyAny>,
        args: Vec<OutTemplate>,
        kwargs: Vec<(String, OutTemplate)>,
    },
}

#[derive(Default)]
pub struct ObjectTable {
    pub entries: Vec<Entry>,
    /// Functions in dependency order (a function's defaults are built before it).
    pub func_order: Vec<usize>,
    index: HashMap<usize, usize>,
}

/// A fetch slot (index into the values fetched after the graph inputs) for `s`.
pub fn fetch_slot(s: &Arc<Source>, extra: &mut Vec<Arc<Source>>) -> usize {
    extra.iter().position(|e| e == s).unwrap_or_else(|| {
        extra.push(s.clone());
        extra.len() - 1
    })
}

/// The template for `v` if it is a new object that must be rebuilt through the table.
pub fn escape(
    tx: &mut Tracer<'_>,
    v: &Value,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<Option<OutTemplate>> {
    // A mirror of a pre-existing set: the set itself.
    if let Value::Std(s) = v {
        if let crate::interp::stdlib::StdVal::Set(set) = &**s {
            if let Some(src) = set.source() {
                return Ok(Some(OutTemplate::Fetched(fetch_slot(src, extra))));
            }
        }
    }
    let key = match v {
        Value::Object(o) if tx.side_effects.is_new(ptr_of(&o.obj)) => ptr_of(&o.obj),
        Value::List(l) if l.source.is_none() => Rc::as_ptr(l) as usize,
        Value::Dict(d) if d.source.is_none() => Rc::as_ptr(d) as usize,
        Value::Function(f) if f.obj.is_none() => Rc::as_ptr(f) as usize,
        Value::Cell(c) => Rc::as_ptr(c) as usize,
        Value::Exception(e) => Rc::as_ptr(e) as usize,
        Value::Std(s) => Rc::as_ptr(s) as usize,
        // A tuple that leaves through several references: one object for all of them.
        Value::Tuple(t)
            if tx
                .shared_tuples
                .contains(&(Rc::as_ptr(t) as *const u8 as usize)) =>
        {
            Rc::as_ptr(t) as *const u8 as usize
        }
        // A returned generator, run to its end in the trace: an iterator over its rest.
        Value::Generator(g) if g.drained.borrow().is_some() => Rc::as_ptr(g) as usize,
        // A namedtuple whose instances take attributes (a subclass without `__slots__`):
        // an attribute stored on it after a break must land on the one object.
        Value::NamedTuple(n) if instances_have_dict(tx.py, &n.cls) => Rc::as_ptr(n) as usize,
        // A traced iterator has identity too (a `for` loop's iterator also bound to a
        // local: both must be the same rebuilt object).
        Value::Iter(it) if !matches!(*it.borrow(), IterVal::Dunder(_)) => Rc::as_ptr(it) as usize,
        _ => return Ok(None),
    };
    if let Some(&i) = tx.side_effects.table.index.get(&key) {
        return Ok(Some(OutTemplate::Obj(i)));
    }
    let table = &mut tx.side_effects.table;
    let i = table.entries.len();
    table.entries.push(Entry::Pending);
    table.index.insert(key, i);
    let entry = match crate::interp::stdlib_out::table_entry(tx, v, outputs, extra)? {
        Some(e) => e,
        None => regular_entry(tx, v, outputs, extra)?,
    };
    let is_fn = matches!(entry, Entry::Function { .. } | Entry::Call { .. });
    let table = &mut tx.side_effects.table;
    table.entries[i] = entry;
    if is_fn {
        table.func_order.push(i);
    }
    Ok(Some(OutTemplate::Obj(i)))
}

fn regular_entry(
    tx: &mut Tracer<'_>,
    v: &Value,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<Entry> {
    Ok(match v {
        Value::Object(o) => {
            let py = tx.py;
            let (cls, attrs) = {
                let n = tx
                    .side_effects
                    .new_object(ptr_of(&o.obj))
                    .ok_or_else(|| Exit::internal("new object vanished"))?;
                (n.cls.clone_ref(py), n.attrs.clone())
            };
            if tx
                .hooks
                .trace_only
                .bind(py)
                .contains(cls.bind(py))
                .unwrap_or(true)
            {
                return Err(Exit::brk(format!(
                    "a {} stand-in made in the compiled region leaves it",
                    tx.describe(cls.bind(py))
                )));
            }
            let key = o.obj.as_ptr() as usize;
            // The contents as a tuple of items or of (key, value) pairs, built when the
            // object is filled (a list or dict entry of the table could be filled after it).
            let contents = match (tx.seq_shadows.get(&key), tx.dict_shadows.get(&key)) {
                (Some(l), _) => Some((Value::new_tuple(l.items.borrow().clone()), "list")),
                (None, Some(d)) => Some((
                    Value::new_tuple(
                        d.snapshot(py)
                            .into_iter()
                            .map(|(k, v)| Value::new_tuple(vec![Value::Const(k), v]))
                            .collect(),
                    ),
                    "dict",
                )),
                _ => None,
            };
            if let Some((contents, base)) = contents {
                // A list/dict subclass: `base.__new__(cls)`, then its contents and attributes
                // (`variables.fill_container_object`).
                let names: Vec<String> = attrs.iter().map(|(k, _)| k.clone()).collect();
                let names = Value::Const(
                    pyo3::types::PyTuple::new(py, names)
                        .map_err(|e| tx.err(e))?
                        .into_any()
                        .unbind(),
                );
                let mut parts = vec![
                    template_for(tx, &names, outputs, extra)?,
                    template_for(tx, &contents, outputs, extra)?,
                ];
                for (_, a) in attrs {
                    parts.push(template_for(tx, &a, outputs, extra)?);
                }
                let base = if base == "list" {
                    &tx.hooks.b.list
                } else {
                    &tx.hooks.b.dict
                };
                let alloc = base
                    .bind(py)
                    .getattr("__new__")
                    .map_err(|e| tx.err(e))?
                    .unbind();
                return Ok(Entry::Custom {
                    alloc,
                    arg: cls,
                    fill: tx.hooks.fill_container.clone_ref(py),
                    parts,
                });
            }
            let mut ts = Vec::with_capacity(attrs.len());
            for (k, a) in attrs {
                ts.push((k, template_for(tx, &a, outputs, extra)?));
            }
            Entry::Object { cls, attrs: ts }
        }
        Value::List(l) => {
            let items = l.items.borrow().clone();
            Entry::List(
                items
                    .iter()
                    .map(|x| template_for(tx, x, outputs, extra))
                    .collect::<TResult<_>>()?,
            )
        }
        Value::Dict(d) => {
            let py = tx.py;
            let items: Vec<_> = d.snapshot(py);
            let mut ts = Vec::with_capacity(items.len());
            for (k, x) in items {
                ts.push((k, template_for(tx, &x, outputs, extra)?));
            }
            Entry::Dict(ts)
        }
        Value::Cell(c) => {
            let contents = c.borrow().clone();
            Entry::Cell(match contents {
                Some(x) => Some(template_for(tx, &x, outputs, extra)?),
                None => None,
            })
        }
        Value::Function(f) => {
            let py = tx.py;
            let trace_only = tx
                .hooks
                .trace_only
                .bind(py)
                .contains(f.spec.code.bind(py))
                .unwrap_or(true);
            if trace_only {
                return Err(Exit::brk(
                    "an object the trace models as a function (an nn.CrossEntropyLoss made in \
                     the compiled region) leaves it",
                ));
            }
            function_entry(tx, f, outputs, extra)?
        }
        Value::Exception(e) => crate::interp::exceptions::table_parts(tx, e, outputs, extra)?,
        Value::Iter(it) => match crate::interp::output::iter_template(tx, it, outputs, extra)? {
            OutTemplate::Call(f, args) => Entry::Call {
                f,
                args,
                kwargs: Vec::new(),
            },
            _ => return Err(Exit::internal("escape: iterator not rebuilt by a call")),
        },
        Value::Tuple(items) => {
            let parts = items
                .iter()
                .map(|i| template_for(tx, i, outputs, extra))
                .collect::<TResult<Vec<_>>>()?;
            Entry::Call {
                f: tx.py.get_type::<PyTuple>().into_any().unbind(),
                args: vec![OutTemplate::List(parts)],
                kwargs: Vec::new(),
            }
        }
        Value::Generator(g) => {
            let items: Vec<Value> = g.drained.borrow().clone().unwrap_or_default();
            let rest = items
                .iter()
                .map(|i| template_for(tx, i, outputs, extra))
                .collect::<TResult<Vec<_>>>()?;
            Entry::Call {
                f: tx.hooks.b.iter.clone_ref(tx.py),
                args: vec![OutTemplate::Tuple(rest)],
                kwargs: Vec::new(),
            }
        }
        Value::NamedTuple(n) if !n.attrs.borrow().is_empty() => {
            // `with_attrs(cls(*items), names, values)`: the instance dict after the build.
            let py = tx.py;
            let built = crate::interp::output::named_tuple_template(tx, n, outputs, extra)?;
            let attrs: Vec<(String, Value)> = n.attrs.borrow().clone();
            let mut values = Vec::with_capacity(attrs.len());
            for (_, v) in &attrs {
                values.push(template_for(tx, v, outputs, extra)?);
            }
            let names =
                PyTuple::new(py, attrs.iter().map(|(k, _)| k.as_str())).map_err(|e| tx.err(e))?;
            let helper = py
                .import("ferrodyn._glue")
                .and_then(|m| m.getattr("with_attrs"))
                .map_err(|e| tx.err(e))?;
            Entry::Call {
                f: helper.unbind(),
                args: vec![
                    built,
                    OutTemplate::Const(names.into_any().unbind()),
                    OutTemplate::Tuple(values),
                ],
                kwargs: Vec::new(),
            }
        }
        Value::NamedTuple(n) => {
            match crate::interp::output::named_tuple_template(tx, n, outputs, extra)? {
                OutTemplate::Call(f, args) => Entry::Call {
                    f,
                    args,
                    kwargs: Vec::new(),
                },
                OutTemplate::NamedTuple(cls, structseq, items) => Entry::Call {
                    f: cls,
                    args: if structseq {
                        vec![OutTemplate::Tuple(items)]
                    } else {
                        items
                    },
                    kwargs: Vec::new(),
                },
                _ => return Err(Exit::internal("escape: namedtuple not rebuilt by a call")),
            }
        }
        _ => return Err(Exit::internal("escape: unexpected value")),
    })
}

/// Whether instances of `cls` have a `__dict__` (a class without `__slots__` all the way up).
pub fn instances_have_dict(py: Python<'_>, cls: &Py<PyAny>) -> bool {
    cls.bind(py)
        .getattr("__dictoffset__")
        .and_then(|o| o.extract::<isize>())
        .map(|o| o != 0)
        .unwrap_or(false)
}

fn function_entry(
    tx: &mut Tracer<'_>,
    f: &FuncVal,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<Entry> {
    let py = tx.py;
    let mut defaults = Vec::new();
    for d in f.defaults.clone().unwrap_or_default() {
        defaults.push(template_for(tx, &d, outputs, extra)?);
    }
    let mut kwdefaults = Vec::new();
    for (k, d) in f.kwdefaults.clone().unwrap_or_default() {
        kwdefaults.push((k, template_for(tx, &d, outputs, extra)?));
    }
    let mut closure = Vec::new();
    for c in &f.closure {
        closure.push(match c {
            Value::ExternalCell(ec) => {
                // `fn.__closure__[i].cell_contents`: the real cell is one step up.
                let cell_src = ec
                    .source
                    .as_ref()
                    .and_then(|s| s.base().cloned())
                    .ok_or_else(|| {
                        Exit::brk("returning a function that closes over an unreachable cell")
                    })?;
                OutTemplate::Fetched(fetch_slot(&cell_src, extra))
            }
            Value::Cell(_) => template_for(tx, c, outputs, extra)?,
            other => {
                return Err(Exit::brk(format!(
                    "returning a function whose closure holds a '{}'",
                    other.type_name(py)
                )))
            }
        });
    }
    let annotations = match &f.annotations {
        Some(a) => Some(template_for(tx, a, outputs, extra)?),
        None => None,
    };
    let mut attrs = Vec::new();
    for (k, v) in f.attrs.borrow().clone() {
        attrs.push((k, template_for(tx, &v, outputs, extra)?));
    }
    Ok(Entry::Function {
        code: f.spec.code.clone_ref(py),
        globals: f.globals.clone_ref(py),
        defaults,
        kwdefaults,
        closure,
        annotations,
        attrs,
    })
}

impl ObjectTable {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Build every entry for one call.
    pub fn build(
        &self,
        py: Python<'_>,
        outputs: &Bound<'_, PyAny>,
        fetched: &[Py<PyAny>],
    ) -> PyResult<Vec<Py<PyAny>>> {
        let mut objs: Vec<Py<PyAny>> = Vec::with_capacity(self.entries.len());
        if self.entries.is_empty() {
            return Ok(objs);
        }
        let h = crate::interp::hooks::hooks(py)?;
        let object = h.object.bind(py);
        let types = h.types.bind(py);
        for e in &self.entries {
            objs.push(match e {
                Entry::Object { cls, .. } => {
                    object.call_method1("__new__", (cls.bind(py),))?.unbind()
                }
                Entry::List(_) => PyList::empty(py).into_any().unbind(),
                Entry::Dict(_) => PyDict::new(py).into_any().unbind(),
                Entry::Cell(_) => types.getattr("CellType")?.call0()?.unbind(),
                Entry::Custom { alloc, arg, .. } => alloc.bind(py).call1((arg.bind(py),))?.unbind(),
                Entry::Filled { alloc, .. } => alloc.bind(py).call0()?.unbind(),
                Entry::Function { .. } | Entry::Call { .. } | Entry::Pending => py.None(),
            });
        }
        for &i in &self.func_order {
            if let Entry::Call { f, args, kwargs } = &self.entries[i] {
                let a: Vec<_> = args
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, &objs))
                    .collect::<PyResult<_>>()?;
                let kw = PyDict::new(py);
                for (k, t) in kwargs {
                    kw.set_item(k, t.build_with(py, outputs, fetched, &objs)?)?;
                }
                objs[i] = f.bind(py).call(PyTuple::new(py, a)?, Some(&kw))?.unbind();
                continue;
            }
            let Entry::Function {
                code,
                globals,
                defaults,
                kwdefaults,
                closure,
                annotations,
                attrs,
            } = &self.entries[i]
            else {
                continue;
            };
            let build = |ts: &[OutTemplate]| -> PyResult<Bound<'_, PyAny>> {
                let v: Vec<_> = ts
                    .iter()
                    .map(|t| t.build_with(py, outputs, fetched, &objs))
                    .collect::<PyResult<_>>()?;
                Ok(PyTuple::new(py, v)?.into_any())
            };
            let defs = if defaults.is_empty() {
                py.None().into_bound(py)
            } else {
                build(defaults)?
            };
            let cells = if closure.is_empty() {
                py.None().into_bound(py)
            } else {
                build(closure)?
            };
            let f = types.getattr("FunctionType")?.call1((
                code.bind(py),
                globals.bind(py),
                py.None(),
                defs,
                cells,
            ))?;
            if !kwdefaults.is_empty() {
                let d = PyDict::new(py);
                for (k, t) in kwdefaults {
                    d.set_item(k, t.build_with(py, outputs, fetched, &objs)?)?;
                }
                f.setattr("__kwdefaults__", d)?;
            }
            if let Some(a) = annotations {
                let flat = a.build_with(py, outputs, fetched, &objs)?;
                let d = PyDict::new(py);
                let items: Vec<Bound<'_, PyAny>> = flat.try_iter()?.collect::<PyResult<_>>()?;
                for pair in items.chunks(2) {
                    if let [k, v] = pair {
                        d.set_item(k, v)?;
                    }
                }
                f.setattr("__annotations__", d)?;
            }
            for (k, t) in attrs {
                f.setattr(k.as_str(), t.build_with(py, outputs, fetched, &objs)?)?;
            }
            objs[i] = f.unbind();
        }
        for (i, e) in self.entries.iter().enumerate() {
            let o = objs[i].bind(py);
            match e {
                Entry::Object { attrs, .. } => {
                    for (k, t) in attrs {
                        let v = t.build_with(py, outputs, fetched, &objs)?;
                        object.call_method1("__setattr__", (o, k, v))?;
                    }
                }
                Entry::List(items) => {
                    let l = o.cast::<PyList>()?;
                    for t in items {
                        l.append(t.build_with(py, outputs, fetched, &objs)?)?;
                    }
                }
                Entry::Dict(items) => {
                    let d = o.cast::<PyDict>()?;
                    for (k, t) in items {
                        d.set_item(k.bind(py), t.build_with(py, outputs, fetched, &objs)?)?;
                    }
                }
                Entry::Custom { fill, parts, .. } => {
                    let mut all = vec![o.clone()];
                    for t in parts {
                        all.push(t.build_with(py, outputs, fetched, &objs)?);
                    }
                    fill.bind(py).call1(PyTuple::new(py, all)?)?;
                }
                Entry::Filled { attrs, fill, .. } => {
                    for (k, t) in attrs {
                        o.setattr(k.as_str(), t.build_with(py, outputs, fetched, &objs)?)?;
                    }
                    if let Some((m, t)) = fill {
                        o.call_method1(m.as_str(), (t.build_with(py, outputs, fetched, &objs)?,))?;
                    }
                }
                Entry::Cell(Some(t)) => {
                    o.setattr("cell_contents", t.build_with(py, outputs, fetched, &objs)?)?;
                }
                _ => {}
            }
        }
        Ok(objs)
    }
}
