//! Classes: calling one constructs an instance (user `__new__`/`__init__` traced, a
//! namedtuple, a ModelOutput dataclass, a TypedDict's plain dict).

use pyo3::prelude::*;

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::{ObjVal, Value};

pub struct UserClass;

/// A `typing.TypedDict` (or typing_extensions') class: its metaclass is `_TypedDictMeta`.
fn is_typed_dict(cls: &Bound<'_, PyAny>) -> bool {
    let meta = cls.get_type();
    !meta.is(cls.py().get_type::<pyo3::types::PyType>())
        && meta.name().is_ok_and(|n| n == "_TypedDictMeta")
        && meta
            .module()
            .is_ok_and(|m| m == "typing" || m == "typing_extensions")
}

/// A class whose metaclass iterates it with `enum.EnumType`'s own `__iter__`.
fn iterates_as_enum(cls: &Bound<'_, PyAny>) -> bool {
    let py = cls.py();
    let Ok(enum_type) = py.import("enum").and_then(|m| m.getattr("EnumMeta")) else {
        return false;
    };
    let meta = cls.get_type();
    let Ok(own) = enum_type
        .getattr("__dict__")
        .and_then(|d| d.get_item("__iter__"))
    else {
        return false;
    };
    crate::interp::calls::class_raw_attr(&meta, "__iter__").is_some_and(|f| f.is(&own))
}

fn is_namedtuple_class(tx: &Tracer<'_>, cls: &Bound<'_, PyAny>) -> bool {
    !tx.hooks
        .namedtuple_info
        .bind(tx.py)
        .call1((cls,))
        .map(|i| i.is_none())
        .unwrap_or(true)
}

impl Family for UserClass {
    fn name(&self) -> &'static str {
        "class"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        reconstruct
    );

    /// `iter(EnumClass)`: its members in definition order, as `EnumType.__iter__` gives them
    /// (`_member_names_`, read and guarded through the class); other classes break.
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let py = tx.py;
        let o = obj(v)?;
        if !iterates_as_enum(&o.obj.bind(py).clone()) {
            return Err(Exit::brk("iteration over a class"));
        }
        let names = super::getattr(tx, v, "_member_names_")?;
        let names = crate::interp::iter::unpack(tx, &names)?;
        let mut members = Vec::with_capacity(names.len());
        for n in &names {
            let name: String = n
                .as_const(py)
                .and_then(|c| c.extract().ok())
                .ok_or_else(|| Exit::brk("an enum's _member_names_ holding a non-string"))?;
            members.push(super::getattr(tx, v, &name)?);
        }
        Ok(crate::interp::iter::items_iter(members))
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let py = tx.py;
        let o = obj(v)?;
        let cls = o.obj.bind(py).clone();
        if let Some(r) = crate::interp::model_output::construct(tx, &cls, &args, &kwargs)? {
            return Ok(r);
        }
        if crate::interp::random_objects::is_random_class(tx, &cls) {
            return crate::interp::random_objects::construct(tx, &args, &kwargs);
        }
        if is_typed_dict(&cls) {
            // Calling a TypedDict class makes a plain dict (one with optional keys breaks,
            // as in torch.compile).
            if cls
                .getattr("__optional_keys__")
                .and_then(|k| k.len())
                .is_ok_and(|n| n > 0)
            {
                return Err(Exit::brk(
                    "constructing a TypedDict with optional keys (torch.compile breaks too)",
                ));
            }
            let dict = tx.realize(crate::interp::stdlib::r(tx)?.dict.bind(py), None)?;
            return super::call(tx, &dict, args, kwargs);
        }
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        if is_namedtuple_class(tx, &cls) {
            return crate::interp::calls::construct_namedtuple(tx, &cls, args, kwargs);
        }
        construct(tx, v, o, args, kwargs)
    }
}

/// `cls(*args, **kwargs)` for the class value `cls_v`.
fn construct(
    tx: &mut Tracer<'_>,
    cls_v: &Value,
    cls: &ObjVal,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let c = cls.obj.bind(py).clone();
    let new = c.getattr("__new__").map_err(|e| tx.err(e))?;
    let python_new = !new.is(tx.hooks.object_new.bind(py))
        && new.get_type().name().is_ok_and(|n| n == "function");
    let v = if python_new {
        // `cls.__new__(cls, *args, **kwargs)` traced (its `super().__new__(cls)` allocates);
        // `__init__` runs only on an instance of `cls`, as `type.__call__` does.
        let new_v = crate::interp::families::getattr(tx, cls_v, "__new__")?;
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(cls_v.clone());
        all.extend(args.iter().cloned());
        let made = crate::interp::families::call(tx, &new_v, all, kwargs.clone())?;
        let Value::Object(m) = &made else {
            return Ok(made);
        };
        if !m.obj.bind(py).is_instance(&c).map_err(|e| tx.err(e))? {
            return Ok(made);
        }
        made
    } else {
        crate::side_effects::new_objects::allocate(tx, cls, false)?
    };
    let init = c.getattr("__init__").map_err(|e| tx.err(e))?;
    if let Some(filled) =
        crate::interp::container_objects::construct_init(tx, &v, &init, &args, &kwargs)?
    {
        return Ok(filled);
    }
    let object_init = tx
        .hooks
        .object
        .bind(py)
        .getattr("__init__")
        .map_err(|e| tx.err(e))?;
    if init.is(&object_init) {
        if !python_new && (!args.is_empty() || !kwargs.is_empty()) {
            return Err(Exit::brk(format!(
                "TypeError: {}() takes no arguments",
                tx.describe(&c)
            )));
        }
        return Ok(v);
    }
    let init_v = crate::interp::families::getattr(tx, cls_v, "__init__")?;
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(v.clone());
    all.extend(args);
    let r = crate::interp::families::call(tx, &init_v, all, kwargs)?;
    if !matches!(&r, Value::Const(n) if n.bind(py).is_none()) {
        return Err(Exit::brk("TypeError: __init__() should return None"));
    }
    Ok(v)
}
