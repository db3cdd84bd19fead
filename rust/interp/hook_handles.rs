//! Forward hooks registered on a module inside the compiled region (checklist item 51).
//!
//! `m.register_forward_hook(h)` / `m.register_forward_pre_hook(h)` on a module from the
//! inputs gives a handle value; the hook is not installed while tracing. A handle
//! `.remove()`d in the same trace leaves the module untouched (the hook never existed), and
//! if it escapes it is rebuilt as an inert `RemovableHandle`. A hook that would stay
//! installed, or that the trace would see (calling the module, reading its hook dicts),
//! ends the trace: it is traced again up to the root-frame step that registered it, which
//! then runs natively (a graph break there).

use std::cell::Cell;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::exit::{Exit, TResult};
use super::kinds::KIND_NN_MODULE;
use super::stdlib::StdVal;
use super::tracer::Tracer;
use super::value::Value;
use crate::ImportCached;

pub struct Refs {
    pub register_forward_hook: Py<PyAny>,
    pub register_forward_pre_hook: Py<PyAny>,
    pub handle_type: Py<PyAny>,
    /// `ferrodyn.polyfills.inert_hook_handle()`: a handle whose removal does nothing.
    pub inert_handle: Py<PyAny>,
}

static REFS: PyOnceLock<Refs> = PyOnceLock::new();

pub fn refs(py: Python<'_>) -> PyResult<&'static Refs> {
    REFS.get_or_try_init(py, || {
        let module = py.import_cached("torch.nn")?.getattr("Module")?;
        Ok(Refs {
            register_forward_hook: module.getattr("register_forward_hook")?.unbind(),
            register_forward_pre_hook: module.getattr("register_forward_pre_hook")?.unbind(),
            handle_type: py
                .import_cached("torch.utils.hooks")?
                .getattr("RemovableHandle")?
                .unbind(),
            inert_handle: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("inert_hook_handle")?
                .unbind(),
        })
    })
}

/// A registration made in the trace: the module it is on, and whether it was removed.
pub struct Registration {
    pub module: usize,
    pub removed: Cell<bool>,
    /// The root-frame split point whose step made it (`Snapshot::ordinal`).
    pub ordinal: u64,
}

/// `f(module, hook, ...)` when `f` is `nn.Module.register_forward_hook` or
/// `register_forward_pre_hook` and `module` a module from the program. None otherwise.
pub fn register(
    tx: &mut Tracer<'_>,
    f: &Bound<'_, PyAny>,
    args: &[Value],
) -> TResult<Option<Value>> {
    let rf = refs(tx.py).map_err(|e| tx.err(e))?;
    if !f.is(&rf.register_forward_hook) && !f.is(&rf.register_forward_pre_hook) {
        return Ok(None);
    }
    let Some(Value::Object(m)) = args.first() else {
        return Ok(None);
    };
    if m.kind != KIND_NN_MODULE {
        return Ok(None);
    }
    let reg = Rc::new(Registration {
        module: m.obj.as_ptr() as usize,
        removed: Cell::new(false),
        ordinal: tx.root_split_points,
    });
    tx.hook_registrations.push(reg.clone());
    Ok(Some(Value::Std(Rc::new(StdVal::HookHandle(reg)))))
}

/// A live registration on the module at `module` (None: on any module).
fn live(tx: &Tracer<'_>, module: Option<usize>) -> Option<Rc<Registration>> {
    tx.hook_registrations
        .iter()
        .find(|r| !r.removed.get() && module.is_none_or(|m| m == r.module))
        .cloned()
}

/// The trace must not see the module at `module` without its pending hook (called, or its
/// hook dicts read): trace again, breaking where the hook was registered.
pub fn check_module(tx: &mut Tracer<'_>, module: usize, what: &str) -> TResult<()> {
    match live(tx, Some(module)) {
        Some(r) => Err(retrace(tx, &r, what)),
        None => Ok(()),
    }
}

/// At the end of the trace: a hook that stays installed is registered natively instead.
pub fn check_end(tx: &mut Tracer<'_>) -> TResult<()> {
    match live(tx, None) {
        Some(r) => Err(retrace(
            tx,
            &r,
            "the hook stays registered after the region",
        )),
        None => Ok(()),
    }
}

fn retrace(tx: &mut Tracer<'_>, r: &Registration, what: &str) -> Exit {
    let reason = format!("a forward hook registered in the compiled region ({what})");
    let at = super::exit::Location::default();
    tx.retrace = Some((r.ordinal, reason.clone(), at.clone()));
    Exit::Break { reason, at }
}
