//! Dicts built by stdlib constructors (`collections.OrderedDict`, `defaultdict`, `Counter`,
//! `fromkeys`): plain dict values carrying a class tag (`StdState`), so the trace keeps
//! dict semantics (and symbolic values) while `type()`, escaping and the class's own
//! behaviour (a defaultdict's factory, Counter's zero for missing keys,
//! `OrderedDict.move_to_end`) follow the class.

use std::collections::HashMap;
use std::rc::Rc;

use pyo3::prelude::*;

use super::dispatch::{dict_key_const, dict_set};
use super::exit::{Exit, TResult};
use super::iter::unpack;
use super::stdlib::{r, refs, Refs};
use super::tracer::Tracer;
use super::value::{DictVal, Value};

/// The class of a dict built by a stdlib constructor, and a defaultdict's factory.
pub struct DictTag {
    pub cls: Py<PyAny>,
    pub factory: Option<Value>,
}

/// Per-trace stdlib state: dict class tags, keyed by the dict value's address (the map
/// keeps the value alive, so the address is never reused during the trace).
#[derive(Default)]
pub struct StdState {
    dict_tags: HashMap<usize, (Rc<DictVal>, DictTag)>,
}

impl StdState {
    pub fn tag(&self, d: &Rc<DictVal>) -> Option<&DictTag> {
        self.dict_tags
            .get(&(Rc::as_ptr(d) as usize))
            .map(|(_, t)| t)
    }

    pub(crate) fn set_tag(&mut self, d: &Rc<DictVal>, tag: DictTag) {
        self.dict_tags
            .insert(Rc::as_ptr(d) as usize, (d.clone(), tag));
    }
}

/// `OrderedDict.fromkeys` / `defaultdict.fromkeys` / `dict.fromkeys`: the class they build.
pub(crate) fn fromkeys_owner<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    rf: &Refs,
) -> Option<Py<PyAny>> {
    let owner = obj.getattr("__self__").ok()?;
    let name = obj.getattr("__name__").ok()?;
    if name.extract::<String>().ok()? != "fromkeys" {
        return None;
    }
    [&rf.ordered_dict, &rf.defaultdict, &rf.dict]
        .into_iter()
        .find(|c| owner.is(c.bind(py)))
        .map(|c| c.clone_ref(py))
}

pub(crate) fn fromkeys(
    tx: &mut Tracer<'_>,
    cls: Py<PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    if !kwargs.is_empty() {
        return Err(Exit::brk("fromkeys() takes no keyword arguments"));
    }
    let (it, value) = match args {
        [it] => (it, Value::none(py)),
        [it, v] => (it, v.clone()),
        _ => return Err(Exit::brk("fromkeys() arguments")),
    };
    let d = Value::new_dict_val();
    for k in unpack(tx, it)? {
        let key = dict_key_const(tx, &k)?;
        dict_set(tx, &d, key, value.clone());
    }
    if !cls.bind(py).is(r(tx)?.dict.bind(py)) {
        tx.stdlib.set_tag(&d, DictTag { cls, factory: None });
    }
    Ok(Value::Dict(d))
}

/// `d.default_factory` of a dict value (a tagged defaultdict).
pub fn default_factory(tx: &mut Tracer<'_>, d: &Rc<DictVal>, whole: &Value) -> TResult<Value> {
    let py = tx.py;
    let is_dd = match tx.stdlib.tag(d) {
        Some(t) => t.cls.bind(py).is(r(tx)?.defaultdict.bind(py)),
        None => false,
    };
    if !is_dd {
        return Ok(Value::BuiltinMethod(Rc::new((
            whole.clone(),
            "default_factory".into(),
        ))));
    }
    Ok(tx
        .stdlib
        .tag(d)
        .and_then(|t| t.factory.clone())
        .unwrap_or_else(|| Value::none(py)))
}

/// `collections.Counter()`, `Counter(iterable)`, `Counter(mapping)`, `Counter(**counts)`
/// made in the trace: a dict of counts tagged with its class (a missing key reads 0).
pub(crate) fn make_counter(
    tx: &mut Tracer<'_>,
    cls: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let d = Value::new_dict_val();
    let add = |tx: &mut Tracer<'_>, k: Py<PyAny>, n: Value| -> TResult<()> {
        let old = tx.dict_get(&d, k.bind(py))?;
        let v = match old {
            Some(o) => super::ops::binary_op(tx, 0, &o, &n)?,
            None => n,
        };
        dict_set(tx, &d, k, v);
        Ok(())
    };
    match args {
        [] => {}
        [Value::Dict(m)] => {
            for (k, v) in tx.dict_items(m)? {
                add(tx, k, v)?;
            }
        }
        [it] => {
            for item in unpack(tx, it)? {
                let k = dict_key_const(tx, &item)?;
                add(tx, k, Value::constant(py, 1))?;
            }
        }
        _ => return Err(Exit::brk("Counter() takes at most one positional argument")),
    }
    for (k, v) in kwargs {
        let key = pyo3::types::PyString::new(py, k).into_any().unbind();
        add(tx, key, v.clone())?;
    }
    tx.stdlib.set_tag(
        &d,
        DictTag {
            cls: cls.clone().unbind(),
            factory: None,
        },
    );
    Ok(Value::Dict(d))
}

/// Whether `d` is a Counter made in the trace.
pub fn is_counter(tx: &Tracer<'_>, d: &Rc<DictVal>) -> bool {
    let py = tx.py;
    tx.stdlib
        .tag(d)
        .is_some_and(|t| r(tx).is_ok_and(|rf| t.cls.bind(py).is(rf.counter.bind(py))))
}

/// `d[key]` missed: a defaultdict calls its factory and stores the result; a Counter reads 0.
pub fn dict_missing(
    tx: &mut Tracer<'_>,
    d: &Rc<DictVal>,
    key: &Bound<'_, PyAny>,
) -> TResult<Value> {
    if is_counter(tx, d) {
        return Ok(Value::constant(tx.py, 0));
    }
    let factory = tx.stdlib.tag(d).and_then(|t| t.factory.clone());
    let Some(f) = factory else {
        return Err(Exit::brk(format!("KeyError: {key}")));
    };
    let v = crate::interp::families::call(tx, &f, Vec::new(), Vec::new())?;
    dict_set(tx, d, key.clone().unbind(), v.clone());
    Ok(v)
}

/// Methods of tagged dicts that differ from dict's; Ok(None): use the dict method.
pub fn tagged_dict_method(
    tx: &mut Tracer<'_>,
    d: &Rc<DictVal>,
    name: &str,
    args: &[Value],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Some(tag) = tx.stdlib.tag(d) else {
        return Ok(None);
    };
    let (cls, factory) = (tag.cls.clone_ref(py), tag.factory.clone());
    match (name, args) {
        ("copy", []) => {
            let c = Value::new_dict_val();
            *c.entries.borrow_mut() = d.snapshot(py);
            tx.stdlib.set_tag(&c, DictTag { cls, factory });
            Ok(Some(Value::Dict(c)))
        }
        // Counter's own update/subtract count rather than replace.
        ("update" | "subtract", [] | [_]) if is_counter(tx, d) => {
            counter_update(tx, d, name == "subtract", args.first())?;
            Ok(Some(Value::none(py)))
        }
        ("update" | "subtract", _) if is_counter(tx, d) => {
            Err(Exit::brk(format!("Counter.{name} arguments")))
        }
        ("most_common" | "total" | "elements", _) if is_counter(tx, d) => {
            counter_read(tx, d, name, args).map(Some)
        }
        ("get" | "items" | "keys" | "values" | "update" | "setdefault" | "pop" | "clear", _) => {
            Ok(None)
        }
        ("move_to_end", [k] | [k, _]) if d.source.is_none() && is_ordered_dict(py, &cls) => {
            let last = match args.get(1) {
                None => true,
                Some(v) => crate::interp::families::truthy(tx, v)?,
            };
            let key = tx
                .as_python_constant(k)
                .ok_or_else(|| Exit::brk("OrderedDict.move_to_end of a non-constant key"))?;
            tx.dict_mutating(d)?;
            let mut items = d.entries.borrow_mut();
            let Some(i) = items
                .iter()
                .position(|(x, _)| super::dispatch::same_dict_key(x.bind(py), &key))
            else {
                drop(items);
                return Err(super::exceptions::key_error(py, k.clone()));
            };
            let item = items.remove(i);
            if last {
                items.push(item);
            } else {
                items.insert(0, item);
            }
            Ok(Some(Value::none(py)))
        }
        _ => Err(Exit::brk(format!(
            "method {name} of a {}",
            tx.describe(&cls.bind(py).clone())
        ))),
    }
}

/// Whether `cls` is `collections.OrderedDict` or a subclass of it.
fn is_ordered_dict(py: Python<'_>, cls: &Py<PyAny>) -> bool {
    let Ok(rf) = refs(py) else {
        return false;
    };
    cls.bind(py)
        .cast::<pyo3::types::PyType>()
        .is_ok_and(|t| t.is_subclass(rf.ordered_dict.bind(py)).unwrap_or(false))
}

/// `c.most_common(n=None)`, `c.total()`, `c.elements()` of a Counter made in the trace whose
/// counts are constant numbers, as collections computes them: most_common sorts the items
/// by count, largest first, keeping insertion order among equal counts (what both its
/// `sorted(..., reverse=True)` and `heapq.nlargest` paths give).
fn counter_read(
    tx: &mut Tracer<'_>,
    d: &Rc<DictVal>,
    name: &str,
    args: &[Value],
) -> TResult<Value> {
    let py = tx.py;
    let items = d.snapshot(py);
    let mut counts = Vec::with_capacity(items.len());
    for (k, v) in &items {
        let c = tx
            .as_python_constant(v)
            .filter(|c| {
                c.is_instance_of::<pyo3::types::PyInt>()
                    || c.is_instance_of::<pyo3::types::PyFloat>()
            })
            .ok_or_else(|| Exit::brk(format!("Counter.{name} over non-constant counts")))?;
        let f: f64 = c.extract().map_err(|e| tx.err(e))?;
        counts.push((k.clone_ref(py), v.clone(), f, c.unbind()));
    }
    match (name, args) {
        ("most_common", []) | ("most_common", [_]) => {
            let n = match args.first() {
                None => None,
                Some(a) if a.as_const(py).is_some_and(|c| c.is_none()) => None,
                Some(a) => Some(
                    a.as_const(py)
                        .and_then(|c| c.extract::<i64>().ok())
                        .ok_or_else(|| Exit::brk("Counter.most_common with a non-int n"))?,
                ),
            };
            let mut order: Vec<usize> = (0..counts.len()).collect();
            // Stable: equal counts keep insertion order.
            order.sort_by(|&a, &b| {
                counts[b]
                    .2
                    .partial_cmp(&counts[a].2)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            let take = match n {
                None => order.len(),
                Some(n) => n.clamp(0, order.len() as i64) as usize,
            };
            let out = order[..take]
                .iter()
                .map(|&i| {
                    Value::new_tuple(vec![
                        Value::Const(counts[i].0.clone_ref(py)),
                        counts[i].1.clone(),
                    ])
                })
                .collect();
            Ok(Value::new_list(out))
        }
        ("total", []) => {
            let sum = py
                .import("builtins")
                .and_then(|b| {
                    b.getattr("sum")?.call1((pyo3::types::PyList::new(
                        py,
                        counts.iter().map(|c| c.3.bind(py)),
                    )?,))
                })
                .map_err(|e| tx.err(e))?;
            tx.realize(&sum, None)
        }
        ("elements", []) => {
            let mut out = Vec::new();
            for (k, _, _, c) in &counts {
                let times = c
                    .bind(py)
                    .extract::<i64>()
                    .map_err(|_| Exit::brk("Counter.elements over non-int counts"))?;
                for _ in 0..times.max(0) {
                    out.push(Value::Const(k.clone_ref(py)));
                }
            }
            Ok(crate::interp::iter::items_iter(out))
        }
        _ => Err(Exit::brk(format!("Counter.{name} arguments"))),
    }
}

/// `c.update(x)` / `c.subtract(x)` of a Counter made in the trace, as collections does: a
/// mapping's counts added to (subtracted from) the current ones, or each element of an
/// iterable counted once (an update of an empty Counter by a mapping copies it as is).
fn counter_update(
    tx: &mut Tracer<'_>,
    d: &Rc<DictVal>,
    subtract: bool,
    arg: Option<&Value>,
) -> TResult<()> {
    let py = tx.py;
    let Some(arg) = arg else {
        return Ok(());
    };
    if matches!(arg, Value::Const(c) if c.bind(py).is_none()) {
        return Ok(());
    }
    tx.dict_mutating(d)?;
    let op = if subtract { 10 } else { 0 };
    let zero = Value::constant(py, 0);
    if let Value::Dict(m) = arg {
        let empty = d.entries.borrow().is_empty();
        for (k, v) in tx.dict_items(m)? {
            let new = if empty && !subtract {
                v
            } else {
                let cur = tx.dict_get(d, k.bind(py))?.unwrap_or_else(|| zero.clone());
                super::ops::binary_op(tx, op, &cur, &v)?
            };
            dict_set(tx, d, k, new);
        }
        return Ok(());
    }
    let one = Value::constant(py, 1);
    for item in unpack(tx, arg)? {
        let k = dict_key_const(tx, &item)?;
        let cur = tx.dict_get(d, k.bind(py))?.unwrap_or_else(|| zero.clone());
        let new = super::ops::binary_op(tx, op, &cur, &one)?;
        dict_set(tx, d, k, new);
    }
    Ok(())
}

/// `a + b`, `a - b`, `a | b`, `a & b` and their in-place forms for two Counters made in the
/// trace, as `collections.Counter` computes them (only positive counts kept; the in-place
/// forms update `a` and return it). `None`: not that case.
pub fn counter_binary(
    tx: &mut Tracer<'_>,
    op: usize,
    lhs: &Value,
    rhs: &Value,
) -> TResult<Option<Value>> {
    let (Value::Dict(a), Value::Dict(b)) = (lhs, rhs) else {
        return Ok(None);
    };
    let kind = op % 13;
    if !matches!(kind, 0 | 1 | 7 | 10) || !is_counter(tx, a) || !is_counter(tx, b) {
        return Ok(None);
    }
    let py = tx.py;
    let zero = Value::constant(py, 0);
    let get = |tx: &mut Tracer<'_>, d: &DictVal, k: &Py<PyAny>| -> TResult<Value> {
        Ok(tx.dict_get(d, k.bind(py))?.unwrap_or_else(|| zero.clone()))
    };
    // `x < y` / `x > y` of counts, as Python decides it.
    let less = |tx: &mut Tracer<'_>, x: &Value, y: &Value| -> TResult<bool> {
        let c = super::ops::compare_op(tx, 0, x, y)?;
        crate::interp::families::truthy(tx, &c)
    };
    if op >= 13 {
        tx.dict_mutating(a)?;
        match kind {
            0 | 10 => {
                for (k, c) in tx.dict_items(b)? {
                    let cur = get(tx, a, &k)?;
                    let new = super::ops::binary_op(tx, kind, &cur, &c)?;
                    dict_set(tx, a, k, new);
                }
            }
            7 => {
                for (k, oc) in tx.dict_items(b)? {
                    let cur = get(tx, a, &k)?;
                    if less(tx, &cur, &oc)? {
                        dict_set(tx, a, k, oc);
                    }
                }
            }
            _ => {
                for (k, c) in tx.dict_items(a)? {
                    let oc = get(tx, b, &k)?;
                    if less(tx, &oc, &c)? {
                        dict_set(tx, a, k, oc);
                    }
                }
            }
        }
        // `_keep_positive`: counts that are not > 0 go.
        let mut gone = Vec::new();
        for (k, c) in tx.dict_items(a)? {
            if !less(tx, &zero, &c)? {
                gone.push(k);
            }
        }
        a.entries.borrow_mut().retain(|(k, _)| {
            !gone
                .iter()
                .any(|g| super::dispatch::same_dict_key(k.bind(py), g.bind(py)))
        });
        return Ok(Some(lhs.clone()));
    }
    let result = Value::new_dict_val();
    for (k, c) in tx.dict_items(a)? {
        let oc = get(tx, b, &k)?;
        let new = match kind {
            0 | 10 => super::ops::binary_op(tx, kind, &c, &oc)?,
            7 => {
                if less(tx, &c, &oc)? {
                    oc
                } else {
                    c
                }
            }
            _ => {
                if less(tx, &c, &oc)? {
                    c
                } else {
                    oc
                }
            }
        };
        if less(tx, &zero, &new)? {
            dict_set(tx, &result, k, new);
        }
    }
    if kind != 1 {
        for (k, c) in tx.dict_items(b)? {
            if tx.dict_get(a, k.bind(py))?.is_some() {
                continue;
            }
            if kind == 10 {
                // Only in `b` with a negative count: `0 - count`.
                if less(tx, &c, &zero)? {
                    let new = super::ops::binary_op(tx, 10, &zero, &c)?;
                    dict_set(tx, &result, k, new);
                }
            } else if less(tx, &zero, &c)? {
                dict_set(tx, &result, k, c);
            }
        }
    }
    let cls = r(tx)?.counter.clone_ref(py);
    tx.stdlib.set_tag(&result, DictTag { cls, factory: None });
    Ok(Some(Value::Dict(result)))
}
