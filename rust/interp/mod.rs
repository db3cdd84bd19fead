//! The symbolic interpreter: values, frames, and the instruction dispatch loop.
//!
//! `trace_function` interprets one call of a Python function symbolically: it returns the
//! FX graph builder (with tensor ops recorded), the guards that make the result valid, the
//! sources of the graph's inputs, and a template to rebuild the return value from the
//! graph's outputs.

pub mod attrs;
pub mod autograd_function;
pub mod breaks;
pub mod builtins;
pub mod calls;
pub mod comptime;
pub mod container_objects;
pub mod containers;
pub mod dict_views;
pub mod dispatch;
mod dispatch_312;
mod dispatch_313;
mod dispatch_calls;
pub mod dunder_ops;
pub mod environ;
pub mod exceptions;
pub mod exit;
pub mod families;
pub mod frame;
pub mod grad_mode;
pub mod graph_io;
pub mod hook_handles;
pub mod hooks;
pub mod identity;
pub mod imports;
pub mod inst_dict;
pub mod iter;
pub mod kinds;
pub mod markers;
pub mod model_output;
pub mod module_call;
pub mod numpy_arrays;
pub mod ops;
pub mod output;
pub mod random_objects;
pub mod realize;
pub mod set_objects;
pub mod signature;
pub mod slots;
pub mod stdlib;
pub mod stdlib_dict;
pub mod stdlib_out;
pub mod stdlib_set;
pub mod symbolic;
pub mod tensor_subclass;
pub mod tracer;
pub mod value;
pub mod vmap;

use crate::ImportCached;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::guards::{Guard, Source};
use crate::spec_cache::CodeSpec;
use exit::{Exit, TResult};
use frame::Frame;
use output::{template_for, OutTemplate};
use tracer::Tracer;
use value::GlobalsAccess;

/// What a trace's GraphBuilder needs for dynamic shapes: the code object's dynamic state
/// (sizes seen by earlier traces, a dict) and the backend (which carries `dynamic=`).
pub struct DynamicShapes {
    pub state: Py<PyAny>,
    pub compiler: Py<PyAny>,
}

pub struct TraceOutput {
    /// The Python GraphBuilder holding the recorded graph.
    pub graph_builder: Py<PyAny>,
    /// TensorVars the graph returns, in order.
    pub graph_outputs: Vec<Py<PyAny>>,
    /// How to rebuild the Python return value.
    pub template: OutTemplate,
    pub guards: Vec<(Arc<Source>, Guard)>,
    /// Sources fetched on each call: first the graph inputs, then pre-existing objects
    /// that the return value refers to.
    pub fetch: Vec<Arc<Source>>,
    pub n_graph_inputs: usize,
    /// Set when the trace stopped at a graph break in the root frame: the graph covers
    /// everything before it and the glue continues from there.
    pub split: Option<breaks::SplitPoint>,
    /// Identity constraints between fetched sources (same object or not).
    pub identity: Vec<(Arc<Source>, Arc<Source>, bool)>,
    /// Side effects to apply after the graph runs (before building the return value).
    pub replay: crate::side_effects::ReplayPlan,
}

/// The guards installed before a trace stopped early (so the eager fallback is cached
/// only for inputs that would stop it the same way).
pub struct TraceFailure {
    pub exit: Exit,
    pub guards: Vec<(Arc<Source>, Guard)>,
}

#[allow(clippy::result_large_err)] // built once per trace, not on a hot path
pub fn trace_function(
    py: Python<'_>,
    spec: Arc<CodeSpec>,
    args: Vec<Option<Py<PyAny>>>,
    globals: Py<PyAny>,
    closure: Vec<Py<PyAny>>,
    max_depth: usize,
    dynamic: &DynamicShapes,
) -> Result<TraceOutput, TraceFailure> {
    let mut forced = None;
    let (mut tx, r) = loop {
        let mut tx = match Tracer::new(py, globals.clone_ref(py), max_depth, dynamic) {
            Ok(t) => t,
            Err(e) => {
                return Err(TraceFailure {
                    exit: Exit::internal(format!("cannot start a trace: {e}")),
                    guards: Vec::new(),
                })
            }
        };
        let retrying = forced.is_some();
        tx.forced_break = forced.take();
        // Tracing runs fake ops for real, and grad-mode context managers switch the global
        // mode while tracing: put it back however the trace ends.
        let grad_before = calls::grad_enabled(&tx).ok();
        let r = run_root(
            &mut tx,
            spec.clone(),
            args.iter()
                .map(|a| a.as_ref().map(|o| o.clone_ref(py)))
                .collect(),
            globals.clone_ref(py),
            closure.iter().map(|c| c.clone_ref(py)).collect(),
        );
        if let Some(mode) = grad_before {
            let _ = tx.hooks.grad_ctx.set_fn.bind(py).call1((mode,));
        }
        // Values drawn from `random` while tracing only gave hints: eager draws them. A
        // traced `torch.autocast` block switched autocast for real: put it back too.
        let _ = tx.gb.call_method0("restore_trace_state");
        // A break inside a callee that left side effects which cannot be rolled back: trace
        // again, stopping before the root frame's call (Dynamo restarts the same way), so
        // the callee runs natively from the glue.
        match (r.is_err(), tx.retrace.take()) {
            (true, Some(at)) if !retrying => forced = Some(at),
            _ => break (tx, r),
        }
    };
    match r {
        Ok((template, graph_outputs, extra, split, replay)) => {
            let mut fetch = tx.inputs.clone();
            let n_graph_inputs = fetch.len();
            fetch.extend(extra);
            Ok(TraceOutput {
                graph_builder: tx.gb.clone().unbind(),
                graph_outputs,
                template,
                guards: std::mem::take(&mut tx.guards),
                fetch,
                n_graph_inputs,
                split,
                replay,
                identity: std::mem::take(&mut tx.identity),
            })
        }
        Err(exit) => Err(TraceFailure {
            exit,
            guards: std::mem::take(&mut tx.guards),
        }),
    }
}

type RootResult = (
    OutTemplate,
    Vec<Py<PyAny>>,
    Vec<Arc<Source>>,
    Option<breaks::SplitPoint>,
    crate::side_effects::ReplayPlan,
);

fn run_root(
    tx: &mut Tracer<'_>,
    spec: Arc<CodeSpec>,
    args: Vec<Option<Py<PyAny>>>,
    globals: Py<PyAny>,
    closure: Vec<Py<PyAny>>,
) -> TResult<RootResult> {
    let py = tx.py;
    if spec.is_generator_like() {
        return Err(Exit::Skip {
            reason: format!("{} is a generator or coroutine function", spec.qualname),
        });
    }
    tx.error_on_break = markers::initial_error_on_break(py, tx.hooks, &args);
    let n = spec.localsplus.len();
    let mut pending = args;
    pending.resize_with(n, || None);
    // Free variables of the compiled function itself: read through its closure cells. The
    // runtime passes the function object as the frame slot just past the fast locals.
    let fn_slot = Arc::new(Source::Local {
        index: n as u32,
        name: spec.name.clone(),
    });
    let mut cells = Vec::new();
    for (i, cell) in closure.into_iter().enumerate() {
        let src = Arc::new(Source::Attr {
            base: Arc::new(Source::Index {
                base: Arc::new(Source::Attr {
                    base: fn_slot.clone(),
                    name: "__closure__".into(),
                }),
                index: i as isize,
            }),
            name: "cell_contents".into(),
        });
        cells.push(tracer::external_cell(cell, Some(src)));
    }
    let mut frame = Frame {
        spec: spec.clone(),
        locals: vec![None; n],
        pending,
        pending_sources: Default::default(),
        stack: Vec::with_capacity(16),
        ip: 0,
        kw_names: None,
        globals,
        globals_source: GlobalsAccess::Root,
        closure: cells,
        current: 0,
        is_root: true,
        gen_exc: None,
    };
    let mut outputs = Vec::new();
    let mut extra = Vec::new();
    let ret = match dispatch::run_frame(tx, &mut frame) {
        Ok(v) => {
            iter::drain_returned(tx, &v).map_err(|e| e.located(&frame.location()))?;
            hook_handles::check_end(tx)?;
            if let Some(name) = tx.generator_left_in_cleanup() {
                // Eager runs its `finally`/`__exit__` when it is dropped, somewhere in this
                // frame: that moment is not modelled.
                return Err(Exit::Skip {
                    reason: format!(
                        "generator {name} made here is left suspended inside try/with; \
                         eager runs its cleanup when it is dropped"
                    ),
                });
            }
            v
        }
        // A re-trace already asked for (a hook registered in the trace): no split here.
        Err(Exit::Break { reason, at }) if tx.retrace.is_some() => Err(Exit::Break { reason, at })?,
        Err(Exit::Break { reason, at }) => {
            let Some(snap) = tx.break_snapshot.take() else {
                return Err(Exit::Break { reason, at });
            };
            // The break happened inside a callee when its location is another function.
            let inlined = at.function != spec.qualname || at.file != spec.filename;
            if breaks::skips_frame(&spec.decoded, snap.index, &reason) {
                if let Some(ordinal) = breaks::comprehension_around(tx, &spec.decoded, snap.index) {
                    log_no_split(
                        py,
                        "a data-dependent break inside an inlined comprehension: tracing again \
                         up to the comprehension, which then runs natively",
                    );
                    tx.retrace = Some((ordinal, reason.clone(), at.clone()));
                    return Err(Exit::Break { reason, at });
                }
                log_no_split(
                    py,
                    "a data-dependent break inside a loop: the frame runs eagerly (calls in \
                     it are compiled), as torch.compile does",
                );
                return Err(Exit::Break { reason, at });
            }
            // Mutations recorded by the breaking instruction itself (partly inlined before
            // it broke) must not be replayed: it re-runs natively. Attribute/global/cell
            // stores and prints are undone (the re-run makes them again); anything else
            // runs the frame eagerly.
            if tx.side_effects.generation() != snap.side_effects_generation
                && !tx.side_effects.rollback_to(snap.side_effects_mark)
            {
                log_no_split(
                    py,
                    "the breaking step recorded side effects before it broke; tracing again \
                     up to it",
                );
                tx.retrace = Some((snap.ordinal, reason.clone(), at.clone()));
                return Err(Exit::Break { reason, at });
            }
            if inlined && tx.guards.len() > snap.guards_len {
                // The callee's partial trace guarded what it read (a module's int attribute,
                // say), although the callee runs natively from the glue: those guards would
                // recompile this frame for nothing. Trace again, stopping before the call,
                // as Dynamo restarts its analysis at a break in an inlined call.
                log_no_split(
                    py,
                    "a break inside a callee that guarded what it read; tracing again up to \
                     the call",
                );
                tx.retrace = Some((snap.ordinal, reason.clone(), at.clone()));
                return Err(Exit::Break { reason, at });
            }
            let split = breaks::split_point(
                tx,
                snap,
                &spec,
                breaks::BreakCause {
                    reason: reason.clone(),
                    at: at.clone(),
                    inlined,
                    eager_rest: tx.step_unsupported && !inlined,
                },
                &mut outputs,
                &mut extra,
            );
            return match split {
                Ok(sp) => {
                    // Mutations recorded before the break are applied before the glue runs.
                    let replay = crate::side_effects::replay::plan(tx, &mut outputs, &mut extra)
                        .map_err(|e| e.located(&frame.location()))?;
                    Ok((
                        OutTemplate::Const(py.None()),
                        outputs,
                        extra,
                        Some(sp),
                        replay,
                    ))
                }
                // The state cannot be rebuilt: report the original break.
                Err(why) => {
                    log_no_split(py, &why.describe(py));
                    Err(Exit::Break { reason, at })
                }
            };
        }
        Err(e) => return Err(e),
    };
    output::note_shared_tuples(tx, &[&ret]);
    let template = template_for(tx, &ret, &mut outputs, &mut extra)
        .map_err(|e| e.located(&frame.location()))?;
    let replay = crate::side_effects::replay::plan(tx, &mut outputs, &mut extra)
        .map_err(|e| e.located(&frame.location()))?;
    Ok((template, outputs, extra, None, replay))
}

/// Says (in the `graph_breaks` log) why a break could not split the frame, which then runs
/// eagerly.
fn log_no_split(py: Python<'_>, why: &str) {
    if let Ok(m) = py.import_cached("ferrodyn.logs") {
        let _ = m.call_method1(
            "log",
            (
                "graph_breaks",
                "%s",
                format!("cannot split the frame here: {why}"),
            ),
        );
    }
}
