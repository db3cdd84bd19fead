//! Methods of tuple, list and dict values (`d.items()`, `l.append(x)`, `t.index(x)`...).
//! Mutating a container that exists outside the trace changes the trace's copy and is
//! recorded in the side-effect store (replayed after the graph).

use pyo3::prelude::*;

use super::dispatch::{dict_key_const, dict_set};
use super::exit::{Exit, TResult};
use super::iter::unpack;
use super::kinds::KIND_OBJECT;
use super::ops::is_same;
use super::tracer::Tracer;
use super::value::{DictVal, ListVal, ObjVal, Value};
use crate::guards::{DictKey, Guard, Source};
use pyo3::types::PyDict;
use std::rc::Rc;
use std::sync::Arc;

fn const_eq(tx: &mut Tracer<'_>, a: &Value, b: &Value) -> TResult<bool> {
    match (tx.as_python_constant(a), tx.as_python_constant(b)) {
        (Some(x), Some(y)) => Ok(x.eq(y).unwrap_or(false)),
        _ => is_same(tx, a, b),
    }
}

pub fn call_container_method(
    tx: &mut Tracer<'_>,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    if let Value::Std(s) = recv {
        return super::stdlib_set::call_method(tx, recv, s, name, args, kwargs);
    }
    if let Value::NamedTuple(n) = recv {
        if name == "_replace" && args.is_empty() && !n.structseq {
            let mut items = (*n.items).clone();
            for (k, v) in kwargs {
                let i = n.fields.iter().position(|f| *f == k).ok_or_else(|| {
                    Exit::brk(format!("ValueError: got unexpected field name '{k}'"))
                })?;
                items[i] = v;
            }
            let cls = n.cls.bind(py).clone();
            return tx.named_tuple(&cls, items);
        }
        return call_container_method(tx, &n.as_tuple(), name, args, kwargs);
    }
    if let Value::Dict(d) = recv {
        if let Some(v) = super::stdlib::tagged_dict_method(tx, d, name, &args)? {
            return Ok(v);
        }
    }
    if let (Value::Dict(_), "update", true, 0 | 1) = (recv, name, !kwargs.is_empty(), args.len()) {
        // `d.update(other, k=v)`: `other` first, then the keywords.
        if !args.is_empty() {
            call_container_method(tx, recv, name, args, Vec::new())?;
        }
        let kw = Value::kwargs_dict(py, kwargs);
        return call_container_method(tx, recv, name, vec![kw], Vec::new());
    }
    if !kwargs.is_empty() && name != "sort" {
        return Err(Exit::brk(format!(
            "keyword arguments to {}.{name}",
            recv.type_name(py)
        )));
    }
    if let (Value::Tuple(_) | Value::List(_), [x]) = (recv, args.as_slice()) {
        // The read dunders called by name: the operations they implement.
        match name {
            "__getitem__" => return super::ops::subscr(tx, recv, x),
            "__contains__" => {
                return Ok(Value::constant(py, super::ops::contains(tx, recv, x)?));
            }
            _ => {}
        }
    }
    if let (Value::Tuple(t), "__len__", []) = (recv, name, args.as_slice()) {
        return Ok(Value::constant(py, t.len()));
    }
    if let (Value::List(l), "__len__", []) = (recv, name, args.as_slice()) {
        return Ok(Value::constant(py, l.items.borrow().len()));
    }
    let none = Value::none(py);
    match recv {
        Value::Tuple(t) => match (name, args.as_slice()) {
            ("index", [x]) => {
                for (i, v) in t.iter().enumerate() {
                    if const_eq(tx, v, x)? {
                        return Ok(Value::constant(py, i));
                    }
                }
                Err(super::exceptions::raise_builtin(
                    py,
                    "ValueError",
                    "tuple.index(x): x not in tuple",
                ))
            }
            ("count", [x]) => {
                let mut n = 0usize;
                for v in t.iter() {
                    if const_eq(tx, v, x)? {
                        n += 1;
                    }
                }
                Ok(Value::constant(py, n))
            }
            _ => Err(Exit::brk(format!("tuple.{name}"))),
        },
        Value::List(l) => {
            let mutating = matches!(
                name,
                "append" | "extend" | "insert" | "pop" | "remove" | "clear" | "reverse" | "sort"
            );
            if mutating {
                tx.list_mutating(l)?;
            }
            match (name, args.as_slice()) {
                ("append", [x]) => {
                    l.items.borrow_mut().push(x.clone());
                    Ok(none)
                }
                ("extend", [x]) => {
                    let items = unpack(tx, x)?;
                    l.items.borrow_mut().extend(items);
                    Ok(none)
                }
                ("insert", [i, x]) => {
                    let i: i64 = i
                        .as_const(py)
                        .and_then(|c| c.extract().ok())
                        .ok_or_else(|| Exit::brk("list.insert with a non-constant index"))?;
                    let mut items = l.items.borrow_mut();
                    let n = items.len() as i64;
                    let j = if i < 0 { (i + n).max(0) } else { i.min(n) } as usize;
                    items.insert(j, x.clone());
                    Ok(none)
                }
                ("pop", rest) => {
                    let mut items = l.items.borrow_mut();
                    let n = items.len() as i64;
                    let i: i64 = match rest {
                        [] => -1,
                        [i] => i
                            .as_const(py)
                            .and_then(|c| c.extract().ok())
                            .ok_or_else(|| Exit::brk("list.pop with a non-constant index"))?,
                        _ => return Err(Exit::brk("list.pop arguments")),
                    };
                    let j = if i < 0 { i + n } else { i };
                    if j < 0 || j >= n {
                        return Err(Exit::brk("pop index out of range"));
                    }
                    Ok(items.remove(j as usize))
                }
                ("clear", []) => {
                    l.items.borrow_mut().clear();
                    Ok(none)
                }
                ("remove", [x]) => {
                    let items = l.items.borrow().clone();
                    for (i, v) in items.iter().enumerate() {
                        if is_same(tx, v, x)? || const_eq(tx, v, x)? {
                            l.items.borrow_mut().remove(i);
                            return Ok(none);
                        }
                    }
                    Err(super::exceptions::raise_builtin(
                        py,
                        "ValueError",
                        "list.remove(x): x not in list",
                    ))
                }
                ("reverse", []) => {
                    l.items.borrow_mut().reverse();
                    Ok(none)
                }
                ("copy", []) => Ok(Value::new_list(l.items.borrow().clone())),
                ("index", [x]) => {
                    let items = l.items.borrow().clone();
                    for (i, v) in items.iter().enumerate() {
                        if const_eq(tx, v, x)? {
                            return Ok(Value::constant(py, i));
                        }
                    }
                    let shown = tx
                        .as_python_constant(x)
                        .and_then(|c| c.repr().ok().map(|r| r.to_string()))
                        .ok_or_else(|| Exit::brk("list.index(x): x not in list"))?;
                    Err(super::exceptions::raise_builtin(
                        py,
                        "ValueError",
                        format!("{shown} is not in list"),
                    ))
                }
                ("index" | "count", _) => call_container_method(
                    tx,
                    &Value::new_tuple(l.items.borrow().clone()),
                    name,
                    args,
                    kwargs,
                ),
                _ => Err(Exit::brk(format!("list.{name}"))),
            }
        }
        Value::Dict(d) => {
            let mutating = matches!(name, "update" | "pop" | "setdefault" | "clear" | "popitem");
            if mutating {
                tx.dict_mutating(d)?;
            }
            let lookup = |tx: &mut Tracer<'_>, k: &Value| -> TResult<Option<Value>> {
                let key = tx
                    .as_python_constant(k)
                    .ok_or_else(|| Exit::brk("dict key that is not a constant"))?;
                tx.dict_get(d, &key)
            };
            match (name, args.as_slice()) {
                ("keys", []) => Ok(super::dict_views::view(
                    d,
                    super::dict_views::ViewKind::Keys,
                )),
                ("values", []) => Ok(super::dict_views::view(
                    d,
                    super::dict_views::ViewKind::Values,
                )),
                ("items", []) => Ok(super::dict_views::view(
                    d,
                    super::dict_views::ViewKind::Items,
                )),
                ("get", [k]) => Ok(lookup(tx, k)?.unwrap_or(none)),
                ("get", [k, default]) => Ok(lookup(tx, k)?.unwrap_or_else(|| default.clone())),
                ("copy", []) => Ok(Value::new_dict_from(d.snapshot(py))),
                ("update", [other]) => {
                    let pairs: Vec<_> = match other {
                        Value::Dict(o) => o.snapshot(py),
                        Value::List(_) | Value::Tuple(_) | Value::Iter(_) | Value::Generator(_) => {
                            // An iterable of (key, value) pairs (`d.update(m.named_parameters())`).
                            let mut pairs = Vec::new();
                            for item in super::iter::unpack(tx, other)? {
                                let kv = super::iter::unpack(tx, &item)?;
                                let [k, v] = kv.as_slice() else {
                                    return Err(Exit::brk(
                                        "dict.update with an item that is not a pair",
                                    ));
                                };
                                pairs.push((dict_key_const(tx, k)?, v.clone()));
                            }
                            pairs
                        }
                        _ => return Err(Exit::brk("dict.update with a non-dict")),
                    };
                    for (k, v) in pairs {
                        dict_set(tx, d, k, v);
                    }
                    Ok(none)
                }
                ("setdefault", [k, rest @ ..]) => {
                    if let Some(v) = lookup(tx, k)? {
                        return Ok(v);
                    }
                    let v = rest.first().cloned().unwrap_or(none);
                    let key = dict_key_const(tx, k)?;
                    dict_set(tx, d, key, v.clone());
                    Ok(v)
                }
                ("pop", [k, rest @ ..]) => {
                    let key = tx
                        .as_python_constant(k)
                        .ok_or_else(|| Exit::brk("dict key that is not a constant"))?;
                    match d.position(py, &key) {
                        Some(i) => {
                            let v = tx.dict_entry_at(d, i)?;
                            d.entries.borrow_mut().remove(i);
                            Ok(v)
                        }
                        None => rest
                            .first()
                            .cloned()
                            .ok_or_else(|| Exit::brk("KeyError in dict.pop")),
                    }
                }
                ("clear", []) => {
                    d.entries.borrow_mut().clear();
                    Ok(none)
                }
                _ => Err(Exit::brk(format!("dict.{name}"))),
            }
        }
        _ => Err(Exit::brk(format!(
            "method {name} of a '{}'",
            recv.type_name(py)
        ))),
    }
}

/// Whether a traced object is a dict subclass instance (its own storage is read by
/// [`sub_dict_read`]).
pub fn is_sub_dict(o: &ObjVal) -> bool {
    // SAFETY: a type check of a live object.
    unsafe { pyo3::ffi::PyDict_Check(o.obj.as_ptr()) != 0 }
}

/// dict's own read-only methods that `sub_dict_read` models.
pub const DICT_READS: [&str; 8] = [
    "keys",
    "items",
    "values",
    "get",
    "__getitem__",
    "__contains__",
    "__len__",
    "__iter__",
];

/// dict's own mutators that `sub_dict_read` models on a mirror of the contents.
pub const DICT_WRITES: [&str; 7] = [
    "__setitem__",
    "__delitem__",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "clear",
];

/// dict's (or OrderedDict's) own read-only methods on an existing dict subclass object:
/// the keys are guarded (in order), each value read comes from the dict's storage through
/// a `dict.__getitem__(obj, key)` source. The subclass's code never runs.
pub fn sub_dict_read<'py>(
    tx: &mut Tracer<'py>,
    o: &ObjVal,
    name: &str,
    args: &[Value],
) -> TResult<Value> {
    let py = tx.py;
    if tx.dict_shadows.contains_key(&(o.obj.as_ptr() as usize)) {
        return shadow_dict_call(tx, o, name, args);
    }
    let Some(src) = o.source.clone() else {
        return Err(Exit::brk(format!(
            "{name}() of a dict subclass created in the compiled region"
        )));
    };
    let key = o.obj.as_ptr() as usize;
    if DICT_WRITES.contains(&name) || tx.dict_shadows.contains_key(&key) {
        return shadow_dict_call(tx, o, name, args);
    }
    let obj = o.obj.bind(py).clone();
    let keys = crate::guards::leaf::sub_dict_keys(&obj)
        .ok_or_else(|| Exit::brk("the keys of a dict subclass cannot be read"))?;
    let mut dkeys = Vec::with_capacity(keys.len());
    for k in &keys {
        dkeys.push(if let Ok(s) = k.cast::<pyo3::types::PyString>() {
            DictKey::Str(s.to_string())
        } else if k.is_exact_instance_of::<pyo3::types::PyInt>() {
            DictKey::Int(k.extract().map_err(|e| tx.err(e))?)
        } else {
            return Err(Exit::brk(
                "a dict subclass with keys that are not str or int",
            ));
        });
    }
    tx.guard(
        &src,
        Guard::SubDictKeys(keys.iter().map(|k| k.clone().unbind()).collect()),
    );
    let item = |tx: &mut Tracer<'py>, i: usize| -> TResult<Value> {
        let d = obj.cast::<PyDict>().map_err(|e| tx.err(e.into()))?;
        let v = d
            .get_item(&keys[i])
            .map_err(|e| tx.err(e))?
            .ok_or_else(|| Exit::internal("dict subclass key vanished"))?;
        let s = Arc::new(Source::SubDictItem {
            base: src.clone(),
            key: dkeys[i].clone(),
        });
        tx.realize(&v, Some(s))
    };
    let find = |tx: &Tracer<'_>, k: &Value| -> TResult<Option<usize>> {
        let Some(c) = tx.as_python_constant(k) else {
            return Err(Exit::brk(format!(
                "{name}() of a dict subclass with a non-constant key"
            )));
        };
        Ok(keys.iter().position(|x| x.eq(&c).unwrap_or(false)))
    };
    let konst = |k: &Bound<'_, PyAny>| Value::Const(k.clone().unbind());
    Ok(match (name, args) {
        ("keys" | "__iter__", []) => {
            let t = Value::new_tuple(keys.iter().map(konst).collect());
            if name == "__iter__" {
                crate::interp::families::iter(tx, &t)?
            } else {
                t
            }
        }
        ("values", []) => {
            let vals = (0..keys.len())
                .map(|i| item(tx, i))
                .collect::<TResult<Vec<_>>>()?;
            Value::new_tuple(vals)
        }
        ("items", []) => {
            let mut pairs = Vec::with_capacity(keys.len());
            for (i, k) in keys.iter().enumerate() {
                pairs.push(Value::new_tuple(vec![konst(k), item(tx, i)?]));
            }
            Value::new_tuple(pairs)
        }
        ("get", [k]) | ("get", [k, _]) => match find(tx, k)? {
            Some(i) => item(tx, i)?,
            None => args.get(1).cloned().unwrap_or_else(|| Value::none(py)),
        },
        ("__getitem__", [k]) => match find(tx, k)? {
            Some(i) => item(tx, i)?,
            None => return missing_key(tx, o, k),
        },
        ("__contains__", [k]) => Value::constant(py, find(tx, k)?.is_some()),
        ("__len__", []) => Value::constant(py, keys.len()),
        _ => return Err(Exit::brk(format!("dict subclass method {name}"))),
    })
}

/// dict's own method `name` on a dict-subclass object the trace changes: on a mirror of
/// its contents (made from its guarded reads on first use, then used by every read and
/// write of it), replayed after the graph on the real object's storage (dict's C
/// functions: no method of the subclass runs). A missing key reaches the class's Python
/// `__missing__`, as dict's `__getitem__` does.
fn shadow_dict_call(tx: &mut Tracer<'_>, o: &ObjVal, name: &str, args: &[Value]) -> TResult<Value> {
    let py = tx.py;
    let key = o.obj.as_ptr() as usize;
    let d = match tx.dict_shadows.get(&key) {
        Some(d) => d.clone(),
        None => {
            let Value::Tuple(pairs) = sub_dict_read(tx, o, "items", &[])? else {
                return Err(Exit::internal("dict subclass items"));
            };
            let mut items = Vec::with_capacity(pairs.len());
            for p in pairs.iter() {
                let Value::Tuple(kv) = p else {
                    return Err(Exit::internal("dict subclass item"));
                };
                let k = kv[0]
                    .as_const(py)
                    .ok_or_else(|| Exit::internal("dict subclass key"))?;
                items.push((k.clone().unbind(), kv[1].clone()));
            }
            let d = Rc::new(DictVal {
                entries: items.into(),
                source: o.source.clone(),
            });
            tx.dict_shadows.insert(key, d.clone());
            d
        }
    };
    let dict = Value::Dict(d.clone());
    let none = Value::none(py);
    match (name, args) {
        ("__getitem__", [k]) => {
            let kc = dict_key_const(tx, k)?;
            let found = tx.dict_get(&d, kc.bind(py))?;
            match found {
                Some(v) => Ok(v),
                None => missing_key(tx, o, k),
            }
        }
        ("__contains__", [k]) => Ok(Value::constant(py, super::ops::contains(tx, &dict, k)?)),
        ("__len__", []) => Ok(Value::constant(py, d.len())),
        ("__iter__", []) => crate::interp::families::iter(tx, &dict),
        ("__setitem__", [k, v]) => {
            super::ops::store_subscr(tx, &dict, k, v.clone())?;
            Ok(none)
        }
        ("__delitem__", [k]) => {
            crate::interp::ops::delete_subscr(tx, &dict, k)?;
            Ok(none)
        }
        _ => call_container_method(tx, &dict, name, args.to_vec(), Vec::new()),
    }
}

/// A list or tuple subclass object from the inputs whose class keeps the stock `__len__`,
/// `__getitem__` and `__iter__` (and which the trace has not changed): its items can be
/// read like a plain sequence's, each through `obj[i]`, under a length guard.
pub fn stock_seq(tx: &Tracer<'_>, o: &ObjVal) -> bool {
    let py = tx.py;
    if tx.seq_shadows.contains_key(&(o.obj.as_ptr() as usize)) {
        // Mirrored (changed in the trace, or made there): read through the mirror.
        return true;
    }
    if o.source.is_none()
        || tx
            .side_effects
            .has_pending(crate::side_effects::store::ptr_of(&o.obj))
    {
        return false;
    }
    let obj = o.obj.bind(py);
    let base = if obj.is_instance_of::<pyo3::types::PyList>() {
        py.get_type::<pyo3::types::PyList>()
    } else if obj.is_instance_of::<pyo3::types::PyTuple>() {
        py.get_type::<pyo3::types::PyTuple>()
    } else {
        return false;
    };
    let ty = obj.get_type();
    ["__len__", "__getitem__", "__iter__"].iter().all(|n| {
        match (ty.getattr(*n), base.getattr(*n)) {
            (Ok(a), Ok(b)) => a.is(&b),
            _ => false,
        }
    })
}

/// The contents of a list-subclass object from the inputs, as a list value the trace can
/// change with list's own methods (`append`, `extend`, `pop`, `obj[i] = v`, ...): made from
/// its items on first use (length guarded), then every read of the object goes through it,
/// and a change is replayed after the graph on the real object's storage (`list`'s C
/// slice assignment: no method of the subclass runs). None for anything else.
pub fn list_shadow(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Rc<ListVal>>> {
    let key = o.obj.as_ptr() as usize;
    if let Some(l) = tx.seq_shadows.get(&key) {
        return Ok(Some(l.clone()));
    }
    if !o.obj.bind(tx.py).is_instance_of::<pyo3::types::PyList>() || !stock_seq(tx, o) {
        return Ok(None);
    }
    let items = stock_seq_items(tx, o)?;
    let l = Rc::new(ListVal {
        items: items.into(),
        source: o.source.clone(),
    });
    tx.seq_shadows.insert(key, l.clone());
    Ok(Some(l))
}

/// The items of a `stock_seq` object: its length is guarded, each item is read through
/// `obj[i]` (guarded where used, like any input).
pub fn stock_seq_items(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Vec<Value>> {
    let py = tx.py;
    if let Some(l) = tx.seq_shadows.get(&(o.obj.as_ptr() as usize)) {
        return Ok(l.items.borrow().clone());
    }
    let src = o
        .source
        .clone()
        .ok_or_else(|| Exit::internal("stock sequence without a source"))?;
    let obj = o.obj.bind(py).clone();
    let n = obj.len().map_err(|e| tx.err(e))?;
    tx.guard(&src, Guard::Len(n));
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let v = obj.get_item(i).map_err(|e| tx.err(e))?;
        let s = Arc::new(Source::Index {
            base: src.clone(),
            index: i as isize,
        });
        items.push(tx.realize(&v, Some(s))?);
    }
    Ok(items)
}

/// `a, b = row` for a list-like object from the inputs (stock `__len__`/`__getitem__`/
/// `__iter__`, not changed in the trace) whose items go straight into locals (the next
/// instructions are one STORE_FAST per item): the length is guarded now, each item only
/// when the code loads it (`Frame::pending`). False: unpack it the ordinary way.
pub fn unpack_into_locals(
    tx: &mut Tracer<'_>,
    frame: &mut super::frame::Frame,
    seq: &Value,
    n: usize,
) -> TResult<bool> {
    let py = tx.py;
    let Value::Object(o) = seq else {
        return Ok(false);
    };
    let Some(src) = o.source.clone() else {
        return Ok(false);
    };
    if o.kind != KIND_OBJECT
        || tx.seq_shadows.contains_key(&(o.obj.as_ptr() as usize))
        || !stock_seq(tx, o)
    {
        return Ok(false);
    }
    let instrs = &frame.spec.decoded.instructions;
    let n_slots = frame.spec.localsplus.len();
    let mut targets = Vec::with_capacity(n);
    for k in 0..n {
        match instrs.get(frame.ip + k) {
            Some(i)
                if i.op == crate::bytecode::Opcode::STORE_FAST
                    && (i.arg as usize) < n_slots
                    && !frame.spec.cell_slots.contains(&(i.arg as usize))
                    && !targets.contains(&(i.arg as usize)) =>
            {
                targets.push(i.arg as usize)
            }
            _ => return Ok(false),
        }
    }
    let obj = o.obj.bind(py).clone();
    let len = obj.len().map_err(|e| tx.err(e))?;
    if len != n {
        return Ok(false); // the ordinary path raises eager's ValueError
    }
    tx.guard(&src, Guard::Len(n));
    if frame.pending.len() < n_slots {
        frame.pending.resize_with(n_slots, || None);
    }
    for (k, &slot) in targets.iter().enumerate() {
        let item = obj.get_item(k).map_err(|e| tx.err(e))?;
        frame.locals[slot] = None;
        frame.pending[slot] = Some(item.unbind());
        frame.pending_sources.insert(
            slot,
            Arc::new(Source::Index {
                base: src.clone(),
                index: k as isize,
            }),
        );
    }
    frame.ip += n;
    Ok(true)
}

/// `seq[k]` (LOAD_FAST, LOAD_CONST int, BINARY_SUBSCR) of a list or tuple argument not
/// loaded yet: only item `k` is realized and guarded, with the sequence's type and length
/// (the slot stays pending), so an item the trace never reads installs no guard (checklist
/// item 130, as Dynamo's lazy list items). None: load it the ordinary way. Not for an object
/// already mirrored in the trace (a write through another name must be seen).
pub fn lazy_const_subscript(
    tx: &mut Tracer<'_>,
    frame: &mut super::frame::Frame,
    slot: usize,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Some(Some(obj)) = frame.pending.get(slot) else {
        return Ok(None);
    };
    let obj = obj.bind(py).clone();
    let exact_list = obj.is_exact_instance_of::<pyo3::types::PyList>();
    if !exact_list && !obj.is_exact_instance_of::<pyo3::types::PyTuple>() {
        return Ok(None);
    }
    let instrs = &frame.spec.decoded.instructions;
    let (Some(load), Some(sub)) = (instrs.get(frame.ip), instrs.get(frame.ip + 1)) else {
        return Ok(None);
    };
    if load.op != crate::bytecode::Opcode::LOAD_CONST
        || sub.op != crate::bytecode::Opcode::BINARY_SUBSCR
    {
        return Ok(None);
    }
    let Some(index) = frame.spec.consts.get(load.arg as usize) else {
        return Ok(None);
    };
    let index = index.bind(py);
    if !index.is_exact_instance_of::<pyo3::types::PyInt>() {
        return Ok(None);
    }
    let (Ok(k), Ok(n)) = (index.extract::<isize>(), obj.len()) else {
        return Ok(None);
    };
    let k = if k < 0 { k + n as isize } else { k };
    if k < 0 || k >= n as isize {
        return Ok(None); // the ordinary path raises eager's IndexError
    }
    if exact_list
        && tx
            .side_effects
            .realized
            .contains_key(&crate::side_effects::store::ptr_of(&obj.clone().unbind()))
    {
        return Ok(None);
    }
    let src = frame
        .pending_sources
        .get(&slot)
        .cloned()
        .unwrap_or_else(|| {
            Arc::new(Source::Local {
                index: slot as u32,
                name: frame.spec.localsplus.get(slot).cloned().unwrap_or_default(),
            })
        });
    tx.guard(&src, Guard::TypeMatch(obj.get_type().unbind()));
    tx.guard(&src, Guard::Len(n));
    let item = obj.get_item(k).map_err(|e| tx.err(e))?;
    let v = tx.realize(
        &item,
        Some(Arc::new(Source::Index {
            base: src,
            index: k,
        })),
    )?;
    frame.ip += 2;
    Ok(Some(v))
}

/// `d[k]` of a dict subclass missing `k`: the class's Python `__missing__(d, k)`, traced, as
/// dict's `__getitem__` calls it; without one, dict's own KeyError (catchable).
fn missing_key(tx: &mut Tracer<'_>, o: &ObjVal, k: &Value) -> TResult<Value> {
    let py = tx.py;
    if o.obj
        .bind(py)
        .get_type()
        .hasattr("__missing__")
        .unwrap_or(false)
    {
        let this = Value::Object(std::rc::Rc::new(ObjVal {
            obj: o.obj.clone_ref(py),
            kind: o.kind,
            source: o.source.clone(),
        }));
        return super::calls::call_dunder(tx, &this, "__missing__", vec![k.clone()]);
    }
    Err(super::exceptions::key_error(py, k.clone()))
}

/// `obj.name` of a `stock_seq` object when `name` is one of its base's own read-only
/// methods (`count`, `index`, `__contains__`, `__len__`, `__getitem__`), not overridden by
/// the class or the instance: that method of a plain sequence of its items. None: another
/// attribute (looked up as usual).
pub fn stock_seq_method(tx: &mut Tracer<'_>, o: &ObjVal, name: &str) -> TResult<Option<Value>> {
    const READS: [&str; 5] = ["count", "index", "__contains__", "__len__", "__getitem__"];
    const MUTATORS: [&str; 11] = [
        "append",
        "extend",
        "insert",
        "pop",
        "remove",
        "clear",
        "sort",
        "reverse",
        "copy",
        "__setitem__",
        "__delitem__",
    ];
    let mutator = MUTATORS.contains(&name);
    if o.kind != KIND_OBJECT || !(READS.contains(&name) || mutator) || !stock_seq(tx, o) {
        return Ok(None);
    }
    if mutator && !o.obj.bind(tx.py).is_instance_of::<pyo3::types::PyList>() {
        return Ok(None);
    }
    let py = tx.py;
    let obj = o.obj.bind(py);
    let is_tuple = obj.is_instance_of::<pyo3::types::PyTuple>();
    let base = if is_tuple {
        py.get_type::<pyo3::types::PyTuple>()
    } else {
        py.get_type::<pyo3::types::PyList>()
    };
    let same = match (obj.get_type().getattr(name), base.getattr(name)) {
        (Ok(a), Ok(b)) => a.is(&b),
        _ => false,
    };
    // An instance attribute of that name would shadow the method.
    let shadowed = obj
        .getattr("__dict__")
        .ok()
        .is_some_and(|d| d.contains(name).unwrap_or(true));
    if !same || shadowed {
        return Ok(None);
    }
    if let Some(src) = &o.source {
        let ty = Arc::new(Source::TypeOf { base: src.clone() });
        tx.guard(
            &Arc::new(Source::Attr {
                base: ty,
                name: name.to_string(),
            }),
            Guard::IdMatch(base.getattr(name).map_err(|e| tx.err(e))?.unbind()),
        );
        if obj.hasattr("__dict__").unwrap_or(false) {
            let inst = Arc::new(Source::InstDict { base: src.clone() });
            tx.guard(&inst, Guard::NotInDict(name.to_string()));
        }
    }
    let seq = if is_tuple {
        Value::new_tuple(stock_seq_items(tx, o)?)
    } else {
        match list_shadow(tx, o)? {
            Some(l) => Value::List(l),
            None => return Ok(None),
        }
    };
    Ok(Some(Value::BuiltinMethod(Rc::new((seq, name.to_string())))))
}

/// (key, value) pairs in order.
pub type DictItems = Vec<(Py<PyAny>, Value)>;

/// The items of a dict-subclass object in storage order, as `dict(obj)` and `{**obj}` copy
/// them (CPython copies a dict subclass's storage directly unless its class overrides
/// `__iter__`): None for anything else.
pub fn sub_dict_items(tx: &mut Tracer<'_>, v: &Value) -> TResult<Option<DictItems>> {
    let py = tx.py;
    let Value::Object(o) = v else {
        return Ok(None);
    };
    if o.kind != KIND_OBJECT || !is_sub_dict(o) {
        return Ok(None);
    }
    let ty = o.obj.bind(py).get_type();
    let dict_iter = py
        .get_type::<PyDict>()
        .getattr("__iter__")
        .map_err(|e| tx.err(e))?;
    if !ty.getattr("__iter__").is_ok_and(|f| f.is(&dict_iter)) {
        return Ok(None);
    }
    let items = sub_dict_read(tx, o, "items", &[])?;
    let mut out = Vec::new();
    for p in super::iter::unpack(tx, &items)? {
        let kv = super::iter::unpack(tx, &p)?;
        let [k, v] = kv.as_slice() else {
            return Err(Exit::internal("dict subclass item"));
        };
        out.push((dict_key_const(tx, k)?, v.clone()));
    }
    Ok(Some(out))
}
