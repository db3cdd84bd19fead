//! `inspect.signature(f)` of a plain Python function or bound method read from the frame
//! (transformers' `apply_chunking_to_forward` counts `len(inspect.signature(fn).parameters)`).
//!
//! The signature is computed at trace time from the function's code, defaults and
//! annotations — stdlib code that runs no user code when the function carries no
//! `__signature__` / `__wrapped__` — and guarded on those attributes. While tracing it is a
//! `StdVal::Signature`; `.parameters` is a `StdVal::SigParams` that is measured, iterated
//! and tested for names. Escaping the graph, each is `inspect.signature(f)` (`.parameters`)
//! evaluated again, a new object per call as in eager. Anything else breaks.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::stdlib::StdVal;
use super::tracer::Tracer;
use super::value::{FuncVal, Value};
use crate::guards::{Guard, Source};
use crate::ImportCached;

/// Attributes of a function that make `inspect.signature` consult anything but its code.
const CUSTOM: [&str; 5] = [
    "__signature__",
    "__wrapped__",
    "__text_signature__",
    "_partialmethod",
    "__partialmethod__",
];

/// `inspect.signature(args[0])`, or a break saying why not.
pub fn signature_call(
    tx: &mut Tracer<'_>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let ([target], true) = (args, kwargs.is_empty()) else {
        return Err(Exit::brk("inspect.signature() with options"));
    };
    let (func, bound) = match target {
        Value::Function(f) => (f.clone(), false),
        Value::BoundMethod(m) => match &m.1 {
            Value::Function(f) => (f.clone(), true),
            _ => return Err(Exit::brk("inspect.signature() of a method of a builtin")),
        },
        other => {
            return Err(Exit::brk(format!(
                "inspect.signature() of a '{}'",
                other.type_name(py)
            )))
        }
    };
    let obj = plain_function(tx, &func)?;
    guard_function(tx, &func, &obj)?;
    let inspect = super::stdlib::r(tx)?;
    let on = if bound {
        // The bound method's signature drops the first parameter; the receiver itself
        // plays no part, so any object stands in for it.
        py.import_cached("types")
            .and_then(|t| t.getattr("MethodType"))
            .and_then(|m| m.call1((&obj, pyo3::types::PyTuple::empty(py))))
            .map_err(|e| tx.err(e))?
    } else {
        obj.clone()
    };
    let sig = inspect
        .signature
        .bind(py)
        .call1((on,))
        .map_err(|e| Exit::brk(format!("inspect.signature() raised {}", e.value(py))))?;
    Ok(Value::Std(Rc::new(StdVal::Signature {
        target: target.clone(),
        sig: sig.unbind(),
    })))
}

/// The function object, if `inspect.signature` would read only its code and attributes:
/// a plain function, or a chain of plain functions linked by `__wrapped__`
/// (`functools.wraps` decorators), whose innermost one gives the signature.
fn plain_function<'py>(tx: &Tracer<'py>, f: &FuncVal) -> TResult<Bound<'py, PyAny>> {
    let py = tx.py;
    let obj = f
        .obj
        .as_ref()
        .ok_or_else(|| Exit::brk("inspect.signature() of a function made in the trace"))?
        .bind(py)
        .clone();
    wrapped_chain(tx, &obj)?;
    Ok(obj)
}

/// The functions `inspect.signature(obj)` reads, outermost first (more than one when
/// `__wrapped__` links them); a break when any of them would make it consult anything but
/// code, defaults and annotations.
fn wrapped_chain<'py>(
    tx: &Tracer<'py>,
    obj: &Bound<'py, PyAny>,
) -> TResult<Vec<Bound<'py, PyAny>>> {
    let mut chain = Vec::new();
    let mut cur = obj.clone();
    loop {
        if !cur.is_exact_instance_of::<pyo3::types::PyFunction>() {
            return Err(Exit::brk(if chain.is_empty() {
                "inspect.signature() of a function subclass".to_string()
            } else {
                "inspect.signature() of a function wrapping something that is not a function"
                    .to_string()
            }));
        }
        let d = cur.getattr("__dict__").map_err(|e| tx.err(e))?;
        for name in CUSTOM {
            if name != "__wrapped__" && d.contains(name).unwrap_or(true) {
                return Err(Exit::brk(format!(
                    "inspect.signature() of a function with {name}"
                )));
            }
        }
        let next = d.get_item("__wrapped__").ok();
        chain.push(cur);
        match next {
            Some(n) if chain.len() < 16 => cur = n,
            Some(_) => return Err(Exit::brk("inspect.signature() of a long __wrapped__ chain")),
            None => return Ok(chain),
        }
    }
}

/// The signature changes with the function's code, defaults and annotations: guard them,
/// and each `__wrapped__` link with the function it leads to (a function without a source
/// cannot be guarded: break).
fn guard_function(tx: &mut Tracer<'_>, f: &FuncVal, obj: &Bound<'_, PyAny>) -> TResult<()> {
    let mut src = f
        .source
        .clone()
        .ok_or_else(|| Exit::brk("inspect.signature() of a function with no source"))?;
    let chain = wrapped_chain(tx, obj)?;
    for (i, func) in chain.iter().enumerate() {
        if i > 0 {
            src = Arc::new(Source::Attr {
                base: src,
                name: "__wrapped__".into(),
            });
            tx.guard(&src, Guard::IdMatch(func.clone().unbind()));
        }
        let last = i + 1 == chain.len();
        for name in [
            "__code__",
            "__defaults__",
            "__kwdefaults__",
            "__annotations__",
        ] {
            if !last && name != "__code__" {
                continue;
            }
            let v = func.getattr(name).map_err(|e| tx.err(e))?;
            let s = Arc::new(Source::Attr {
                base: src.clone(),
                name: name.into(),
            });
            tx.guard(&s, Guard::IdMatch(v.unbind()));
        }
    }
    Ok(())
}

/// `sig.name` on a traced signature.
pub fn load_attr(s: &Rc<StdVal>, name: &str) -> TResult<Value> {
    match (&**s, name) {
        (StdVal::Signature { .. }, "parameters") => {
            Ok(Value::Std(Rc::new(StdVal::SigParams { sig: s.clone() })))
        }
        (StdVal::SigParams { .. }, "keys") => Ok(Value::BuiltinMethod(Rc::new((
            Value::Std(s.clone()),
            name.to_string(),
        )))),
        _ => Err(Exit::brk(format!(
            "attribute '{name}' of a {}",
            s.type_name()
        ))),
    }
}

/// The parameter names of a traced `sig.parameters`, in order.
pub fn param_names(tx: &Tracer<'_>, sig: &StdVal) -> TResult<Vec<Value>> {
    let py = tx.py;
    let StdVal::Signature { sig, .. } = sig else {
        return Err(Exit::brk("parameters of something that is not a signature"));
    };
    let params = sig.bind(py).getattr("parameters").map_err(|e| tx.err(e))?;
    params
        .try_iter()
        .map_err(|e| tx.err(e))?
        .map(|k| k.map(|k| Value::Const(k.unbind())).map_err(|e| tx.err(e)))
        .collect()
}
