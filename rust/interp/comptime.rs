//! `torch._dynamo.comptime(fn)` (checklist 101): `fn` runs once, while tracing, at the
//! point of the call, with a compile-time view of the trace (`ferrodyn.comptime`'s
//! `ComptimeContext`: the graph so far, the calling frame's locals, the guards); it records
//! no graph op. `ctx.graph_break()` breaks the graph there. As in torch.compile, `fn` must
//! be a function without closure cells (it cannot see the trace's values otherwise).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::kinds::KIND_MARKER;
use super::tracer::Tracer;
use super::value::Value;
use crate::ImportCached;

/// Whether `callee` is `torch._dynamo.comptime.comptime` (a marker object).
pub fn is_comptime(tx: &Tracer<'_>, callee: &Value) -> bool {
    match callee {
        Value::Object(o) if o.kind == KIND_MARKER => {
            super::markers::action(tx, o.obj.bind(tx.py)) == Some(super::kinds::MARKER_COMPTIME)
        }
        _ => false,
    }
}

/// `comptime(fn, fallback_fn=...)` called in `frame`.
pub fn call(
    tx: &mut Tracer<'_>,
    frame: &mut Frame,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let fn_v = args
        .first()
        .or_else(|| kwargs.iter().find(|(k, _)| k == "fn").map(|(_, v)| v))
        .ok_or_else(|| Exit::brk("torch._dynamo.comptime() without a function"))?;
    let real = real_function(tx, fn_v)?;
    let locals = PyDict::new(py);
    if let Value::Dict(d) = super::slots::frame_locals(tx, frame)? {
        for (k, v) in d.snapshot(py) {
            let v = match &v {
                Value::Tensor(var) => var.clone_ref(py),
                v => match tx.as_python_constant(v) {
                    Some(c) => c.unbind(),
                    None => pyo3::types::PyString::new(py, &format!("<{}>", v.type_name(py)))
                        .into_any()
                        .unbind(),
                },
            };
            locals.set_item(k, v).map_err(|e| tx.err(e))?;
        }
    }
    let guards = PyList::empty(py);
    for (src, g) in &tx.guards {
        let text = format!("{}: {}", src.render(), guard_kind(g));
        guards.append(text).map_err(|e| tx.err(e))?;
    }
    let graph = tx.gb.getattr("graph").map_err(|e| tx.err(e))?;
    let ctx = py
        .import_cached("ferrodyn.comptime")
        .and_then(|m| m.getattr("ComptimeContext"))
        .and_then(|c| c.call1((graph, locals, frame.spec.code.bind(py), guards)))
        .map_err(|e| tx.err(e))?;
    if let Err(e) = real.call1((&ctx,)) {
        return Err(Exit::brk(format!(
            "the torch._dynamo.comptime function raised {}",
            e.value(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| "an exception".into())
        )));
    }
    let reason = ctx.getattr("break_reason").map_err(|e| tx.err(e))?;
    if !reason.is_none() {
        return Err(Exit::brk(format!("comptime graph_break(): {reason}")));
    }
    Ok(Value::none(py))
}

/// The Python function to call: an existing one, or one made in the trace without cells.
fn real_function<'py>(tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
    let py = tx.py;
    let Value::Function(f) = v else {
        return Err(Exit::brk(
            "torch._dynamo.comptime() of something other than a function",
        ));
    };
    if let Some(o) = &f.obj {
        return Ok(o.bind(py).clone());
    }
    if !f.closure.is_empty() {
        return Err(Exit::brk(
            "torch._dynamo.comptime() of a function with closure cells",
        ));
    }
    let defaults = match &f.defaults {
        Some(d) if !d.is_empty() => {
            let c: Option<Vec<_>> = d.iter().map(|v| tx.as_python_constant(v)).collect();
            let c = c.ok_or_else(|| Exit::brk("torch._dynamo.comptime() function defaults"))?;
            pyo3::types::PyTuple::new(py, c)
                .map_err(|e| tx.err(e))?
                .into_any()
        }
        _ => py.None().into_bound(py),
    };
    py.import_cached("types")
        .and_then(|t| t.getattr("FunctionType"))
        .and_then(|ft| {
            ft.call1((
                f.spec.code.bind(py),
                f.globals.bind(py),
                f.spec.name.as_str(),
                defaults,
            ))
        })
        .map_err(|e| tx.err(e))
}

fn guard_kind(g: &crate::guards::Guard) -> &'static str {
    use crate::guards::Guard;
    match g {
        Guard::TypeMatch(_) => "TYPE_MATCH",
        Guard::IdMatch(_) => "ID_MATCH",
        Guard::Equals(_) => "EQUALS_MATCH",
        Guard::Len(_) => "LENGTH_CHECK",
        Guard::DictKeys(_) | Guard::SubDictKeys(_) => "DICT_KEYS_MATCH",
        Guard::HasAttr(..) => "HASATTR",
        Guard::NotInDict(_) => "DICT_CONTAINS",
        Guard::Tensor(_) => "TENSOR_MATCH",
    }
}
