//! NumPy arrays in the trace (checklist items 114-118), as torch.compile traces them while
//! `trace_numpy` is on. An ndarray is a `Value::Tensor` listed in `Tracer::ndarray_vars`: a
//! graph input `torch.as_tensor(array)` (`Source::NumpyTensor`), or the result of a NumPy
//! operation. NumPy functions (`KIND_NUMPY_FN`), ndarray methods and attributes, and
//! operators on ndarrays become graph nodes whose targets call `torch._numpy`'s twins on
//! tensors (`variables/numpy_arrays.py` makes the targets). An ndarray reaching any other
//! graph operation is a graph break; one leaving the graph is an ndarray again.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;
use crate::guards::{Guard, Source};

/// An ndarray in the trace. Holds its `TensorVar` so the address stays its own; `input`:
/// the argument it was read from (what leaves the graph for it).
pub struct NdarrayVar {
    pub input: Option<Arc<Source>>,
    _var: Py<PyAny>,
}

fn helper<'py>(tx: &Tracer<'py>, name: &str) -> TResult<Bound<'py, PyAny>> {
    tx.hooks
        .numpy_arrays
        .bind(tx.py)
        .getattr(name)
        .map_err(|e| tx.err(e))
}

/// Whether `v` stands for an ndarray.
pub fn is_ndarray(tx: &Tracer<'_>, v: &Value) -> bool {
    match v {
        Value::Tensor(var) if !tx.ndarray_vars.is_empty() => {
            tx.ndarray_vars.contains_key(&(var.as_ptr() as usize))
        }
        _ => false,
    }
}

fn register(tx: &mut Tracer<'_>, var: &Bound<'_, PyAny>, input: Option<Arc<Source>>) {
    tx.ndarray_vars.insert(
        var.as_ptr() as usize,
        NdarrayVar {
            input,
            _var: var.clone().unbind(),
        },
    );
}

/// Every tensor in an operation's result is an ndarray (NumPy operations give ndarrays).
fn mark_results(tx: &mut Tracer<'_>, v: &Value) {
    match v {
        Value::Tensor(var) if !tx.is_symbolic(v) => {
            let var = var.clone_ref(tx.py);
            register(tx, var.bind(tx.py), None)
        }
        Value::Tuple(items) => items.iter().for_each(|i| mark_results(tx, i)),
        Value::List(l) => {
            let items = l.items.borrow().clone();
            items.iter().for_each(|i| mark_results(tx, i))
        }
        _ => {}
    }
}

/// An `np.ndarray` argument read from `s`: guarded on its type, then a graph tensor input
/// `torch.as_tensor(array)` guarded like any tensor. None: NumPy tracing is off, or the
/// array cannot be a tensor (object dtype, ...): the caller treats it as an opaque object.
pub fn input<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    s: &Arc<Source>,
) -> TResult<Option<Value>> {
    let on = helper(tx, "trace_numpy")?
        .call0()
        .and_then(|b| b.is_truthy())
        .map_err(|e| tx.err(e))?;
    if !on {
        return Ok(None);
    }
    let Ok(tensor) = helper(tx, "as_tensor")?.call1((obj,)) else {
        return Ok(None);
    };
    tx.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
    let ts = Arc::new(Source::NumpyTensor { base: s.clone() });
    let meta = crate::guards::TensorMeta::read(&tensor).map_err(|e| tx.err(e))?;
    let var = tx.graph_input(&tensor, &ts, meta)?;
    register(tx, &var, Some(s.clone()));
    Ok(Some(Value::Tensor(var.unbind())))
}

/// A graph node calling `target` (a node target made by `numpy_arrays.py`); its tensors are
/// ndarrays.
fn node<'py>(
    tx: &mut Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    tx.ndarray_ok = true;
    let conv = args
        .iter()
        .map(|a| tx.to_graph_arg(a))
        .collect::<TResult<Vec<_>>>();
    let kw = super::calls::kwargs_dict(tx, kwargs);
    tx.ndarray_ok = false;
    let t = PyTuple::new(py, conv?).map_err(|e| tx.err(e))?;
    let (t, kw): (Bound<'py, PyTuple>, Bound<'py, pyo3::types::PyDict>) = helper(tx, "node_args")?
        .call1((t, kw?))
        .and_then(|r| r.extract())
        .map_err(|e| tx.err(e))?;
    let r = tx.record("call_function", (target, t, kw))?;
    let v = tx.from_graph_result(&r)?;
    mark_results(tx, &v);
    Ok(v)
}

/// Calling a NumPy function (`KIND_NUMPY_FN`): a node calling its `torch._numpy` twin.
pub fn call_function<'py>(
    tx: &mut Tracer<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    // On constants: run it now unless it makes an array (`np.sqrt(64)`, `np.float32(2)`
    // are NumPy scalars, constants of the graph, as eager has them).
    if let Some((t, kw)) = super::calls::all_constants(tx, args, kwargs) {
        let folded = helper(tx, "fold")?
            .call1((f, t, kw))
            .map_err(|e| super::exceptions::from_real_error(tx, e, "a NumPy function"))?;
        let (done, value): (bool, Bound<'py, PyAny>) = folded.extract().map_err(|e| tx.err(e))?;
        if done {
            return tx.realize(&value, None);
        }
    }
    let target = helper(tx, "call_target")?
        .call1((f,))
        .map_err(|e| tx.err(e))?;
    if target.is_none() {
        return Err(Exit::brk(format!(
            "NumPy function {} (no torch._numpy twin, or torch._dynamo.config.trace_numpy is off)",
            tx.describe(f)
        )));
    }
    node(tx, &target, args, kwargs)
}

/// A graph call of `target` with an ndarray among the arguments: an operator (`+`, `<`,
/// `a[i]`, `len`, `abs`) with NumPy's semantics, `torch.from_numpy`/`torch.as_tensor` (the
/// same memory as a tensor). None: no ndarray argument.
pub fn graph_call<'py>(
    tx: &mut Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    if tx.ndarray_vars.is_empty() {
        return Ok(None);
    }
    let nested = |v: &Value| match v {
        Value::Tuple(items) => items.iter().any(|i| is_ndarray(tx, i)),
        Value::List(l) => l.items.borrow().iter().any(|i| is_ndarray(tx, i)),
        _ => is_ndarray(tx, v),
    };
    if !args.iter().chain(kwargs.iter().map(|(_, v)| v)).any(nested) {
        return Ok(None);
    }
    let py = tx.py;
    let name = |attr: &str| -> String {
        target
            .getattr(attr)
            .and_then(|m| m.extract())
            .unwrap_or_default()
    };
    let (module, fname) = (name("__module__"), name("__name__"));
    if let ([Value::Tensor(var)], true) = (args, kwargs.is_empty()) {
        if module == "torch" && (fname == "from_numpy" || fname == "as_tensor") {
            let tensor = tx.hooks.tensor_type.bind(py).clone();
            let r = tx.record("as_subclass", (var.bind(py), tensor))?;
            return Ok(Some(Value::Tensor(r.unbind())));
        }
    }
    // A torch tensor beside an array: which of the two decides (torch's operator or
    // NumPy's, by operand order and type) is not modelled.
    let torch_tensor = |v: &Value| v.is_tensor() && !is_ndarray(tx, v) && !tx.is_symbolic(v);
    if args.iter().any(torch_tensor) {
        return Err(Exit::brk(format!(
            "{} between a torch tensor and a NumPy array",
            tx.describe(target)
        )));
    }
    let operator = module == "_operator" || module == "operator";
    let builtin = target.is(tx.hooks.b.len.bind(py)) || target.is(tx.hooks.b.abs.bind(py));
    if !(operator || builtin) || !kwargs.is_empty() {
        return Err(Exit::brk(format!(
            "{} called with a NumPy array",
            tx.describe(target)
        )));
    }
    let op = helper(tx, "operator_target")?
        .call1((target,))
        .map_err(|e| tx.err(e))?;
    node(tx, &op, args, &[]).map(Some)
}

/// `array.name`: metadata as constants, computed attributes (`T`, `real`) as nodes, methods
/// as method values. None: not an ndarray.
pub fn getattr(tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Option<Value>> {
    let (true, Value::Tensor(var)) = (is_ndarray(tx, v), v) else {
        return Ok(None);
    };
    let py = tx.py;
    let fake = var.bind(py).getattr("fake").map_err(|e| tx.err(e))?;
    let (code, obj): (i64, Bound<'_, PyAny>) = helper(tx, "attribute")?
        .call1((fake, name))
        .and_then(|r| r.extract())
        .map_err(|e| tx.err(e))?;
    match code {
        0 => tx.realize(&obj, None).map(Some),
        1 => node(tx, &obj, std::slice::from_ref(v), &[]).map(Some),
        2 => Ok(Some(Value::BuiltinMethod(Rc::new((
            v.clone(),
            name.to_string(),
        ))))),
        _ => Err(Exit::brk(format!("attribute '{name}' of a NumPy array"))),
    }
}

/// `array.name(*args, **kwargs)`: a node calling the `torch._numpy` ndarray's method. None:
/// not an ndarray.
pub fn call_method(
    tx: &mut Tracer<'_>,
    v: &Value,
    name: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    if !is_ndarray(tx, v) {
        return Ok(None);
    }
    let target = helper(tx, "method_target")?
        .call1((name,))
        .map_err(|e| tx.err(e))?;
    if target.is_none() {
        return Err(Exit::brk(format!(
            "ndarray.{name}() (reads the array's values into Python, or has no torch._numpy twin)"
        )));
    }
    let mut all = vec![v.clone()];
    all.extend(args.iter().cloned());
    node(tx, &target, &all, kwargs).map(Some)
}

/// `tensor.numpy()` (`force=` too) of a graph tensor while NumPy tracing is on: an ndarray
/// sharing the tensor's memory. None: tracing NumPy is off (the caller's break stands).
pub fn tensor_numpy(
    tx: &mut Tracer<'_>,
    v: &Value,
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Value::Tensor(var) = v else {
        return Ok(None);
    };
    if tx.is_symbolic(v) || kwargs.iter().any(|(k, _)| k != "force") {
        return Ok(None);
    }
    let on = helper(tx, "trace_numpy")?
        .call0()
        .and_then(|b| b.is_truthy())
        .map_err(|e| tx.err(e))?;
    if !on {
        return Ok(None);
    }
    // Eager refuses a tensor that requires grad (unless `force=True`): let it say so.
    let grad = var
        .bind(py)
        .getattr("fake")
        .and_then(|f| f.getattr("requires_grad"))
        .and_then(|g| g.is_truthy())
        .map_err(|e| tx.err(e))?;
    let forced = kwargs.iter().any(|(_, v)| {
        v.as_const(py)
            .is_some_and(|c| c.is_truthy().unwrap_or(false))
    });
    if grad && !forced {
        return Ok(None);
    }
    let tensor = tx.hooks.tensor_type.bind(py).clone();
    let r = tx.record("as_subclass", (var.bind(py), tensor))?;
    register(tx, &r, None);
    Ok(Some(Value::Tensor(r.unbind())))
}

/// A value passed to a graph operation: an ndarray only inside a NumPy node.
pub fn check_plain(tx: &Tracer<'_>, v: &Value) -> TResult<()> {
    if !tx.ndarray_ok && is_ndarray(tx, v) {
        return Err(Exit::brk(
            "a NumPy array reaching a graph operation that is not a NumPy one",
        ));
    }
    Ok(())
}

/// How an ndarray leaves the graph: the argument object itself (fetched again), or the
/// output tensor made an ndarray (`numpy_arrays.to_numpy`). None: not an ndarray.
pub enum Leaves {
    Input(Arc<Source>),
    Computed(Py<PyAny>),
}

pub fn leaves(tx: &Tracer<'_>, v: &Value) -> TResult<Option<Leaves>> {
    let Value::Tensor(var) = v else {
        return Ok(None);
    };
    let Some(n) = tx.ndarray_vars.get(&(var.as_ptr() as usize)) else {
        return Ok(None);
    };
    Ok(Some(match &n.input {
        Some(s) => Leaves::Input(s.clone()),
        None => Leaves::Computed(helper(tx, "to_numpy")?.unbind()),
    }))
}
