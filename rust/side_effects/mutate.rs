//! The interpreter's entry points into the store: attribute stores and deletes, global and
//! closure-cell writes, item deletes, `print`, and the reads that must see pending writes.
//! Whatever cannot be recorded faithfully is a graph break.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::store::ptr_of;
use crate::guards::{Guard, Source};
use crate::interp::exit::{Exit, TResult};
use crate::interp::frame::Frame;
use crate::interp::kinds::*;
use crate::interp::tracer::Tracer;
use crate::interp::value::{ExternalCell, ObjVal, Value};
use crate::ImportCached;

/// `o.name` is missing (`read`: the object, for a read; None for a failed `del`). A plain
/// object's miss is CPython's observed AttributeError; anything else breaks the graph.
fn attribute_error(tx: &Tracer<'_>, o: &ObjVal, name: &str, read: Option<&Value>) -> Exit {
    let ty = o.obj.bind(tx.py).get_type();
    let ty_name = ty.name().map(|n| n.to_string()).unwrap_or_default();
    // A read falls back to the class (or __getattr__): only a miss there too is an error.
    let class_has = read.is_some()
        && (ty.hasattr(name).unwrap_or(true) || ty.hasattr("__getattr__").unwrap_or(true));
    if o.kind == KIND_OBJECT && !class_has {
        return crate::interp::exceptions::attribute_error(tx.py, read, &ty_name, name);
    }
    Exit::brk(format!(
        "'{ty_name}' object has no attribute '{name}' (AttributeError)"
    ))
}

/// A pending value for `o.name` (a store or delete recorded in this trace), if any.
pub fn load_pending_attr(tx: &Tracer<'_>, o: &ObjVal, name: &str) -> TResult<Option<Value>> {
    let ptr = ptr_of(&o.obj);
    if matches!(o.kind, KIND_PY_MODULE | KIND_TORCH_MODULE) {
        if !tx.side_effects.has_pending_globals() {
            return Ok(None);
        }
        // `module.X` after a `global X` write in that module's code.
        if let Ok(d) = o.obj.bind(tx.py).getattr("__dict__") {
            let d = d.unbind();
            if let Some(p) = tx.side_effects.pending_global(&d, name) {
                return p.map(Some).ok_or_else(|| {
                    Exit::brk(format!("module has no attribute '{name}' (AttributeError)"))
                });
            }
        }
        return Ok(None);
    }
    if name == "__dict__" && tx.side_effects.has_pending(ptr) {
        return Err(Exit::brk(
            "reading __dict__ of an object with pending attribute mutations",
        ));
    }
    match tx.side_effects.pending_attr(ptr, name) {
        Some(Some(v)) => Ok(Some(v)),
        Some(None) => Err(attribute_error(
            tx,
            o,
            name,
            Some(&Value::Object(Rc::new(ObjVal {
                obj: o.obj.clone_ref(tx.py),
                kind: o.kind,
                source: o.source.clone(),
            }))),
        )),
        None => Ok(None),
    }
}

/// `obj.name = value` (`value` None: `del obj.name`).
pub fn store_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    if let Value::Exception(e) = obj {
        return crate::interp::exceptions::store_attr(tx, e, name, value);
    }
    if let (Value::Std(s), Some(v)) = (obj, &value) {
        if let crate::interp::stdlib::StdVal::ModelOutput { .. } = &**s {
            return crate::interp::model_output::store(tx, s, name, v.clone(), false);
        }
    }
    // A function made in the trace: its attributes live on its value until it is rebuilt.
    if let Value::Function(f) = obj {
        if f.obj.is_none() {
            return store_new_function_attr(tx, f, name, value);
        }
    }
    if let (Value::NamedTuple(n), Some(v)) = (obj, &value) {
        if crate::side_effects::table::instances_have_dict(tx.py, &n.cls)
            && plain_instance_store(tx, &n.cls, name)
        {
            let mut attrs = n.attrs.borrow_mut();
            attrs.retain(|(k, _)| k != name);
            attrs.push((name.to_string(), v.clone()));
            drop(attrs);
            // An in-place change of a value made in the trace (a break in a callee after
            // it must not split the caller at that call).
            tx.side_effects.note_mutation();
            return Ok(());
        }
    }
    store_object_attr(tx, obj, name, value, false)
}

/// Whether `obj.name = v` on an instance of `cls` is the plain instance-dict store: the
/// class keeps `object.__setattr__` and has no attribute `name` (so no descriptor or field
/// intercepts it).
fn plain_instance_store(tx: &Tracer<'_>, cls: &Py<PyAny>, name: &str) -> bool {
    let py = tx.py;
    let cls = cls.bind(py);
    let object_setattr = py
        .get_type::<pyo3::types::PyAny>()
        .getattr("__setattr__")
        .ok();
    let same = match (cls.getattr("__setattr__"), object_setattr) {
        (Ok(a), Some(b)) => a.is(&b),
        _ => false,
    };
    same && !cls.hasattr(name).unwrap_or(true)
}

/// `object.__setattr__(obj, name, value)` (value None: `object.__delattr__`): the plain
/// instance-dict (or slot) store, past any `__setattr__` of the class.
pub fn store_attr_direct(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    store_object_attr(tx, obj, name, value, true)
}

/// A store on a user object: traced through the class's own Python `__setattr__` /
/// `__delattr__` (`obj.name = v` is `type(obj).__setattr__(obj, name, v)`, whose
/// `super().__setattr__` is the plain store) unless `direct`, else the plain store.
fn store_object_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
    direct: bool,
) -> TResult<()> {
    let py = tx.py;
    let Value::Object(o) = obj else {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a '{}'",
            obj.type_name(py)
        )));
    };
    let ptr = ptr_of(&o.obj);
    if o.kind == KIND_NN_MODULE {
        return store_module_attr(tx, obj, name, value);
    }
    let custom = tx
        .hooks
        .setattr_plain
        .bind(py)
        .call1((o.obj.bind(py), name, direct, value.is_none()))
        .map_err(|e| tx.err(e))?;
    if custom.is_instance_of::<pyo3::types::PyString>() {
        // A data descriptor with a Python `__set__`/`__delete__` on the class: trace
        // `type(d).__set__(d, obj, v)`.
        let hook = if value.is_some() {
            "__set__"
        } else {
            "__delete__"
        };
        let (f, d) = crate::interp::attrs::class_descriptor_hook(tx, o, name, hook)?;
        let mut args = vec![d, obj.clone()];
        args.extend(value);
        crate::interp::calls::call_value(tx, &f, args, Vec::new())?;
        return Ok(());
    }
    if !custom.is_none() {
        let slot = if value.is_some() {
            "__setattr__"
        } else {
            "__delattr__"
        };
        let f = tx.realize(
            &custom,
            crate::interp::attrs::class_member_source(tx, o, slot),
        )?;
        let mut args = vec![obj.clone(), Value::constant(py, name)];
        args.extend(value);
        crate::interp::calls::call_value(tx, &f, args, Vec::new())?;
        return Ok(());
    }
    if tx.side_effects.dict_exposed.contains(&ptr) {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' after obj.__dict__ was read in the trace"
        )));
    }
    if tx.side_effects.is_new(ptr) {
        if !tx.side_effects.store_new_attr(ptr, name, value) {
            return Err(attribute_error(tx, o, name, None));
        }
        return Ok(());
    }
    if o.kind != KIND_OBJECT && !(o.kind == KIND_CLASS && value.is_some()) {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of {} (only plain Python objects are supported)",
            tx.describe(o.obj.bind(py))
        )));
    }
    let Some(src) = &o.source else {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of an object the compiled code cannot reach again"
        )));
    };
    if value.is_none() {
        match tx.side_effects.pending_attr(ptr, name) {
            Some(Some(_)) => {}
            Some(None) => return Err(attribute_error(tx, o, name, None)),
            None => {
                let has = o
                    .obj
                    .bind(py)
                    .getattr("__dict__")
                    .and_then(|d| d.cast_into::<PyDict>().map_err(PyErr::from))
                    .and_then(|d| d.contains(name))
                    .unwrap_or(false);
                if !has {
                    return Err(attribute_error(tx, o, name, None));
                }
                tx.guard(src, Guard::HasAttr(name.to_string(), true));
            }
        }
    }
    if o.kind == KIND_CLASS {
        tx.side_effects.class_stores += 1;
    }
    tx.side_effects.store_existing_attr(obj, ptr, name, value);
    Ok(())
}

/// `module.name = value`: supported only when it changes nothing, i.e. storing back the
/// tensor already there (`self.buf += 1` is an in-place op on the buffer, recorded in the
/// graph; eager's setattr then stores the same tensor object). The fake tensor an op
/// returns is its input's exactly when the real op returns its input.
fn store_module_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    if let Some(Value::Tensor(new)) = &value {
        if let Ok(Value::Tensor(cur)) = crate::interp::attrs::load_attr(tx, obj, name) {
            let fake = |t: &Py<PyAny>| t.bind(py).getattr("fake").ok();
            if let (Some(a), Some(b)) = (fake(&cur), fake(new)) {
                if a.is(&b) {
                    return Ok(());
                }
            }
        }
    }
    if let Some(v) = &value {
        if plain_module_store(tx, obj, name, v)? {
            let Value::Object(o) = obj else {
                return Err(Exit::internal("module store on a non-object"));
            };
            tx.side_effects
                .store_existing_attr(obj, ptr_of(&o.obj), name, value);
            return Ok(());
        }
    }
    Err(Exit::brk(format!(
        "assignment to attribute '{name}' of an nn.Module (only plain Python values not \
         registered as a parameter, buffer or submodule, or storing back the same tensor)"
    )))
}

/// Whether `module.name = v` is a plain instance-dict store: a pre-existing module whose
/// class keeps `nn.Module.__setattr__`, `name` not one of its parameters, buffers or
/// submodules (guarded), and `v` a Python value that is neither a tensor nor a module (what
/// `nn.Module.__setattr__` hands to `object.__setattr__`), e.g. `self.shift_size = 0`.
fn plain_module_store(tx: &mut Tracer<'_>, obj: &Value, name: &str, v: &Value) -> TResult<bool> {
    let py = tx.py;
    let Value::Object(o) = obj else {
        return Ok(false);
    };
    let Some(src) = &o.source else {
        return Ok(false);
    };
    let Value::Const(c) = v else {
        return Ok(false);
    };
    if tx.side_effects.is_new(ptr_of(&o.obj)) {
        return Ok(false);
    }
    let c = c.bind(py);
    let torch_like = c.get_type().module().is_ok_and(|m| {
        m.to_str()
            .is_ok_and(|m| m == "torch" || m.starts_with("torch."))
    });
    if torch_like {
        return Ok(false);
    }
    let m = o.obj.bind(py);
    let setattr_is_modules = m
        .get_type()
        .getattr("__setattr__")
        .and_then(|f| {
            let module_cls = py.import_cached("torch.nn")?.getattr("Module")?;
            Ok(f.is(&module_cls.getattr("__setattr__")?))
        })
        .unwrap_or(false);
    if !setattr_is_modules {
        return Ok(false);
    }
    let inst = Arc::new(Source::InstDict { base: src.clone() });
    for table in ["_parameters", "_buffers", "_modules"] {
        let Ok(d) = m.getattr(table) else {
            return Ok(false);
        };
        if d.contains(name).unwrap_or(true) {
            return Ok(false);
        }
        let tsrc = Arc::new(Source::DictItem {
            base: inst.clone(),
            key: crate::guards::DictKey::Str(table.to_string()),
        });
        tx.guard(&tsrc, Guard::NotInDict(name.to_string()));
    }
    Ok(true)
}

/// `global name = value` (`value` None: `del name`) in `frame`'s globals.
pub fn store_global(
    tx: &mut Tracer<'_>,
    frame: &Frame,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    if value.is_none() {
        let exists = match tx.side_effects.pending_global(&frame.globals, name) {
            Some(v) => v.is_some(),
            None => frame
                .globals
                .bind(py)
                .cast::<PyDict>()
                .map_err(|e| tx.err(e.into()))?
                .contains(name)
                .map_err(|e| tx.err(e))?,
        };
        if !exists {
            return Err(Exit::brk(format!(
                "name '{name}' is not defined (NameError)"
            )));
        }
    }
    tx.side_effects
        .store_global(py, &frame.globals, name, value);
    Ok(())
}

/// A pending value for the global `name` of `frame`: Some(Ok(v)) stored, Some(Err) deleted.
pub fn load_pending_global(tx: &Tracer<'_>, frame: &Frame, name: &str) -> Option<TResult<Value>> {
    tx.side_effects
        .pending_global(&frame.globals, name)
        .map(|v| v.ok_or_else(|| Exit::brk(format!("name '{name}' is not defined (NameError)"))))
}

/// `nonlocal x; x = value` where the cell exists outside the trace.
pub fn store_external_cell(
    tx: &mut Tracer<'_>,
    cell: &Rc<ExternalCell>,
    value: Value,
) -> TResult<()> {
    if cell.source.is_none() {
        return Err(Exit::brk(
            "assignment to a nonlocal variable whose cell the compiled code cannot reach",
        ));
    }
    tx.side_effects.store_cell(cell, value);
    Ok(())
}

/// `print(*args, sep=.., end=.., flush=..)`: recorded and replayed after the graph, for
/// tensors and constants; anything else breaks the graph.
pub fn print(tx: &mut Tracer<'_>, args: &[Value], kwargs: &[(String, Value)]) -> TResult<Value> {
    let py = tx.py;
    for a in args {
        if !matches!(a, Value::Tensor(_) | Value::Const(_)) {
            return Err(Exit::brk(format!(
                "print() of a '{}' (only tensors and constants are replayed)",
                a.type_name(py)
            )));
        }
    }
    for (k, v) in kwargs {
        if !matches!(k.as_str(), "sep" | "end" | "flush") || !matches!(v, Value::Const(_)) {
            return Err(Exit::brk(format!("print() with keyword argument '{k}'")));
        }
    }
    tx.side_effects.record_print(args.to_vec(), kwargs.to_vec());
    Ok(Value::none(py))
}

/// `del container[key]` on a list or dict value.
pub fn delete_subscr(tx: &mut Tracer<'_>, container: &Value, key: &Value) -> TResult<()> {
    let py = tx.py;
    if let Value::Object(o) = container {
        if crate::interp::ops::sub_dict_item_op(tx, o, "__delitem__", std::slice::from_ref(key))? {
            return Ok(());
        }
        // A `__delitem__` written in Python: traced.
        if o.kind == KIND_OBJECT && crate::interp::ops::python_slot(tx, o, "__delitem__") {
            crate::interp::calls::call_dunder(tx, container, "__delitem__", vec![key.clone()])?;
            return Ok(());
        }
    }
    match container {
        Value::List(l) => {
            let i: i64 = key
                .as_const(py)
                .filter(|c| c.get_type().name().map(|n| n == "int").unwrap_or(false))
                .and_then(|c| c.extract().ok())
                .ok_or_else(|| Exit::brk("del of a list item with a non-constant index"))?;
            let n = l.items.borrow().len() as i64;
            let j = if i < 0 { i + n } else { i };
            if j < 0 || j >= n {
                return Err(Exit::brk("list assignment index out of range (IndexError)"));
            }
            tx.list_mutating(l)?;
            l.items.borrow_mut().remove(j as usize);
            Ok(())
        }
        Value::Dict(d) => {
            let k = tx
                .as_python_constant(key)
                .ok_or_else(|| Exit::brk("del of a dict item with a non-constant key"))?;
            let pos = d
                .items
                .borrow()
                .iter()
                .position(|(kk, _)| crate::interp::dispatch::same_dict_key(kk.bind(py), &k));
            let Some(pos) = pos else {
                return Err(Exit::brk(format!("KeyError: {k}")));
            };
            tx.dict_mutating(d)?;
            d.items.borrow_mut().remove(pos);
            Ok(())
        }
        other => Err(Exit::brk(format!(
            "item deletion on a '{}'",
            other.type_name(py)
        ))),
    }
}

/// Attributes a function made in the trace can be given (CPython's writable function
/// attributes that ferrodyn rebuilds, and any name for the function's `__dict__`).
fn store_new_function_attr(
    tx: &mut Tracer<'_>,
    f: &Rc<crate::interp::value::FuncVal>,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    let Some(value) = value else {
        return Err(Exit::brk(format!(
            "deleting attribute '{name}' of a function"
        )));
    };
    let ok = match name {
        "__name__" | "__qualname__" => value
            .as_const(py)
            .is_some_and(|c| c.is_instance_of::<pyo3::types::PyString>()),
        "__module__" | "__doc__" | "__wrapped__" | "__annotations__" => true,
        _ => !(name.starts_with("__") && name.ends_with("__")),
    };
    if !ok {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a function made in the trace"
        )));
    }
    let mut attrs = f.attrs.borrow_mut();
    attrs.retain(|(k, _)| k != name);
    attrs.push((name.to_string(), value));
    Ok(())
}
