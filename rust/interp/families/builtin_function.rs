//! Pure builtins and `operator` functions: folded on constants (errors are the
//! program's), computed on symbolic sizes, put in the graph on tensors where the op has a
//! tensor meaning (`abs`, `pow`, `round`, `operator.add`, ...).

use pyo3::prelude::*;

use crate::ImportCached;

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::calls::graph_call;
use crate::interp::exit::{Exit, TResult};
use crate::interp::kinds::*;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct BuiltinFunction;

impl Family for BuiltinFunction {
    fn name(&self) -> &'static str {
        "builtin function"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        reconstruct
    );

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let f = obj(v)?.obj.bind(tx.py).clone();
        if let Some(r) = crate::interp::calls::symbolic_call(tx, &f, &args, &kwargs)? {
            return Ok(r);
        }
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        let o = obj(v)?;
        if o.kind == KIND_OPERATOR && tx.as_python_constant_all(&args).is_none() {
            if let Some(r) = crate::interp::ops::operator_on_values(tx, &f, &args)? {
                return Ok(r);
            }
            if args.iter().any(|a| a.is_tensor()) {
                return graph_call(tx, &f, &args, &kwargs);
            }
            return Err(non_constant(tx, &f));
        }
        if let Some(r) = python_object::fold_call(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        if o.kind == KIND_PURE && args.iter().any(|a| a.is_tensor()) {
            // e.g. abs(tensor), min on tensors: the graph can compute these.
            if let Ok(name) = f.getattr("__name__").and_then(|n| n.extract::<String>()) {
                if matches!(name.as_str(), "abs" | "pow" | "round") {
                    return graph_call(tx, &f, &args, &kwargs);
                }
            }
        }
        Err(non_constant(tx, &f))
    }
}

fn non_constant(tx: &Tracer<'_>, f: &Bound<'_, PyAny>) -> Exit {
    Exit::brk(format!(
        "call to {} with non-constant arguments",
        tx.describe(f)
    ))
}

/// `_thread.get_ident()` (`threading.get_ident`): the tracing thread's id, guarded, so a call
/// from another thread re-traces (reprlib's and dataclasses' recursion guards key on it).
pub(crate) fn thread_ident(tx: &mut Tracer<'_>, f: &Bound<'_, PyAny>) -> TResult<Option<Value>> {
    let py = tx.py;
    let Ok(get_ident) = py
        .import_cached("_thread")
        .and_then(|m| m.getattr("get_ident"))
    else {
        return Ok(None);
    };
    if !f.is(&get_ident) {
        return Ok(None);
    }
    let ident = get_ident.call0().map_err(|e| tx.err(e))?;
    let src = std::sync::Arc::new(crate::guards::Source::ThreadIdent);
    tx.guard(&src, crate::guards::Guard::Equals(ident.clone().unbind()));
    Ok(Some(Value::Const(ident.unbind())))
}
