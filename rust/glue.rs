//! Graph-break glue: from a split point, build the functions that continue the frame.
//!
//! * The glue function starts at the breaking instruction with the rebuilt stack and
//!   locals, runs that instruction natively (inside CPython, with the original exception
//!   table and line numbers), and then calls the resume function for the successor it
//!   took. Inside a `try`/`with` region this stays correct: the breaking instruction keeps
//!   its handler in the glue, and the resume function keeps the region's handlers for the
//!   rest of the body, while the postlude that calls it is covered by no handler.
//! * A resume function starts right after the instruction; it is wrapped in its own
//!   `CompiledCode`, so it is traced and cached like any compiled function.
//!
//! Glue is cached per compiled function (so `reset()` and a fresh `compile`/`explain` start
//! clean) and within it per (code object, instruction, stack layout, bound locals).

use crate::ImportCached;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::bytecode::resume::{
    build_continuation, Continuation, ContinuationSpec, Exit as Successor, Redirect, Slot,
};
use crate::caches::Caches;
use crate::interp::breaks::SplitPoint;
use crate::runtime::{CompiledCode, Origin};
use crate::spec_cache::{CodeSpec, CO_VARARGS, CO_VARKEYWORDS};

type GlueKey = (usize, usize, Vec<bool>, Vec<usize>, bool);

/// Glue functions of one compiled function.
pub type GlueCache = Mutex<HashMap<GlueKey, Py<PyAny>>>;

pub struct GlueContext<'a, 'py> {
    pub spec: &'a Arc<CodeSpec>,
    pub func: &'a Bound<'py, PyAny>,
    pub compiler: &'a Bound<'py, PyAny>,
    pub recompile_limit: usize,
    /// The caches of the function being split (its glue cache holds this split's glue).
    pub caches: &'a Arc<Caches>,
}

/// The glue function for this split point (built once per layout).
pub fn glue_for(ctx: &GlueContext<'_, '_>, sp: &SplitPoint) -> PyResult<Py<PyAny>> {
    let py = ctx.func.py();
    let layout: Vec<Slot> = sp
        .stack
        .iter()
        .map(|s| if s.is_some() { Slot::Value } else { Slot::Null })
        .collect();
    let bound: Vec<usize> = sp.locals.iter().map(|(i, _)| *i).collect();
    let key = (
        ctx.spec.code.as_ptr() as usize,
        sp.index,
        layout.iter().map(|s| *s == Slot::Value).collect::<Vec<_>>(),
        bound.clone(),
        sp.eager_rest,
    );
    if let Some(g) = ctx
        .caches
        .glue
        .lock()
        .ok()
        .and_then(|c| c.get(&key).map(|g| g.clone_ref(py)))
    {
        return Ok(g);
    }
    let decoded = &ctx.spec.decoded;
    let offset = decoded.instructions[sp.index].offset;
    // Inside a `try`/`with` region the resume function keeps the region's handler entries,
    // so it catches its own exceptions; the glue's postlude has no handler.
    let n_consts = ctx.spec.consts.len() as u32;
    let mut extra_consts: Vec<Py<PyAny>> = Vec::new();
    let redirect = {
        let fall = resume_function(
            ctx,
            sp.fall_at + 1,
            &sp.after_fall,
            &sp.fall_bound,
            sp.eager_rest,
        )?;
        extra_consts.push(fall);
        let jump = match (sp.jump_target, &sp.after_jump) {
            (Some(t), Some(layout)) => {
                let r = resume_function(ctx, t, layout, &sp.jump_bound, sp.eager_rest)?;
                extra_consts.push(r);
                Some(Successor {
                    stack: layout.clone(),
                    callee_const: n_consts + 1,
                    bound: sp.jump_bound.clone(),
                })
            }
            _ => None,
        };
        Some(Redirect {
            at: sp.index,
            method_as_attr: {
                let i = &decoded.instructions[sp.index];
                crate::bytecode::resume::is_method_load(decoded.version, i.op, i.arg)
            },
            jump,
            fall_at: sp.fall_at,
            fall: Successor {
                stack: sp.after_fall.clone(),
                callee_const: n_consts,
                bound: sp.fall_bound.clone(),
            },
        })
    };
    let cont = build_continuation(
        &ContinuationSpec {
            decoded,
            start: sp.start,
            stack: layout,
            bound_locals: bound,
            n_varnames: ctx.spec.passed_slots(),
            n_free: ctx.spec.localsplus.len() - ctx.spec.passed_slots(),
            redirect,
        },
        &ctx.spec.localsplus[..ctx.spec.passed_slots()],
    )
    .map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("ferrodyn: cannot assemble glue: {e}"))
    })?;
    let name = format!("__glue_{}_at_{}", ctx.spec.name, offset);
    let glue = make_function(ctx, &cont, &name, &extra_consts)?;
    log_bytecode(py, &name, &glue);
    if let Ok(mut c) = ctx.caches.glue.lock() {
        c.insert(key, glue.clone_ref(py));
    }
    Ok(glue)
}

/// A compiled resume function starting at original instruction `start` (`eager`: the
/// plain function, which runs the rest of the frame eagerly).
fn resume_function(
    ctx: &GlueContext<'_, '_>,
    start: usize,
    layout: &[Slot],
    bound: &[usize],
    eager: bool,
) -> PyResult<Py<PyAny>> {
    let py = ctx.func.py();
    let cont = build_continuation(
        &ContinuationSpec {
            decoded: &ctx.spec.decoded,
            start,
            stack: layout.to_vec(),
            bound_locals: bound.to_vec(),
            n_varnames: ctx.spec.passed_slots(),
            n_free: ctx.spec.localsplus.len() - ctx.spec.passed_slots(),
            redirect: None,
        },
        &ctx.spec.localsplus[..ctx.spec.passed_slots()],
    )
    .map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!(
            "ferrodyn: cannot assemble resume function: {e}"
        ))
    })?;
    let offset = ctx
        .spec
        .decoded
        .instructions
        .get(start)
        .map(|i| i.offset)
        .unwrap_or(0);
    let name = format!("__resume_{}_at_{}", ctx.spec.name, offset);
    let f = make_function(ctx, &cont, &name, &[])?;
    log_bytecode(py, &name, &f);
    if eager {
        // The rest of the frame runs natively: never offer it to the tracer itself.
        if let Ok(code) = f.bind(py).getattr("__code__") {
            crate::frame_hook::mark_skip(&code);
        }
        return Ok(f);
    }
    let cc = CompiledCode::create(
        py,
        f.bind(py).clone(),
        ctx.compiler.clone(),
        false,
        ctx.recompile_limit,
    )?
    .with_origin(Origin {
        spec: ctx.spec.clone(),
        func: ctx.func.clone().unbind(),
        caches: ctx.caches.clone(),
        body_start: cont.body_start,
        slot_origin: cont.slot_origin.clone(),
    });
    Ok(Py::new(py, cc)?.into_any())
}

fn make_function(
    ctx: &GlueContext<'_, '_>,
    cont: &Continuation,
    name: &str,
    extra_consts: &[Py<PyAny>],
) -> PyResult<Py<PyAny>> {
    let py = ctx.func.py();
    let code = ctx.spec.code.bind(py);
    let kw = PyDict::new(py);
    kw.set_item("co_code", pyo3::types::PyBytes::new(py, &cont.code.co_code))?;
    kw.set_item(
        "co_exceptiontable",
        pyo3::types::PyBytes::new(py, &cont.code.exception_table),
    )?;
    kw.set_item(
        "co_linetable",
        pyo3::types::PyBytes::new(py, &cont.code.line_table),
    )?;
    kw.set_item("co_stacksize", cont.code.stack_size)?;
    kw.set_item("co_varnames", PyTuple::new(py, &cont.varnames)?)?;
    kw.set_item("co_nlocals", cont.varnames.len())?;
    kw.set_item("co_argcount", cont.argcount)?;
    kw.set_item("co_posonlyargcount", 0)?;
    kw.set_item("co_kwonlyargcount", 0)?;
    // The original cells arrive as arguments holding the cell objects: listed as cellvars
    // they stay cells (LOAD_DEREF, locals()), and the copies of MAKE_CELL are jumped over.
    let cellvars: Vec<&String> = ctx
        .spec
        .passed_cells()
        .iter()
        .map(|&s| &ctx.spec.localsplus[s])
        .collect();
    if let Some(c) = cellvars
        .iter()
        .find(|c| !cont.varnames[..cont.argcount].contains(*c))
    {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
            "ferrodyn: cell variable '{c}' is not passed to the continuation"
        )));
    }
    kw.set_item("co_cellvars", PyTuple::new(py, cellvars)?)?;
    kw.set_item("co_flags", ctx.spec.flags & !(CO_VARARGS | CO_VARKEYWORDS))?;
    // Tracebacks show co_name: keep the user's function name there; the qualname says
    // which continuation this is (for logs and explain).
    kw.set_item("co_name", &ctx.spec.name)?;
    kw.set_item("co_qualname", name)?;
    if !extra_consts.is_empty() {
        let mut consts: Vec<Py<PyAny>> = ctx.spec.consts.iter().map(|c| c.clone_ref(py)).collect();
        consts.extend(extra_consts.iter().map(|c| c.clone_ref(py)));
        kw.set_item("co_consts", PyTuple::new(py, consts)?)?;
    }
    // Free variables passed as arguments: no closure, so the continuation serves every
    // function object of this code.
    if ctx.spec.frees_as_args() {
        kw.set_item("co_freevars", PyTuple::empty(py))?;
    }
    let new_code = code.call_method("replace", (), Some(&kw))?;
    let types = py.import_cached("types")?;
    let globals = ctx.func.getattr("__globals__")?;
    let closure = if ctx.spec.frees_as_args() {
        py.None().into_bound(py)
    } else {
        ctx.func.getattr("__closure__")?
    };
    let f = types
        .getattr("FunctionType")?
        .call1((new_code, globals, name, py.None(), closure))?;
    Ok(f.unbind())
}

fn log_bytecode(py: Python<'_>, name: &str, f: &Py<PyAny>) {
    let Ok(logs) = py.import_cached("ferrodyn.logs") else {
        return;
    };
    if !logs
        .call_method1("enabled", ("bytecode",))
        .and_then(|b| b.extract::<bool>())
        .unwrap_or(false)
    {
        return;
    }
    let text = py
        .import_cached("dis")
        .and_then(|d| {
            d.getattr("Bytecode")?
                .call1((f.bind(py),))?
                .call_method0("dis")
        })
        .and_then(|t| t.extract::<String>())
        .unwrap_or_default();
    let _ = logs.call_method1(
        "log",
        ("bytecode", "%s", format!("generated {name}:\n{text}")),
    );
}
