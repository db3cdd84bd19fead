//! Tensors in the graph (`TensorVar` handles: an FX node and its fake tensor). Attribute
//! reads and method calls become graph nodes or fold to constants; branching on a
//! tensor's data breaks.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tensor_subclass as subclass;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Tensor;

fn var(v: &Value) -> TResult<&Py<PyAny>> {
    match v {
        Value::Tensor(var) => Ok(var),
        _ => Err(Exit::internal("tensor family on another value")),
    }
}

impl Family for Tensor {
    fn name(&self) -> &'static str {
        "tensor"
    }

    /// A graph value leaves as a graph output; an input (or a NumPy view of one) is
    /// fetched; a computed tensor-subclass instance or ndarray is converted back.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let py = tx.py;
        let var = var(v)?;
        match crate::interp::numpy_arrays::leaves(tx, v)? {
            Some(crate::interp::numpy_arrays::Leaves::Input(src)) => return Ok(out.fetch(&src)),
            Some(crate::interp::numpy_arrays::Leaves::Computed(to_numpy)) => {
                let g = out.graph_output(py, var);
                return Ok(OutTemplate::Call(to_numpy, vec![g]));
            }
            None => {}
        }
        let leaving = subclass::leaves(tx, v);
        if let Some(subclass::Leaves::Input(src)) = &leaving {
            return Ok(out.fetch(src));
        }
        let g = out.graph_output(py, var);
        Ok(match leaving {
            // A tensor-subclass instance computed in the graph.
            Some(subclass::Leaves::Computed(cls)) => OutTemplate::Call(
                crate::interp::output::py_attr(tx, "torch._C", "TensorBase")?
                    .bind(py)
                    .getattr("as_subclass")
                    .map_err(|e| tx.err(e))?
                    .unbind(),
                vec![g, OutTemplate::Const(cls)],
            ),
            _ => g,
        })
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let py = tx.py;
        let var = var(v)?;
        if let Some(r) = crate::interp::numpy_arrays::getattr(tx, v, name)? {
            return Ok(r);
        }
        if let Some(r) = subclass::getattr(tx, v, name)? {
            return Ok(r);
        }
        tx.graph_calls += 1; // (tx.record, but the error is looked at first)
        let r = match tx.gb.call_method1("tensor_attr", (var.bind(py), name)) {
            Ok(r) => r,
            // No such attribute on a tensor the graph computed: eager's AttributeError,
            // catchable (hasattr).
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
                return Err(crate::interp::exceptions::attribute_error(
                    py,
                    Some(v),
                    "Tensor",
                    name,
                ));
            }
            Err(e) => {
                if let Some(exit) =
                    crate::interp::attrs::missing_input_tensor_attr(tx, v, var, name)
                {
                    return Err(exit);
                }
                return Err(tx.err(e));
            }
        };
        if r.is(py.NotImplemented()) {
            return Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))));
        }
        tx.from_graph_result(&r)
    }

    fn call_method(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        args: Args,
        kwargs: Kwargs,
    ) -> TResult<Value> {
        let py = tx.py;
        if let Some(r) = crate::interp::numpy_arrays::call_method(tx, v, name, &args, &kwargs)? {
            return Ok(r);
        }
        if name == "numpy" {
            if let Some(r) = crate::interp::numpy_arrays::tensor_numpy(tx, v, &kwargs)? {
                return Ok(r);
            }
        }
        if let Some(r) = subclass::call_method(tx, v, name, &args, &kwargs)? {
            return Ok(r);
        }
        if name == "as_subclass" && kwargs.is_empty() {
            if let Some(r) = subclass::as_subclass(tx, v, &args)? {
                return Ok(r);
            }
        }
        subclass::check_plain(tx, v)?;
        let mut conv = vec![var(v)?.bind(py).clone()];
        for a in &args {
            conv.push(tx.to_graph_arg(a)?);
        }
        let kw = crate::interp::calls::kwargs_dict(tx, &kwargs)?;
        let t = PyTuple::new(py, conv).map_err(|e| tx.err(e))?;
        let r = tx.record("call_method", (name, t, kw))?;
        tx.from_graph_result(&r)
    }

    /// Iterating a tensor walks its first dimension (static under static shapes).
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let py = tx.py;
        if subclass::info(tx, v).is_some() {
            return Err(Exit::brk("iterating a tensor subclass instance"));
        }
        if crate::interp::numpy_arrays::is_ndarray(tx, v) {
            return Err(Exit::brk("iterating a NumPy array"));
        }
        let f = tx.hooks.b.len.bind(py).clone();
        let n = crate::interp::calls::graph_call(tx, &f, std::slice::from_ref(v), &[])?;
        let n: i64 = tx
            .as_python_constant(&n)
            .and_then(|c| c.extract().ok())
            .ok_or_else(|| Exit::brk("iterating a tensor of unknown length"))?;
        let mut items = Vec::new();
        for i in 0..n {
            items.push(crate::interp::ops::subscr(tx, v, &Value::constant(py, i))?);
        }
        Ok(crate::interp::iter::items_iter(items))
    }

    /// A symbolic size or a comparison of sizes branches on its value in this trace (the
    /// shape guard keeps it); a tensor's truth value depends on its data.
    fn truthy(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        subclass::check_plain(tx, v)?;
        crate::interp::numpy_arrays::check_plain(tx, v)?;
        match tx.specialize_symbolic(var(v)?.bind(tx.py)) {
            Some(c) => c.is_truthy().map_err(|e| tx.err(e)),
            None => Err(Exit::brk(
                "data-dependent branch: the truth value of a tensor (`if tensor:` or a tensor comparison) depends on its data",
            )),
        }
    }

    /// TensorVar records the eager Python type of the tensor it stands for.
    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        var(v)?
            .bind(tx.py)
            .call_method0("python_type")
            .map_err(|e| tx.err(e))
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        tx.specialize_symbolic(var(v).ok()?.bind(tx.py))
    }
}
