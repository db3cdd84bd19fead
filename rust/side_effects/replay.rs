//! The replay plan: what the runtime does right after the compiled graph returns and
//! before it builds the return value. It builds the escaping new objects (table.rs), then
//! applies the recorded mutations in program order. Operands are templates over the
//! graph's outputs, values fetched by source on each call, constants and the object table.
//!
//! Before the graph runs, `precheck` verifies that pre-existing mutable objects alias each
//! other on this call exactly as they did while tracing (a write through one name must be
//! seen through another only if they are the same object); if not, the call runs eagerly.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::ImportCached;

use crate::interp::stdlib_set::SetOp;
use pyo3::types::{PyDict, PyList};

use super::store::Mutation;
use super::table::{fetch_slot, ObjectTable};
use crate::guards::Source;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{template_for, OutTemplate};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub enum Op {
    /// The last field: written into the instance dict (past a class data descriptor).
    SetAttr(OutTemplate, String, OutTemplate, bool),
    DelAttr(OutTemplate, String),
    ListContents(OutTemplate, Vec<OutTemplate>),
    /// A set's new contents (constants).
    /// A set's changes, one by one, as eager made them.
    SetOps(OutTemplate, Vec<SetOp>),
    DictContents(OutTemplate, Vec<(Py<PyAny>, OutTemplate)>),
    SetGlobal(Py<PyAny>, String, OutTemplate),
    DelGlobal(Py<PyAny>, String),
    SetCell(OutTemplate, OutTemplate),
    Print(Vec<OutTemplate>, Vec<(String, OutTemplate)>),
    /// A tuple/list iterator advanced by `n` items (`it.__setstate__(position + n)`), or
    /// a dict iterator stepped `n` times.
    Advance(OutTemplate, usize),
}

#[derive(Default)]
pub struct ReplayPlan {
    pub objects: ObjectTable,
    pub ops: Vec<Op>,
    /// (fetch slot, identity class while tracing) of every pre-existing mutable object the
    /// trace read, when the trace mutates pre-existing objects; empty otherwise.
    alias: Vec<(usize, usize)>,
}

/// Turn the store's log into a plan. Runs after the return value's template, sharing its
/// graph outputs, fetch list and object table.
pub fn plan(
    tx: &mut Tracer<'_>,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<ReplayPlan> {
    let py = tx.py;
    let check_aliases = tx.side_effects.mutates_existing_objects();
    let log = std::mem::take(&mut tx.side_effects.log);
    let mut ops = Vec::with_capacity(log.len());
    macro_rules! tmpl {
        ($tx:expr, $v:expr) => {
            template_for($tx, $v, outputs, extra)
        };
    }
    for m in &log {
        ops.push(match m {
            Mutation::SetAttr {
                target,
                name,
                value,
                raw,
            } => Op::SetAttr(tmpl!(tx, target)?, name.clone(), tmpl!(tx, value)?, *raw),
            Mutation::DelAttr { target, name } => Op::DelAttr(tmpl!(tx, target)?, name.clone()),
            Mutation::IterAdvance {
                target,
                mirror,
                start,
            } => {
                let consumed = match mirror {
                    Value::Iter(it) => match &*it.borrow() {
                        crate::interp::value::IterVal::Real { consumed, .. } => *consumed,
                        _ => return Err(Exit::internal("iterator mirror of an unexpected kind")),
                    },
                    _ => return Err(Exit::internal("iterator mirror is not an iterator")),
                };
                let _ = start;
                Op::Advance(tmpl!(tx, target)?, consumed)
            }
            Mutation::SetContents(set) => {
                let target = tmpl!(tx, &Value::Std(set.clone()))?;
                let crate::interp::stdlib::StdVal::Set(sv) = &**set else {
                    return Err(Exit::internal("set contents of a non-set"));
                };
                let ops = sv
                    .replay_ops(py)
                    .ok_or_else(|| Exit::brk("a set from the inputs given non-constant members"))?;
                Op::SetOps(target, ops)
            }
            Mutation::ListContents(l) => {
                let target = tmpl!(tx, &Value::List(l.clone()))?;
                let items = l.items.borrow().clone();
                let items = items.iter().map(|v| tmpl!(tx, v)).collect::<TResult<_>>()?;
                Op::ListContents(target, items)
            }
            Mutation::DictContents(d) => {
                let target = tmpl!(tx, &Value::Dict(d.clone()))?;
                let items: Vec<_> = d.snapshot(py);
                let mut ts = Vec::with_capacity(items.len());
                for (k, v) in items {
                    ts.push((k, tmpl!(tx, &v)?));
                }
                Op::DictContents(target, ts)
            }
            Mutation::Global {
                globals,
                name,
                value,
            } => match value {
                Some(v) => Op::SetGlobal(globals.clone_ref(py), name.clone(), tmpl!(tx, v)?),
                None => Op::DelGlobal(globals.clone_ref(py), name.clone()),
            },
            Mutation::Cell { cell, value } => {
                let src = cell
                    .source
                    .as_ref()
                    .and_then(|s| s.base().cloned())
                    .ok_or_else(|| {
                        Exit::brk("assignment to a closure cell that cannot be reached")
                    })?;
                let slot = OutTemplate::Fetched(fetch_slot(&src, extra));
                Op::SetCell(slot, tmpl!(tx, value)?)
            }
            Mutation::Print { args, kwargs } => {
                let a = args.iter().map(|v| tmpl!(tx, v)).collect::<TResult<_>>()?;
                let mut k = Vec::with_capacity(kwargs.len());
                for (n, v) in kwargs {
                    k.push((n.clone(), tmpl!(tx, v)?));
                }
                Op::Print(a, k)
            }
        });
    }
    let mut alias = Vec::new();
    if check_aliases {
        let mut class_of: HashMap<usize, usize> = HashMap::new();
        for (src, ptr) in &tx.side_effects.realized_sources {
            let n = class_of.len();
            let class = *class_of.entry(*ptr).or_insert(n);
            alias.push((fetch_slot(src, extra), class));
        }
    }
    Ok(ReplayPlan {
        objects: std::mem::take(&mut tx.side_effects.table),
        ops,
        alias,
    })
}

impl ReplayPlan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.objects.is_empty() && self.alias.is_empty()
    }

    /// Whether pre-existing objects alias each other as they did while tracing.
    pub fn precheck(&self, fetched: &[Py<PyAny>]) -> bool {
        if self.alias.is_empty() {
            return true;
        }
        let mut by_ptr: HashMap<usize, usize> = HashMap::new();
        let mut by_class: HashMap<usize, usize> = HashMap::new();
        for &(slot, class) in &self.alias {
            let Some(o) = fetched.get(slot) else {
                return false;
            };
            let p = o.as_ptr() as usize;
            if *by_ptr.entry(p).or_insert(class) != class {
                return false;
            }
            if *by_class.entry(class).or_insert(p) != p {
                return false;
            }
        }
        true
    }

    /// Build the escaping objects and apply the mutations; returns the object table for
    /// the return value's template.
    pub fn run(
        &self,
        py: Python<'_>,
        outputs: &Bound<'_, PyAny>,
        fetched: &[Py<PyAny>],
    ) -> PyResult<Vec<Py<PyAny>>> {
        let objs = self.objects.build(py, outputs, fetched)?;
        if self.ops.is_empty() {
            return Ok(objs);
        }
        let b = |t: &OutTemplate| t.build_with(py, outputs, fetched, &objs);
        let h = crate::interp::hooks::hooks(py)?;
        for op in &self.ops {
            match op {
                Op::SetAttr(t, name, v, raw) => {
                    let target = b(t)?;
                    if *raw {
                        h.object
                            .bind(py)
                            .call_method1("__getattribute__", (&target, "__dict__"))?
                            .set_item(name.as_str(), b(v)?)?;
                    } else if target.get_type().is(h.thread_local.bind(py))
                        || target.is_instance_of::<pyo3::types::PyType>()
                    {
                        // Its own C setattr: the running thread's namespace; a class's dict
                        // (and its method cache).
                        target.setattr(name.as_str(), b(v)?)?;
                    } else {
                        h.object
                            .bind(py)
                            .call_method1("__setattr__", (target, name, b(v)?))?;
                    }
                }
                Op::Advance(t, n) => {
                    let it = b(t)?;
                    if *n > 0 {
                        let state = if it.hasattr("__setstate__")? {
                            crate::guards::seq_iterator_state(&it)
                        } else {
                            None
                        };
                        if let Some((_, index)) = state {
                            it.call_method1("__setstate__", (index + n,))?;
                        } else {
                            // A dict iterator, enumerate or zip has no position to set: step
                            // it.
                            for _ in 0..*n {
                                let step = it.call_method0("__next__");
                                if step.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
                Op::DelAttr(t, name) => {
                    h.object
                        .bind(py)
                        .call_method1("__delattr__", (b(t)?, name))?;
                }
                Op::SetOps(t, ops) => {
                    // set's own C operations (a subclass's methods never run), in order.
                    let target = b(t)?;
                    let target = target.cast::<pyo3::types::PySet>()?;
                    for op in ops {
                        match op {
                            SetOp::Add(m) => target.add(m.bind(py))?,
                            SetOp::Discard(m) => {
                                target.discard(m.bind(py))?;
                            }
                            SetOp::Clear => target.clear(),
                        }
                    }
                }
                Op::ListContents(t, items) => {
                    let l = b(t)?;
                    let v: Vec<_> = items.iter().map(&b).collect::<PyResult<_>>()?;
                    let new = PyList::new(py, v)?;
                    l.cast::<PyList>()?
                        .set_slice(0, isize::MAX as usize, &new)?;
                }
                Op::DictContents(t, items) => {
                    let target = b(t)?;
                    let d = target.cast::<PyDict>()?;
                    let mut v = Vec::with_capacity(items.len());
                    for (k, x) in items {
                        v.push((k.bind(py).clone(), b(x)?));
                    }
                    if is_ordered_dict(&target)? {
                        // OrderedDict keeps its own order next to the dict storage: its own C
                        // methods (never a subclass's overrides) keep both in step.
                        let od = py.import_cached("collections")?.getattr("OrderedDict")?;
                        od.getattr("clear")?.call1((&target,))?;
                        let set = od.getattr("__setitem__")?;
                        for (k, x) in v {
                            set.call1((&target, k, x))?;
                        }
                    } else {
                        d.clear();
                        for (k, x) in v {
                            d.set_item(k, x)?;
                        }
                    }
                }
                Op::SetGlobal(g, name, v) => {
                    g.bind(py).set_item(name, b(v)?)?;
                }
                Op::DelGlobal(g, name) => {
                    g.bind(py).del_item(name)?;
                }
                Op::SetCell(c, v) => {
                    b(c)?.setattr("cell_contents", b(v)?)?;
                }
                Op::Print(args, kwargs) => {
                    let a: Vec<_> = args.iter().map(&b).collect::<PyResult<_>>()?;
                    let k = PyDict::new(py);
                    for (n, x) in kwargs {
                        k.set_item(n, b(x)?)?;
                    }
                    h.b.print
                        .bind(py)
                        .call(pyo3::types::PyTuple::new(py, a)?, Some(&k))?;
                }
            }
        }
        Ok(objs)
    }
}

/// Whether `d` is an OrderedDict (or a subclass: transformers' ModelOutput).
fn is_ordered_dict(d: &Bound<'_, PyAny>) -> PyResult<bool> {
    if d.is_exact_instance_of::<PyDict>() {
        return Ok(false);
    }
    d.is_instance(
        &d.py()
            .import_cached("collections")?
            .getattr("OrderedDict")?,
    )
}
