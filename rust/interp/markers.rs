//! torch's compiler markers, honoured as torch.compile honours them. Which objects are
//! markers, and what each does, is answered by `pysrc/ferrodyn/variables/markers.py`
//! (KIND_MARKER objects); here the answer is carried out:
//!
//! * a graph break (`torch._dynamo.graph_break()`, `torch.compiler.disable`d functions,
//!   `disallow_in_graph`, torch._dynamo's own functions): at a call in the root frame the
//!   trace splits and the call runs natively, as is;
//! * `torch._dynamo.step_unsupported()`: a break after which the rest of the frame runs
//!   eagerly (the graph so far is compiled; no resume function is traced);
//! * a constant (`torch.compiler.is_compiling()` is True while tracing);
//! * an `assume_constant_result` function: called once, at trace time, on constant
//!   arguments; its result is a constant of the graph;
//! * `torch._dynamo.error_on_graph_break(flag)`: a `with` block (or a decorated function,
//!   which torch implements as a `with` block) sets `Tracer::error_on_break` for its
//!   region; a break while it is on raises `exc.Unsupported` like fullgraph=True.

use std::rc::Rc;

use pyo3::prelude::*;

use super::exit::{Exit, Location, TResult};
use super::hooks::Hooks;
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{ObjVal, Value};

fn action_of<'py>(tx: &Tracer<'py>, obj: &Bound<'py, PyAny>) -> TResult<(i64, Bound<'py, PyAny>)> {
    tx.hooks
        .marker_action
        .bind(tx.py)
        .call1((obj,))
        .and_then(|r| r.extract::<(i64, Bound<'py, PyAny>)>())
        .map_err(|e| tx.err(e))
}

fn marker_value(obj: Bound<'_, PyAny>) -> Value {
    Value::Object(Rc::new(ObjVal {
        obj: obj.unbind(),
        kind: KIND_MARKER,
        source: None,
    }))
}

/// The action of a marker object (None if it is not one any more).
pub fn action(tx: &Tracer<'_>, obj: &Bound<'_, PyAny>) -> Option<i64> {
    action_of(tx, obj).ok().map(|(a, _)| a)
}

/// Calling a marker.
pub fn call_marker(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let obj = o.obj.bind(py).clone();
    let (action, payload) = action_of(tx, &obj)?;
    match action {
        MARKER_BREAK | MARKER_SKIP | MARKER_STEP_UNSUPPORTED => {
            // (reason, takes a message): graph_break("why") adds the user's message.
            let (mut reason, takes_msg): (String, bool) =
                payload.extract().map_err(|e| tx.err(e))?;
            let msg = args
                .first()
                .or_else(|| kwargs.iter().find(|(k, _)| k == "msg").map(|(_, v)| v))
                .and_then(|v| v.as_const(py))
                .and_then(|c| c.extract::<String>().ok());
            if let Some(m) = msg.filter(|m| takes_msg && !m.is_empty()) {
                reason = format!("{reason}: {m}");
            }
            if action == MARKER_SKIP {
                return Err(Exit::Skip { reason });
            }
            // Compile the graph so far; the rest of the frame runs eagerly (as torch does).
            tx.step_unsupported = action == MARKER_STEP_UNSUPPORTED;
            Err(Exit::brk(reason))
        }
        MARKER_CONST => Ok(Value::Const(payload.unbind())),
        MARKER_EOGB_CTOR => {
            let flag = match (args.as_slice(), kwargs.as_slice()) {
                ([v], []) => v,
                ([], [(k, v)]) if k == "error_on_graph_break" => v,
                _ => {
                    return Err(Exit::brk(
                        "torch._dynamo.error_on_graph_break called with unexpected arguments",
                    ))
                }
            };
            let flag = flag
                .as_const(py)
                .and_then(|c| c.extract::<bool>().ok())
                .ok_or_else(|| {
                    Exit::brk("torch._dynamo.error_on_graph_break with a non-constant setting")
                })?;
            // The real context-manager object: its constructor only stores the flag.
            let cm = obj.call1((flag,)).map_err(|e| tx.err(e))?;
            Ok(marker_value(cm))
        }
        MARKER_EOGB_CTX => Err(Exit::brk(
            "applying a torch._dynamo.error_on_graph_break object as a decorator inside the \
             compiled region",
        )),
        MARKER_EOGB_EXIT => {
            tx.error_on_break = payload.extract().map_err(|e| tx.err(e))?;
            Ok(Value::none(py))
        }
        MARKER_INLINE => {
            let own = obj
                .getattr("_torchdynamo_inline")
                .is_ok_and(|i| i.is(&payload));
            if own {
                // A torch.compile wrapper: what it wraps, read through the wrapper.
                super::calls::call_wrapped(tx, o, &payload, "_torchdynamo_inline", args, kwargs)
            } else {
                // A torch._dynamo decorator's ferrodyn polyfill (nonstrict_trace, ...).
                let f = tx.realize(&payload, None)?;
                crate::interp::families::call(tx, &f, args, kwargs)
            }
        }
        MARKER_ASSUME_CONSTANT => assumed_constant(tx, &obj, &args, &kwargs),
        MARKER_AUTOGRAD_APPLY => super::autograd_function::apply_in_graph(tx, args, kwargs),
        MARKER_VMAP => super::vmap::vmap_in_graph(tx, args, kwargs),
        MARKER_NAMEDTUPLE => namedtuple_factory(tx, &obj, &args, &kwargs),
        MARKER_TF_DISABLE => super::tensor_subclass::disable(tx, &args),
        MARKER_RANDOM => {
            // Constant arguments; the graph builder draws the trace's value and makes it an
            // input drawn again on every call.
            // (a list of constants counts as its items: `choice` reads only `len` and `[i]`)
            let args: Vec<Value> = args
                .iter()
                .map(|a| match a {
                    Value::List(l) => Value::new_tuple(l.items.borrow().clone()),
                    other => other.clone(),
                })
                .collect();
            let (t, kw) = constant_args(tx, &args, &kwargs, "a random module function")?;
            let r = tx.record("random_value", (&obj, t, kw))?;
            tx.from_graph_result(&r)
        }
        // Called other than by CALL (which runs it: comptime.rs), e.g. through `*args`.
        MARKER_COMPTIME => Err(Exit::brk(
            "torch._dynamo.comptime called indirectly (ferrodyn runs it at a plain call)",
        )),
        _ => Err(Exit::internal(format!("unknown marker action {action}"))),
    }
}

/// `with marker:` (BEFORE_WITH): the bound `__exit__` and `__enter__`'s result. Only
/// `torch._dynamo.error_on_graph_break(flag)` objects are context managers.
pub fn enter_marker(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<(Value, Value)> {
    let py = tx.py;
    let obj = o.obj.bind(py).clone();
    let (action, payload) = action_of(tx, &obj)?;
    if action != MARKER_EOGB_CTX {
        return Err(Exit::brk(format!(
            "a `with` block over {}",
            tx.describe(&obj)
        )));
    }
    let flag: bool = payload.extract().map_err(|e| tx.err(e))?;
    let prev = tx.error_on_break;
    tx.error_on_break = flag;
    let exit = tx
        .hooks
        .error_on_break_exit
        .bind(py)
        .call1((prev, flag))
        .map_err(|e| tx.err(e))?;
    Ok((marker_value(exit), Value::none(py)))
}

/// The error_on_graph_break setting a trace starts with: a resume function that starts
/// inside `with error_on_graph_break(...)` blocks gets their `__exit__` objects among its
/// arguments (locals, then the stack: the innermost block last); otherwise torch's
/// current setting (an eagerly entered block around the call).
pub fn initial_error_on_break(py: Python<'_>, hooks: &Hooks, args: &[Option<Py<PyAny>>]) -> bool {
    let exit_cls = hooks.error_on_break_exit.bind(py);
    let innermost = args
        .iter()
        .flatten()
        .rev()
        .find(|a| a.bind(py).get_type().is(exit_cls));
    match innermost {
        Some(a) => a
            .bind(py)
            .getattr("current")
            .and_then(|c| c.extract())
            .unwrap_or(false),
        None => hooks
            .initial_error_on_break
            .bind(py)
            .call0()
            .and_then(|r| r.extract())
            .unwrap_or(false),
    }
}

/// A graph break inside an error_on_graph_break(True) region: raised to the user as
/// `exc.Unsupported`, with the reason and where it happened.
pub fn strict_break(tx: &Tracer<'_>, reason: &str, at: &Location) -> Exit {
    let msg = format!(
        "ferrodyn (torch._dynamo.error_on_graph_break(True)): graph break: {reason} at {at}"
    );
    match tx.hooks.unsupported.bind(tx.py).call1((msg,)) {
        Ok(e) => Exit::Hard(PyErr::from_value(e)),
        Err(e) => Exit::Hard(e),
    }
}

/// Constant positional and keyword arguments as Python objects (`what` names the callee
/// in the break when one is not a constant).
fn constant_args<'py>(
    tx: &Tracer<'py>,
    args: &[Value],
    kwargs: &[(String, Value)],
    what: &str,
) -> TResult<(
    Bound<'py, pyo3::types::PyTuple>,
    Bound<'py, pyo3::types::PyDict>,
)> {
    let py = tx.py;
    let non_constant = || Exit::brk(format!("{what} called with a non-constant argument"));
    let a: Vec<_> = args
        .iter()
        .map(|v| tx.as_python_constant(v).ok_or_else(non_constant))
        .collect::<TResult<_>>()?;
    let kw = pyo3::types::PyDict::new(py);
    for (k, v) in kwargs {
        let c = tx.as_python_constant(v).ok_or_else(non_constant)?;
        kw.set_item(k, c).map_err(|e| tx.err(e))?;
    }
    Ok((pyo3::types::PyTuple::new(py, a).map_err(|e| tx.err(e))?, kw))
}

/// `collections.namedtuple(typename, fields, ...)` on constants: the class, made now (a
/// new class per call eagerly; one per trace here). Its `__module__` is the compiled
/// frame's module unless `module=` is given (namedtuple would read ferrodyn's frame).
fn namedtuple_factory<'py>(
    tx: &mut Tracer<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let (t, kw) = constant_args(tx, args, kwargs, "collections.namedtuple()")?;
    if !kwargs.iter().any(|(k, _)| k == "module") {
        let module = tx
            .root_globals
            .bind(py)
            .get_item("__name__")
            .unwrap_or_else(|_| pyo3::types::PyString::new(py, "__main__").into_any());
        kw.set_item("module", module).map_err(|e| tx.err(e))?;
    }
    let cls = f
        .call(t, Some(&kw))
        .map_err(|e| super::exceptions::from_real_error(tx, e, "collections.namedtuple"))?;
    tx.realize(&cls, None)
}

/// A call of an `assume_constant_result` function: run once, now, on constant arguments;
/// its result is a constant of the graph (as torch.compile does: no guard on what it read).
fn assumed_constant<'py>(
    tx: &mut Tracer<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let (t, kw) = constant_args(tx, args, kwargs, "assume_constant_result function")?;
    let r = f.call(t, Some(&kw)).map_err(|e| {
        super::exceptions::from_real_error(tx, e, "an assume_constant_result function")
    })?;
    let v = tx.realize(&r, None)?;
    if tx.as_python_constant(&v).is_none() {
        return Err(Exit::brk(
            "assume_constant_result function returned a value that is not a constant",
        ));
    }
    Ok(v)
}
