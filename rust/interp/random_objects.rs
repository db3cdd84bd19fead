//! `random.Random(seed)` made in the trace (checklist items 110–111). With a constant seed its
//! whole sequence is known while tracing: the trace makes the generator itself (a real
//! `random.Random`, listed in `Tracer::trace_randoms`), its methods run on it at trace time
//! with constant arguments, and their results are constants of the graph — the same on
//! every call, as eager's are. A generator that leaves the trace (returned, stored, alive
//! at a graph break) is rebuilt in its final state (`polyfills.random_with_state`), a new
//! object each call as eagerly. Without a seed (OS entropy), with a seed that is not a
//! constant, for subclasses, and for generators from the inputs: not modelled here.

use std::rc::Rc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::kinds::KIND_OBJECT;
use super::tracer::Tracer;
use super::value::{ObjVal, Value};

/// A method run on the generator at trace time (on constant arguments).
fn runs_at_trace_time(tx: &Tracer<'_>, name: &str) -> bool {
    tx.hooks
        .random_methods
        .bind(tx.py)
        .contains(name)
        .unwrap_or(false)
}

/// `random.Random` itself (not a subclass: its methods may be overridden).
pub fn is_random_class(tx: &Tracer<'_>, cls: &Bound<'_, PyAny>) -> bool {
    cls.is(tx.hooks.random_class.bind(tx.py))
}

/// `random.Random(seed)` with a constant seed: a generator of the trace.
pub fn construct(
    tx: &mut Tracer<'_>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let seed = match (args, kwargs) {
        ([v], []) => v,
        ([], [(k, v)]) if k == "x" => v,
        _ => {
            return Err(Exit::brk(
                "random.Random() without a seed (seeded from the operating system)",
            ))
        }
    };
    let seed = tx
        .as_python_constant(seed)
        .ok_or_else(|| Exit::brk("random.Random(seed) with a seed that is not a constant"))?;
    let gen = tx
        .hooks
        .random_class
        .bind(py)
        .call1((seed,))
        .map_err(|e| super::exceptions::from_real_error(tx, e, "random.Random"))?;
    tx.trace_randoms
        .insert(gen.as_ptr() as usize, gen.clone().unbind());
    Ok(Value::Object(Rc::new(ObjVal {
        obj: gen.unbind(),
        kind: KIND_OBJECT,
        source: None,
    })))
}

/// Whether `v` is a generator made in the trace.
pub fn is_trace_random(tx: &Tracer<'_>, v: &Value) -> bool {
    match v {
        Value::Object(o) if !tx.trace_randoms.is_empty() => {
            tx.trace_randoms.contains_key(&(o.obj.as_ptr() as usize))
        }
        _ => false,
    }
}

/// `gen.name`: one of its methods as a method value. None: not such a generator.
pub fn getattr(tx: &Tracer<'_>, v: &Value, name: &str) -> TResult<Option<Value>> {
    if !is_trace_random(tx, v) {
        return Ok(None);
    }
    if !runs_at_trace_time(tx, name) {
        return Err(Exit::brk(format!(
            "random.Random.{name} of a generator made in the compiled region"
        )));
    }
    Ok(Some(Value::BuiltinMethod(Rc::new((
        v.clone(),
        name.to_string(),
    )))))
}

/// `gen.name(*args)`: run now on the generator, the result a constant. None: not such a
/// generator.
pub fn call_method(
    tx: &mut Tracer<'_>,
    v: &Value,
    name: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let (true, Value::Object(o)) = (is_trace_random(tx, v), v) else {
        return Ok(None);
    };
    if !runs_at_trace_time(tx, name) {
        return Err(Exit::brk(format!(
            "random.Random.{name}() of a generator made in the compiled region"
        )));
    }
    let (t, kw) = super::calls::all_constants(tx, args, kwargs).ok_or_else(|| {
        Exit::brk(format!(
            "random.Random.{name}() with arguments that are not constants"
        ))
    })?;
    let r = o
        .obj
        .bind(tx.py)
        .getattr(name)
        .and_then(|m| m.call(t, Some(&kw)))
        .map_err(|e| super::exceptions::from_real_error(tx, e, "a random.Random method"))?;
    tx.realize(&r, None).map(Some)
}

/// How such a generator leaves the trace: a new one in its state at the end of the trace.
/// Only one place may receive it (two rebuilt objects would not be one, as eager's is).
pub fn template(tx: &mut Tracer<'_>, v: &Value) -> TResult<Option<(Py<PyAny>, Py<PyAny>)>> {
    let (true, Value::Object(o)) = (is_trace_random(tx, v), v) else {
        return Ok(None);
    };
    let py = tx.py;
    if !tx.randoms_rebuilt.insert(o.obj.as_ptr() as usize) {
        return Err(Exit::brk(
            "a random.Random made in the compiled region reaches more than one place outside it",
        ));
    }
    let state = o
        .obj
        .bind(py)
        .call_method0("getstate")
        .map_err(|e| tx.err(e))?;
    let make = py
        .import("ferrodyn.polyfills")
        .and_then(|m| m.getattr("random_with_state"))
        .map_err(|e| tx.err(e))?;
    Ok(Some((make.unbind(), state.unbind())))
}
