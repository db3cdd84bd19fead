//! `obj.__dict__` of a user object whose attributes the trace has changed (or that the trace
//! created): a live view of the instance namespace, so reads see pending stores and writes
//! become attribute stores. (An untouched object's `__dict__` is a mirror of the real dict,
//! see `attrs.rs`.) Reads by constant string key are modelled (`d[k]`, `d.get(k)`, `k in d`),
//! as are writes (`d[k] = v`, `d.update(...)`); listing the namespace of an object from the
//! inputs, or letting the view escape, breaks the graph.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::exit::{Exit, TResult};
use super::kinds::KIND_OBJECT;
use super::stdlib::StdVal;
use super::tracer::Tracer;
use super::value::Value;
use crate::guards::{Guard, Source};
use crate::side_effects::store::ptr_of;

/// The view of `obj.__dict__`.
pub fn view(obj: &Value) -> Value {
    Value::Std(Rc::new(StdVal::InstDict { obj: obj.clone() }))
}

/// Whether `obj.__dict__` should be the live view: a plain user object with pending
/// attribute stores (every object made in the trace has them).
pub fn wants_view(tx: &Tracer<'_>, obj: &Value) -> bool {
    matches!(obj, Value::Object(o)
        if o.kind == KIND_OBJECT && tx.side_effects.has_pending(ptr_of(&o.obj)))
}

fn key_str(tx: &Tracer<'_>, key: &Value) -> TResult<String> {
    tx.as_python_constant(key)
        .and_then(|k| {
            k.is_exact_instance_of::<pyo3::types::PyString>()
                .then(|| k.extract::<String>().ok())
                .flatten()
        })
        .ok_or_else(|| Exit::brk("obj.__dict__ indexed by a key that is not a constant str"))
}

/// The namespace entry `name` of `obj` (None: absent).
fn lookup(tx: &mut Tracer<'_>, obj: &Value, name: &str) -> TResult<Option<Value>> {
    let Value::Object(o) = obj else {
        return Err(Exit::internal("instance dict view of a non-object"));
    };
    let ptr = ptr_of(&o.obj);
    if let Some(p) = tx.side_effects.pending_attr(ptr, name) {
        return Ok(p);
    }
    if tx.side_effects.is_new(ptr) {
        return Ok(None);
    }
    let Some(base) = &o.source else {
        return Err(Exit::brk("obj.__dict__ of an object with no source"));
    };
    let py = tx.py;
    let inst = Arc::new(Source::InstDict { base: base.clone() });
    let real = o.obj.bind(py).getattr("__dict__").map_err(|e| tx.err(e))?;
    let real = real
        .cast::<PyDict>()
        .map_err(|_| Exit::brk("obj.__dict__ that is not a dict"))?
        .clone();
    match real.get_item(name).map_err(|e| tx.err(e))? {
        Some(v) => {
            let src = Arc::new(Source::Attr {
                base: base.clone(),
                name: name.to_string(),
            });
            tx.guard(&inst, Guard::TypeMatch(real.get_type().unbind()));
            Ok(Some(tx.realize(&v, Some(src))?))
        }
        None => {
            tx.guard(&inst, Guard::NotInDict(name.to_string()));
            Ok(None)
        }
    }
}

/// The names of the namespace, in order, with their values. An object from the inputs
/// lists its real keys (guarded, in order) changed by the trace's pending stores and
/// deletions, in the order they were made (a new name goes last, as in a dict).
fn names(tx: &mut Tracer<'_>, obj: &Value) -> TResult<Vec<(String, Value)>> {
    let Value::Object(o) = obj else {
        return Err(Exit::internal("instance dict view of a non-object"));
    };
    let ptr = ptr_of(&o.obj);
    if let Some(n) = tx.side_effects.new_object(ptr) {
        return Ok(n.attrs.clone());
    }
    let Some(base) = &o.source else {
        return Err(Exit::brk(
            "listing obj.__dict__ of an object with no source",
        ));
    };
    let py = tx.py;
    let real = o.obj.bind(py).getattr("__dict__").map_err(|e| tx.err(e))?;
    let real = real
        .cast::<PyDict>()
        .map_err(|_| Exit::brk("obj.__dict__ that is not a dict"))?
        .clone();
    let mut keys: Vec<String> = Vec::new();
    for k in real.keys() {
        keys.push(
            k.cast_exact::<pyo3::types::PyString>()
                .map_err(|_| Exit::brk("listing obj.__dict__ with a key that is not a str"))?
                .to_string(),
        );
    }
    let inst = Arc::new(Source::InstDict { base: base.clone() });
    tx.guard(
        &inst,
        Guard::DictKeys(real.keys().iter().map(|k| k.unbind()).collect()),
    );
    for m in &tx.side_effects.log {
        let (target, name, set) = match m {
            crate::side_effects::store::Mutation::SetAttr { target, name, .. } => {
                (target, name, true)
            }
            crate::side_effects::store::Mutation::DelAttr { target, name } => (target, name, false),
            _ => continue,
        };
        if !matches!(target, Value::Object(t) if ptr_of(&t.obj) == ptr) {
            continue;
        }
        let at = keys.iter().position(|k| k == name);
        match (set, at) {
            (true, None) => keys.push(name.clone()),
            (false, Some(i)) => {
                keys.remove(i);
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let v = lookup(tx, obj, &k)?.ok_or_else(|| Exit::internal("namespace entry vanished"))?;
        out.push((k, v));
    }
    Ok(out)
}

/// `d[k] = v` (None: `del d[k]`): the instance-dict store, past the class's `__setattr__`.
/// With a data descriptor of that name on the class, the entry is written into the dict of
/// a pre-existing object (`obj.name` still reads through the descriptor); other cases
/// (deletion, an object made in the trace) break.
pub fn store(tx: &mut Tracer<'_>, obj: &Value, key: &Value, value: Option<Value>) -> TResult<()> {
    let name = key_str(tx, key)?;
    if let Value::Object(o) = obj {
        if super::attrs::class_data_descriptor(tx, o, &name) {
            let ptr = ptr_of(&o.obj);
            return match (value, &o.source) {
                (Some(v), Some(_)) if o.kind == KIND_OBJECT && !tx.side_effects.is_new(ptr) => {
                    tx.side_effects
                        .store_existing_dict_entry(obj, ptr, &name, v);
                    Ok(())
                }
                _ => Err(Exit::brk(format!(
                    "obj.__dict__['{name}'] with a descriptor '{name}' on the class"
                ))),
            };
        }
    }
    crate::interp::families::python_object::store_attr_direct(tx, obj, &name, value)
}

/// `mirror[k] = v` where `mirror` is the real `obj.__dict__` of an untouched object read
/// earlier in the trace: the instance-dict store on `obj`, shown in the mirror as well (the
/// mirror itself is not replayed: the store is).
pub fn store_through_mirror(
    tx: &mut Tracer<'_>,
    obj: &Value,
    mirror: &super::value::DictVal,
    key: &Value,
    value: Value,
) -> TResult<()> {
    let Value::Object(o) = obj else {
        return Err(Exit::internal("namespace mirror of a non-object"));
    };
    let ptr = ptr_of(&o.obj);
    // The store is made through the mirror, so the mirror will show it.
    let exposed = tx.side_effects.dict_exposed.remove(&ptr);
    let r = store(tx, obj, key, Some(value.clone()));
    if exposed {
        tx.side_effects.dict_exposed.insert(ptr);
    }
    r?;
    let k = super::dispatch::dict_key_const(tx, key)?;
    super::dispatch::dict_set(tx, mirror, k, value);
    Ok(())
}

/// `d[k]`: a KeyError (observed) when absent.
pub fn subscr(tx: &mut Tracer<'_>, obj: &Value, key: &Value) -> TResult<Value> {
    let name = key_str(tx, key)?;
    match lookup(tx, obj, &name)? {
        Some(v) => Ok(v),
        None => Err(super::exceptions::raise_builtin(tx.py, "KeyError", name)),
    }
}

pub fn contains(tx: &mut Tracer<'_>, obj: &Value, key: &Value) -> TResult<bool> {
    let name = key_str(tx, key)?;
    Ok(lookup(tx, obj, &name)?.is_some())
}

pub fn len(tx: &mut Tracer<'_>, obj: &Value) -> TResult<usize> {
    Ok(names(tx, obj)?.len())
}

/// The names of the namespace, in order (iterating the view).
pub fn keys(tx: &mut Tracer<'_>, obj: &Value) -> TResult<Vec<Value>> {
    let py = tx.py;
    Ok(names(tx, obj)?
        .into_iter()
        .map(|(k, _)| Value::constant(py, k))
        .collect())
}

/// `d.name(*args)`.
pub fn call_method(tx: &mut Tracer<'_>, obj: &Value, name: &str, args: &[Value]) -> TResult<Value> {
    let py = tx.py;
    match (name, args) {
        ("get", [k]) => Ok(match lookup(tx, obj, &key_str(tx, k)?)? {
            Some(v) => v,
            None => Value::none(py),
        }),
        ("get", [k, d]) => Ok(lookup(tx, obj, &key_str(tx, k)?)?.unwrap_or_else(|| d.clone())),
        ("__getitem__", [k]) => subscr(tx, obj, k),
        ("__contains__", [k]) => Ok(Value::constant(py, contains(tx, obj, k)?)),
        ("__setitem__", [k, v]) => {
            store(tx, obj, k, Some(v.clone()))?;
            Ok(Value::none(py))
        }
        ("update", [Value::Dict(d)]) => {
            let items: Vec<(Py<PyAny>, Value)> = tx.dict_items(d)?;
            for (k, v) in items {
                store(tx, obj, &Value::Const(k), Some(v))?;
            }
            Ok(Value::none(py))
        }
        // Objects made in the trace: their namespace is known entirely. (A list stands for
        // the dict view: the same items, in order, for iteration and len().)
        ("keys", []) => Ok(Value::new_list(
            names(tx, obj)?
                .into_iter()
                .map(|(k, _)| Value::constant(py, k))
                .collect(),
        )),
        ("values", []) => Ok(Value::new_list(
            names(tx, obj)?.into_iter().map(|(_, v)| v).collect(),
        )),
        ("items", []) => Ok(Value::new_list(
            names(tx, obj)?
                .into_iter()
                .map(|(k, v)| Value::new_tuple(vec![Value::constant(py, k), v]))
                .collect(),
        )),
        _ => Err(Exit::brk(format!(
            "obj.__dict__.{name}() of a traced object"
        ))),
    }
}
