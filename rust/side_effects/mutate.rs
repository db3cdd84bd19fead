//! The interpreter's entry points into the store: attribute stores and deletes, global and
//! closure-cell writes, item deletes, `print`, and the reads that must see pending writes.
//! Whatever cannot be recorded faithfully is a graph break.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::store::ptr_of;
use crate::interp::exit::{Exit, TResult};
use crate::interp::frame::Frame;
use crate::interp::kinds::*;
use crate::interp::tracer::Tracer;
use crate::interp::value::{ExternalCell, ObjVal, Value};

/// `o.name` is missing (`read`: the object, for a read; None for a failed `del`). A plain
/// object's miss is CPython's observed AttributeError; anything else breaks the graph.
pub(crate) fn attribute_error(
    tx: &Tracer<'_>,
    o: &ObjVal,
    name: &str,
    read: Option<&Value>,
) -> Exit {
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
