//! Instances of `set` and `frozenset` subclasses from the inputs, whose class keeps the
//! base's own methods: those methods act on the object's contents, read by the set type's
//! C iterator (no method of the subclass runs) and guarded by that order.
//!
//! A set-subclass object gets a mirror (a pinned set value, `stdlib_set::pinned_mirror`):
//! `add`, `discard`, `update`, ... change the mirror, and the change is replayed on the
//! object's storage after the graph. A frozenset-subclass object is immutable: its base's
//! methods are pure and run at trace time on the object itself (their results are plain
//! sets and frozensets of constants, as eager's are). The subclass's own Python methods
//! and attributes stay those of a user object.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyFrozenSet, PySet};

use super::exit::{Exit, TResult};
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{ObjVal, Value};
use crate::guards::{Guard, Source};

/// The set type whose methods `o`'s class inherits, for a set/frozenset subclass object
/// from the inputs without pending stores.
fn base<'py>(tx: &Tracer<'py>, o: &ObjVal) -> Option<Bound<'py, pyo3::types::PyType>> {
    let py = tx.py;
    let obj = o.obj.bind(py);
    // The type tests first: this is asked on every attribute read of an object.
    let ty = if obj.is_instance_of::<PySet>() && !obj.is_exact_instance_of::<PySet>() {
        py.get_type::<PySet>()
    } else if obj.is_instance_of::<PyFrozenSet>() && !obj.is_exact_instance_of::<PyFrozenSet>() {
        py.get_type::<PyFrozenSet>()
    } else {
        return None;
    };
    let pending = tx
        .side_effects
        .has_pending(crate::side_effects::store::ptr_of(&o.obj));
    (o.kind == KIND_OBJECT && o.source.is_some() && !pending).then_some(ty)
}

/// Whether `type(o).name` is the base's own `name` and no instance attribute shadows it;
/// guarded so.
fn inherits(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    ty: &Bound<'_, pyo3::types::PyType>,
    name: &str,
) -> TResult<bool> {
    let py = tx.py;
    let obj = o.obj.bind(py);
    let Ok(own) = ty.getattr(name) else {
        return Ok(false);
    };
    let same = obj.get_type().getattr(name).is_ok_and(|a| a.is(&own));
    let shadowed = obj
        .getattr("__dict__")
        .ok()
        .is_some_and(|d| d.contains(name).unwrap_or(true));
    if !same || shadowed {
        return Ok(false);
    }
    let Some(src) = &o.source else {
        return Ok(false);
    };
    let ty_src = Arc::new(Source::TypeOf { base: src.clone() });
    tx.guard(
        &Arc::new(Source::Attr {
            base: ty_src,
            name: name.to_string(),
        }),
        Guard::IdMatch(own.unbind()),
    );
    if obj.hasattr("__dict__").unwrap_or(false) {
        tx.guard(
            &Arc::new(Source::InstDict { base: src.clone() }),
            Guard::NotInDict(name.to_string()),
        );
    }
    Ok(true)
}

/// The mirror of a set-subclass object (made on first use, then shared by every read).
fn shadow(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Value>> {
    let key = o.obj.as_ptr() as usize;
    if let Some(v) = tx.set_shadows.get(&key) {
        return Ok(Some(v.clone()));
    }
    let Some(src) = o.source.clone() else {
        return Ok(None);
    };
    let obj = o.obj.bind(tx.py).clone();
    let Some(v) = super::stdlib_set::pinned_mirror(tx, &obj, &src)? else {
        return Ok(None);
    };
    tx.set_shadows.insert(key, v.clone());
    Ok(Some(v))
}

/// The members of a frozenset-subclass object as constants, in its iteration order
/// (guarded: the order pins the contents).
fn frozen_members(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Vec<Value>>> {
    let py = tx.py;
    let Some(src) = &o.source else {
        return Ok(None);
    };
    let Some(members) = super::stdlib_set::c_members(o.obj.bind(py)) else {
        return Ok(None);
    };
    let order = pyo3::types::PyTuple::new(py, &members).map_err(|e| tx.err(e))?;
    tx.guard(
        &Arc::new(Source::SetOrder { base: src.clone() }),
        Guard::Equals(order.into_any().unbind()),
    );
    Ok(Some(
        members
            .into_iter()
            .map(|m| Value::Const(m.unbind()))
            .collect(),
    ))
}

/// `o.name` for one of the base's own methods: a method of the mirror (set), or the bound
/// C method as a pure function (frozenset). None when it does not apply.
pub fn method(tx: &mut Tracer<'_>, o: &ObjVal, name: &str) -> TResult<Option<Value>> {
    let Some(ty) = base(tx, o) else {
        return Ok(None);
    };
    if name.starts_with('_') || !inherits(tx, o, &ty, name)? {
        return Ok(None);
    }
    if ty.is(tx.py.get_type::<PySet>()) {
        return match shadow(tx, o)? {
            Some(s) => super::families::getattr(tx, &s, name).map(Some),
            None => Ok(None),
        };
    }
    if frozen_members(tx, o)?.is_none() {
        return Ok(None);
    }
    let bound = o.obj.bind(tx.py).getattr(name).map_err(|e| tx.err(e))?;
    Ok(Some(Value::Object(Rc::new(ObjVal {
        obj: bound.unbind(),
        kind: KIND_PURE,
        source: None,
    }))))
}

/// `type(o).name(o, *args)` for the dunders the base implements in C (`__len__`,
/// `__contains__`, `__iter__`), on the contents. None when it does not apply.
pub fn dunder(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    name: &str,
    args: &[Value],
) -> TResult<Option<Value>> {
    let py = tx.py;
    if !matches!(name, "__len__" | "__contains__" | "__iter__") {
        return Ok(None);
    }
    let Some(ty) = base(tx, o) else {
        return Ok(None);
    };
    if !inherits(tx, o, &ty, name)? {
        return Ok(None);
    }
    let contents = if ty.is(py.get_type::<PySet>()) {
        shadow(tx, o)?
    } else {
        frozen_members(tx, o)?.map(Value::new_tuple)
    };
    let Some(c) = contents else {
        return Ok(None);
    };
    match (name, args) {
        ("__len__", []) => super::builtins::len_of(tx, &c).map(Some),
        ("__contains__", [x]) => Ok(Some(Value::constant(py, super::ops::contains(tx, &c, x)?))),
        ("__iter__", []) => super::families::iter(tx, &c).map(Some),
        _ => Err(Exit::brk(format!(
            "{name} of a set subclass with these arguments"
        ))),
    }
}

/// The mirror a set-subclass object iterates through (its class keeps set's `__iter__`),
/// for operations that consume the whole iteration (`sorted`). None when it does not apply.
pub fn iterated_contents(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Value>> {
    let Some(ty) = base(tx, o) else {
        return Ok(None);
    };
    if !ty.is(tx.py.get_type::<PySet>()) || !inherits(tx, o, &ty, "__iter__")? {
        return Ok(None);
    }
    shadow(tx, o)
}
