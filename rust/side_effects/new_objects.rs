//! Creating user objects in the trace: `C(*args)` for a class whose instances are plain
//! dict-backed objects allocated by `object.__new__` (see `variables/mutation.py`). The
//! object is an empty shell instance while tracing; `__init__` is inlined and its stores
//! go to the store. It is rebuilt after the graph only if it escapes (table.rs).

use std::rc::Rc;

use pyo3::prelude::*;

use super::store::{ptr_of, NewObject};
use crate::guards::Source;
use crate::interp::exit::TResult;
use crate::interp::kinds::*;
use crate::interp::tracer::Tracer;
use crate::interp::value::{ObjVal, SourceRef, Value};

/// A new, empty user object of the plain class `cls` (no `__init__` runs), which lives in the
/// side-effect store until it escapes; `by_new`: for a traced `object.__new__(cls)` call.
pub fn allocate(tx: &mut Tracer<'_>, cls: &ObjVal, by_new: bool) -> TResult<Value> {
    let py = tx.py;
    let c = cls.obj.bind(py).clone();
    let shell = tx
        .hooks
        .new_object_shell
        .bind(py)
        .call1((&c, by_new))
        .map_err(|e| tx.err(e))?;
    let v = Value::Object(Rc::new(ObjVal {
        obj: shell.clone().unbind(),
        kind: KIND_OBJECT,
        source: None,
    }));
    // A list or dict subclass: its contents live in a mirror (containers.rs), empty now.
    let key = shell.as_ptr() as usize;
    if shell.is_instance_of::<pyo3::types::PyList>() {
        if let Value::List(l) = Value::new_list(Vec::new()) {
            tx.seq_shadows.insert(key, l);
        }
    } else if shell.is_instance_of::<pyo3::types::PyDict>() {
        tx.dict_shadows.insert(key, Value::new_dict_val());
    }
    tx.side_effects.track_new_object(NewObject {
        shell: shell.unbind(),
        cls: c.unbind(),
        cls_source: cls.source.clone(),
        attrs: Vec::new(),
    });
    Ok(v)
}

/// For a class attribute of an object created in the trace: a source through the class
/// it was created from (so the method's code is guarded like for pre-existing objects).
pub fn class_attr_source(tx: &Tracer<'_>, o: &ObjVal, name: &str) -> SourceRef {
    let n = tx.side_effects.new_object(ptr_of(&o.obj))?;
    let base = n.cls_source.as_ref()?;
    Some(std::sync::Arc::new(Source::Attr {
        base: base.clone(),
        name: name.to_string(),
    }))
}
