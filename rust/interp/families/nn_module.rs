//! `torch.nn.Module` instances: parameters, buffers and submodules read with guards,
//! `forward` inlined (with hooks) when the module is called.

use std::sync::Arc;

use pyo3::prelude::*;

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::guards::{Guard, Source};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;
use crate::ImportCached;

pub struct NnModule;

impl Family for NnModule {
    fn name(&self) -> &'static str {
        "nn.Module"
    }

    python_object_verbs!(
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        reconstruct
    );

    /// A hook dict read while a hook registered in the trace is pending ends the trace.
    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        if name.contains("hooks") {
            let ptr = obj(v)?.obj.as_ptr() as usize;
            crate::interp::hook_handles::check_module(tx, ptr, "its hooks read")?;
        }
        python_object::getattr(tx, v, name)
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let ptr = obj(v)?.obj.as_ptr() as usize;
        crate::interp::hook_handles::check_module(tx, ptr, "the module called")?;
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        crate::interp::module_call::call_module(tx, v, obj(v)?, args, kwargs)
    }

    /// A module's `__iter__` (ModuleList, Sequential, ...) is traced.
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        python_object::iter_by_dunder(tx, v)
    }
}

/// `module.name = value`: supported only when it changes nothing, i.e. storing back the
/// tensor already there (`self.buf += 1` is an in-place op on the buffer, recorded in the
/// graph; eager's setattr then stores the same tensor object). The fake tensor an op
/// returns is its input's exactly when the real op returns its input.
pub(super) fn store_module_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    if let Some(Value::Tensor(new)) = &value {
        if let Ok(Value::Tensor(cur)) = crate::interp::families::getattr(tx, obj, name) {
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
            tx.side_effects.store_existing_attr(
                obj,
                crate::side_effects::store::ptr_of(&o.obj),
                name,
                value,
            );
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
    if tx
        .side_effects
        .is_new(crate::side_effects::store::ptr_of(&o.obj))
    {
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
