//! `Fn.apply(*args)` of a user `torch.autograd.Function` when an input needs a gradient
//! (checklist 102–103). `polyfills.autograd_function_apply` decides: with no gradient
//! needed it traces `forward` in place; otherwise it reaches the marker
//! `polyfills.apply_in_graph`, carried out here:
//!
//! 1. `forward` is traced speculatively (`polyfills.autograd_function_forward`, with a
//!    stand-in ctx), which proves it traceable (a break or an error in it is this call's
//!    break) and shows what it touches: a mutation of any object from outside the call, a
//!    print, or an output that is not a tensor or a tuple of tensors and constants breaks
//!    the graph, since the real `forward` will run again in the graph node;
//! 2. the speculation's graph nodes are rolled back, and the graph gets one node calling
//!    `cls.apply` (`polyfills.autograd_apply_target(cls)`): eager autograd (or the
//!    backend's, which traces `forward` and `backward` through it) builds the backward.
//!
//! torch.compile records the same computation as its `autograd_function_apply` higher-order
//! op; the node here is what a backend sees instead.

use pyo3::prelude::*;

use super::calls::graph_call;
use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;
use crate::ImportCached;

/// `apply_in_graph(cls, needs_input_grad, *args, **kwargs)`.
pub fn apply_in_graph(
    tx: &mut Tracer<'_>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let (cls, rest) = match args.as_slice() {
        [Value::Object(c), _needs, rest @ ..] => (c.obj.clone_ref(py), rest.to_vec()),
        _ => return Err(Exit::internal("apply_in_graph without a class")),
    };
    let name = cls
        .bind(py)
        .getattr("__qualname__")
        .and_then(|n| n.extract::<String>())
        .unwrap_or_else(|_| "autograd.Function".into());
    let polyfills = py
        .import_cached("ferrodyn.polyfills")
        .map_err(|e| tx.err(e))?;
    let forward = polyfills
        .getattr("autograd_function_forward")
        .map_err(|e| tx.err(e))?;
    let forward = tx.realize(&forward, None)?;

    // 1. Speculate.
    let graph_mark = tx.gb.call_method0("mark").map_err(|e| tx.err(e))?;
    let store_mark = tx.side_effects.mark();
    let out = crate::interp::families::call(tx, &forward, args, kwargs.clone())?;
    if tx.side_effects.logged_since(&store_mark) {
        return Err(Exit::brk(format!(
            "{name}.forward changes objects from outside the call or prints (it would \
             run again in the graph)"
        )));
    }
    if !is_tensor_output(&out) {
        return Err(Exit::brk(format!(
            "{name}.forward returns something other than tensors and constants"
        )));
    }

    // 2. One node calling `cls.apply`.
    tx.gb
        .call_method1("rollback", (graph_mark,))
        .map_err(|e| tx.err(e))?;
    let target = polyfills
        .getattr("autograd_apply_target")
        .and_then(|f| f.call1((cls.bind(py),)))
        .map_err(|e| tx.err(e))?;
    graph_call(tx, &target, &rest, &kwargs)
}

fn is_tensor_output(v: &Value) -> bool {
    match v {
        Value::Tensor(_) => true,
        Value::Tuple(items) => items
            .iter()
            .all(|i| matches!(i, Value::Tensor(_) | Value::Const(_))),
        _ => false,
    }
}
