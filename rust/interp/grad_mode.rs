//! Grad mode in the trace: `torch.no_grad()`, `torch.enable_grad()` and
//! `torch.set_grad_enabled(b)` as context managers (`Value::GradMode`), each switch recorded
//! in the graph.

use pyo3::prelude::*;

use super::calls::graph_call;
use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;

/// `torch.no_grad()`, `torch.enable_grad()`, `torch.set_grad_enabled(b)` as context managers.
pub fn grad_mode_ctor(
    tx: &mut Tracer<'_>,
    obj: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let g = &tx.hooks.grad_ctx;
    if obj.is(g.no_grad.bind(py)) && args.is_empty() && kwargs.is_empty() {
        return Ok(Some(Value::GradMode(false)));
    }
    if obj.is(g.enable_grad.bind(py)) && args.is_empty() && kwargs.is_empty() {
        return Ok(Some(Value::GradMode(true)));
    }
    if obj.is(g.set_grad_enabled.bind(py)) {
        let mode = match (args, kwargs) {
            ([v], []) => v.clone(),
            ([], [(k, v)]) if k == "mode" => v.clone(),
            _ => return Err(Exit::brk("torch.set_grad_enabled arguments")),
        };
        let mode = mode
            .as_const(py)
            .and_then(|c| c.extract::<bool>().ok())
            .ok_or_else(|| Exit::brk("torch.set_grad_enabled with a non-constant mode"))?;
        // Used as a plain call it switches the mode immediately; as a context manager the
        // switch happens at __enter__. We only support the context-manager form.
        return Ok(Some(Value::GradMode(mode)));
    }
    Ok(None)
}

/// Record a grad-mode switch in the graph (and apply it to the tracer's fake execution).
pub fn set_grad_mode(tx: &mut Tracer<'_>, mode: bool) -> TResult<()> {
    let f = tx.hooks.grad_ctx.set_fn.bind(tx.py).clone();
    graph_call(tx, &f, &[Value::constant(tx.py, mode)], &[])?;
    Ok(())
}

pub fn grad_enabled(tx: &Tracer<'_>) -> TResult<bool> {
    tx.hooks
        .grad_ctx
        .is_enabled
        .bind(tx.py)
        .call0()
        .and_then(|b| b.extract())
        .map_err(|e| tx.err(e))
}
