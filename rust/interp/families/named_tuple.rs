//! Namedtuples, torch.return_types structseqs and other tuple subclasses whose instances
//! are their items (plus, for a subclass without `__slots__`, an instance dict of
//! attributes stored in the trace).

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::Family;
use crate::guards::Source;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::{NamedTupleVal, Value};

pub struct NamedTuple;

super::representation!(nt, NamedTuple, NamedTupleVal);

impl Family for NamedTuple {
    fn name(&self) -> &'static str {
        "namedtuple"
    }

    /// `cls(*items)` (or the structseq / field-less tuple-subclass constructor) again.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let n = nt(v)?;
        crate::interp::output::named_tuple_template(tx, n, out.outputs, out.extra)
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let py = tx.py;
        let n = nt(v)?;
        if let Some(i) = n.fields.iter().position(|f| f == name) {
            return Ok(n.items[i].clone());
        }
        if let Some((_, a)) = n.attrs.borrow().iter().rev().find(|(k, _)| k == name) {
            return Ok(a.clone());
        }
        if name == "_fields" && !n.fields.is_empty() {
            let t = PyTuple::new(py, &n.fields).map_err(|e| tx.err(e))?;
            return Ok(Value::Const(t.into_any().unbind()));
        }
        if n.fields.is_empty() && !n.structseq {
            // A field of a namedtuple that a subclass inherits: its `_tuplegetter` reads
            // the item at its index.
            let getter = crate::interp::attrs::tuple_getter_index(tx, &n.cls, name);
            if let Some(i) = getter.filter(|i| *i < n.items.len()) {
                return Ok(n.items[i].clone());
            }
            if let Some(r) = class_defined_attr(tx, v, &n.cls, name)? {
                return Ok(r);
            }
            // A field-less tuple subclass's own attributes (methods, class attributes) are
            // not modelled: only tuple's own methods are.
            let tuple_own = n
                .cls
                .bind(py)
                .getattr(name)
                .and_then(|a| py.get_type::<PyTuple>().getattr(name).map(|b| a.is(&b)))
                .unwrap_or(false);
            if !tuple_own {
                return Err(Exit::brk(format!(
                    "attribute '{name}' of a tuple subclass made in the trace"
                )));
            }
        }
        if !n.structseq {
            if let Some(r) = class_defined_attr(tx, v, &n.cls, name)? {
                return Ok(r);
            }
        }
        // Methods keep the namedtuple as receiver (a split rebuilds it with its class).
        Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))))
    }

    /// Only an instance of a subclass with an instance dict takes attributes, and only
    /// plain ones (no descriptor or `__setattr__` of the class intercepts them).
    fn setattr(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        value: Option<Value>,
    ) -> TResult<()> {
        let n = nt(v)?;
        if let Some(val) = value {
            if crate::side_effects::table::instances_have_dict(tx.py, &n.cls)
                && super::python_object::plain_instance_store(tx, &n.cls, name)
            {
                let mut attrs = n.attrs.borrow_mut();
                attrs.retain(|(k, _)| k != name);
                attrs.push((name.to_string(), val));
                drop(attrs);
                // An in-place change of a value made in the trace (a break in a callee
                // after it must not split the caller at that call).
                tx.side_effects.note_mutation();
                return Ok(());
            }
        }
        Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a '{}'",
            v.type_name(tx.py)
        )))
    }

    super::container_methods!();

    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let items = crate::interp::iter::unpack(tx, v)?;
        Ok(crate::interp::iter::items_iter(items))
    }

    fn truthy(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        Ok(!nt(v)?.items.is_empty())
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        Ok(nt(v)?.cls.bind(tx.py).clone())
    }

    /// Not one with attributes stored in the trace (its real instance dict differs).
    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let n = nt(v).ok()?;
        if !n.attrs.borrow().is_empty() {
            return None;
        }
        let conv: Option<Vec<_>> = n.items.iter().map(|i| tx.as_python_constant(i)).collect();
        let t = PyTuple::new(tx.py, conv?).ok()?;
        if n.structseq {
            n.cls.bind(tx.py).call1((t,)).ok()
        } else {
            n.cls.bind(tx.py).call1(t).ok()
        }
    }
}

/// `nt.name` found on the namedtuple's class, or a base other than `tuple`/`object`, in Python:
/// a method (`_asdict`, `_replace`, the user's own) bound to the value, a classmethod,
/// staticmethod or class constant as the class gives it, a property's getter traced. Read
/// through the class as a module global, so the read is guarded; a class reached no other
/// way breaks. None: not such an attribute (tuple's own methods and fields go on as before).
fn class_defined_attr(
    tx: &mut Tracer<'_>,
    v: &Value,
    cls: &Py<PyAny>,
    name: &str,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let cls = cls.bind(py).clone();
    let Ok(ty) = cls.cast::<pyo3::types::PyType>() else {
        return Ok(None);
    };
    let Some(raw) = crate::interp::calls::class_raw_attr(ty, name) else {
        return Ok(None);
    };
    let tuple_own = crate::interp::calls::class_raw_attr(&py.get_type::<PyTuple>(), name)
        .is_some_and(|t| t.is(&raw));
    // namedtuple's own `_replace` has a model of its own (containers.rs).
    let stock_replace = name == "_replace"
        && raw
            .getattr("__module__")
            .ok()
            .and_then(|m| m.extract::<String>().ok())
            .is_some_and(|m| m == "collections");
    // A field's `_tuplegetter` (read as an item above).
    let field = raw.get_type().name().is_ok_and(|t| t == "_tuplegetter");
    if tuple_own || stock_replace || field {
        return Ok(None);
    }
    // A class defined in a function cannot be guarded this way: as before, the attribute is
    // looked for among tuple's methods (and breaks there).
    let Some(src) = crate::interp::attrs::module_level_class_source(&cls) else {
        return Ok(None);
    };
    let property = py
        .import("builtins")
        .and_then(|b| b.getattr("property"))
        .map_err(|e| tx.err(e))?;
    if raw.get_type().is(&property) {
        // `cls.__mro__[i].__dict__[name].fget`, guarded where it was found.
        let idx = ty
            .getattr("__mro__")
            .and_then(|m| {
                m.try_iter()?
                    .position(|k| {
                        k.and_then(|k| k.getattr("__dict__"))
                            .and_then(|d| d.get_item(name))
                            .is_ok_and(|x| x.is(&raw))
                    })
                    .ok_or_else(|| pyo3::exceptions::PyAttributeError::new_err(name.to_string()))
            })
            .map_err(|e| tx.err(e))?;
        let fget = raw.getattr("fget").map_err(|e| tx.err(e))?;
        let fsrc = Arc::new(Source::Attr {
            base: crate::interp::attrs::mro_dict_item(&src, idx as isize, name),
            name: "fget".into(),
        });
        let fget = tx.realize(&fget, Some(fsrc))?;
        return super::call(tx, &fget, vec![v.clone()], Vec::new()).map(Some);
    }
    let cls_v = tx.realize(&cls, Some(src))?;
    let attr = super::getattr(tx, &cls_v, name)?;
    if raw.is_instance_of::<pyo3::types::PyFunction>() {
        return Ok(Some(Value::BoundMethod(Rc::new((v.clone(), attr)))));
    }
    Ok(Some(attr))
}
