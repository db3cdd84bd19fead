//! Calling an `nn.Module` inside a trace: `type(m).forward` (or an instance `forward`)
//! inlined, after guarding that the module has no hooks; with forward hooks or pre-hooks,
//! `nn.Module._call_impl` traced through `polyfills.module_call_with_hooks`. A module
//! constructed in the trace (`nn.Softmax(dim=-1)(x)`, an activation made per call) has its
//! attributes in the side-effect store: its hook dicts are read there.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::{ObjVal, Value};
use crate::guards::{DictKey, Guard, Source};
use crate::ImportCached;

/// Calling an nn.Module: guard that it has no hooks, then inline `type(m).forward`.
pub fn call_module(
    tx: &mut Tracer<'_>,
    whole: &Value,
    o: &ObjVal,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let obj = o.obj.bind(py);
    let Some(src) = &o.source else {
        return Err(Exit::brk(
            "calling an nn.Module created inside the compiled region",
        ));
    };
    let inst = Arc::new(Source::InstDict { base: src.clone() });
    let mut forward_hooks = false;
    for hooks in [
        "_backward_hooks",
        "_backward_pre_hooks",
        "_forward_hooks",
        "_forward_pre_hooks",
    ] {
        let d = obj.getattr(hooks).map_err(|e| tx.err(e))?;
        let n = d.len().unwrap_or(1);
        if n != 0 {
            if hooks.starts_with("_backward")
                || !d.is_exact_instance_of::<PyDict>() && !is_ordered_dict(&d)
            {
                return Err(Exit::brk(format!(
                    "calling a module that has {hooks} registered"
                )));
            }
            // Forward hooks: `_call_impl` traced through its polyfill, which reads the
            // hook dicts (guarded as it reads them).
            forward_hooks = true;
            continue;
        }
        let s = Arc::new(Source::DictItem {
            base: inst.clone(),
            key: DictKey::Str(hooks.into()),
        });
        tx.guard(&s, Guard::Len(0));
    }
    if forward_hooks {
        let global = py
            .import_cached("torch.nn.modules.module")
            .map_err(|e| tx.err(e))?;
        for name in ["_global_forward_hooks", "_global_forward_pre_hooks"] {
            if global.getattr(name).and_then(|d| d.len()).unwrap_or(1) != 0 {
                return Err(Exit::brk(format!(
                    "calling a module with forward hooks while {name} are registered"
                )));
            }
        }
        let pf = py
            .import_cached("ferrodyn.polyfills")
            .and_then(|m| m.getattr("module_call_with_hooks"))
            .map_err(|e| tx.err(e))?;
        let pf = tx.realize(&pf, None)?;
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(whole.clone());
        all.extend(args);
        return crate::interp::families::call(tx, &pf, all, kwargs);
    }
    // `m.forward = f` on the instance wins over the class's forward (`self.forward` in
    // `nn.Module.__call__`); its absence is guarded, since modules are matched by class.
    let own = obj
        .getattr("__dict__")
        .and_then(|d| d.get_item("forward").map(Some).or_else(|_| Ok(None)))
        .map_err(|e| tx.err(e))?;
    if let Some(f) = own {
        let fsrc = Arc::new(Source::DictItem {
            base: inst,
            key: DictKey::Str("forward".into()),
        });
        let f = tx.realize(&f, Some(fsrc))?;
        return crate::interp::families::call(tx, &f, args, kwargs);
    }
    tx.guard(&inst, Guard::NotInDict("forward".into()));
    let forward = obj.get_type().getattr("forward").map_err(|e| tx.err(e))?;
    let fsrc = Arc::new(Source::Attr {
        base: Arc::new(Source::TypeOf { base: src.clone() }),
        name: "forward".into(),
    });
    let f = tx.realize(&forward, Some(fsrc))?;
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(whole.clone());
    all.extend(args);
    crate::interp::families::call(tx, &f, all, kwargs)
}

/// Whether `o` is an nn.Module constructed in this trace (an empty shell whose `__init__`
/// was traced; see `call_new_module`).
pub fn is_new_module(tx: &Tracer<'_>, o: &ObjVal) -> TResult<bool> {
    Ok(o.source.is_none()
        && tx
            .side_effects
            .new_object(crate::side_effects::store::ptr_of(&o.obj))
            .is_some()
        && tx.classify(o.obj.bind(tx.py))? == super::kinds::KIND_NN_MODULE)
}

/// Calling an nn.Module constructed in this trace. Its hook dicts are those its traced
/// `__init__` stored (and anything the trace registered since): every one must be empty, as
/// must the global hooks; then `m.forward` (an instance `forward` first) is called.
pub fn call_new_module(
    tx: &mut Tracer<'_>,
    whole: &Value,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    for hooks in [
        "_backward_hooks",
        "_backward_pre_hooks",
        "_forward_hooks",
        "_forward_pre_hooks",
    ] {
        let d = crate::interp::families::getattr(tx, whole, hooks)?;
        if crate::interp::families::truthy(tx, &d)? {
            return Err(Exit::brk(format!(
                "calling a module created in the compiled region that has {hooks} registered"
            )));
        }
    }
    let global = py
        .import_cached("torch.nn.modules.module")
        .map_err(|e| tx.err(e))?;
    for name in [
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
    ] {
        if global.getattr(name).and_then(|d| d.len()).unwrap_or(1) != 0 {
            return Err(Exit::brk(format!(
                "calling a module created in the compiled region while {name} are registered"
            )));
        }
    }
    let forward = crate::interp::families::getattr(tx, whole, "forward")?;
    crate::interp::families::call(tx, &forward, args, kwargs)
}

fn is_ordered_dict(d: &Bound<'_, PyAny>) -> bool {
    d.get_type().name().is_ok_and(|n| n == "OrderedDict")
}
