//! Values crossing the graph-builder boundary: interpreter values turned into op
//! arguments for `GraphBuilder`, and its results (TensorVars, tuples of them, torch.Size
//! values with symbolic sizes, constants) turned back into values.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::exit::{Exit, TResult};
use super::kinds::*;
use super::tracer::Tracer;
use super::value::Value;

impl<'py> Tracer<'py> {
    /// Convert a value into what `GraphBuilder` expects as an op argument.
    pub fn to_graph_arg(&self, v: &Value) -> TResult<Bound<'py, PyAny>> {
        let _depth = self.nesting()?;
        let py = self.py;
        Ok(match v {
            // A number of an int or float subclass (an IntEnum member): its plain value,
            // which is what the operation sees eagerly and what the graph can print.
            // A NumPy scalar (`np.float32(2.5)`): torch ops take it as the Python number it
            // holds; a NumPy operation would treat it as strongly typed (NEP 50): break.
            Value::Const(o) if numpy_scalar(o.bind(py), self.hooks.numpy_generic.bind(py)) => {
                if self.ndarray_ok {
                    return Err(Exit::brk("a NumPy scalar passed to a NumPy operation"));
                }
                o.bind(py).call_method0("item").map_err(|e| self.err(e))?
            }
            Value::Const(o) if number_subclass(o.bind(py)) => {
                let plain = if o.bind(py).is_instance_of::<pyo3::types::PyFloat>() {
                    py.get_type::<pyo3::types::PyFloat>()
                } else {
                    py.get_type::<pyo3::types::PyInt>()
                };
                plain.call1((o.bind(py),)).map_err(|e| self.err(e))?
            }
            Value::Tensor(o) => {
                super::tensor_subclass::check_plain(self, v)?;
                super::numpy_arrays::check_plain(self, v)?;
                o.bind(py).clone()
            }
            Value::Const(o) => o.bind(py).clone(),
            Value::NamedTuple(n) => return self.to_graph_arg(&n.as_tuple()),
            Value::Tuple(items) => {
                let conv: Vec<_> = items
                    .iter()
                    .map(|i| self.to_graph_arg(i))
                    .collect::<TResult<_>>()?;
                PyTuple::new(py, conv).map_err(|e| self.err(e))?.into_any()
            }
            Value::List(l) => {
                let conv: Vec<_> = l
                    .items
                    .borrow()
                    .iter()
                    .map(|i| self.to_graph_arg(i))
                    .collect::<TResult<_>>()?;
                PyList::new(py, conv).map_err(|e| self.err(e))?.into_any()
            }
            Value::Dict(d) if self.stdlib.tag(d).is_some() => {
                return Err(Exit::brk(
                    "passing an OrderedDict/defaultdict to a tensor operation",
                ))
            }
            Value::Dict(d) if d.has_lazy() => {
                return Err(Exit::brk(
                    "passing a dict from the inputs to a tensor operation",
                ))
            }
            Value::Dict(d) => {
                let out = PyDict::new(py);
                for (k, val) in d.entries.borrow().iter() {
                    out.set_item(k.bind(py), self.to_graph_arg(val)?)
                        .map_err(|e| self.err(e))?;
                }
                out.into_any()
            }
            Value::Slice(s) => {
                let [a, b, c] = &**s;
                let f = self.hooks.b.slice.bind(py);
                f.call1((
                    self.to_graph_arg(a)?,
                    self.to_graph_arg(b)?,
                    self.to_graph_arg(c)?,
                ))
                .map_err(|e| self.err(e))?
            }
            Value::Object(o)
                if matches!(
                    o.kind,
                    KIND_TORCH_OP | KIND_CLASS | KIND_PURE | KIND_OPERATOR
                ) || (o.kind == KIND_NUMPY_FN
                    && o.obj.bind(py).is_instance_of::<pyo3::types::PyType>()) =>
            {
                o.obj.bind(py).clone()
            }
            other => {
                return Err(Exit::brk(format!(
                    "passing a {} to a tensor operation",
                    other.type_name(py)
                )))
            }
        })
    }

    /// Wrap what `GraphBuilder` returned (TensorVar, tuples of them, or constants).
    pub fn from_graph_result(&mut self, r: &Bound<'py, PyAny>) -> TResult<Value> {
        let py = self.py;
        if r.get_type().is(self.hooks.tensor_var.bind(py)) {
            return Ok(Value::Tensor(r.clone().unbind()));
        }
        // A torch.Size with symbolic sizes (graph.SymSize): a torch.Size value.
        if r.get_type().is(self.hooks.sym_size.bind(py)) {
            let items: Vec<Value> = r
                .try_iter()
                .map_err(|e| self.err(e))?
                .map(|i| {
                    i.map_err(|e| self.err(e))
                        .and_then(|i| self.from_graph_result(&i))
                })
                .collect::<TResult<_>>()?;
            return self.torch_size(items);
        }
        if let Ok(t) = r.cast::<PyTuple>() {
            if !r.get_type().is(py.get_type::<PyTuple>()) {
                let items: Vec<Value> = t
                    .iter()
                    .map(|i| self.from_graph_result(&i))
                    .collect::<TResult<_>>()?;
                if let Ok(v) = self.named_tuple(&r.get_type().into_any(), items) {
                    return Ok(v);
                }
            }
            if r.get_type().is(py.get_type::<PyTuple>()) {
                let items: Vec<Value> = t
                    .iter()
                    .map(|i| self.from_graph_result(&i))
                    .collect::<TResult<_>>()?;
                return Ok(Value::Tuple(Rc::new(items)));
            }
        }
        if let Ok(l) = r.cast::<PyList>() {
            let items: Vec<Value> = l
                .iter()
                .map(|i| self.from_graph_result(&i))
                .collect::<TResult<_>>()?;
            return Ok(Value::new_list(items));
        }
        self.realize(r, None)
    }
}

/// An instance of a strict subclass of `int` or `float` other than `bool`.
fn numpy_scalar(o: &Bound<'_, PyAny>, generic: &Bound<'_, PyAny>) -> bool {
    !(o.is_exact_instance_of::<pyo3::types::PyInt>()
        || o.is_exact_instance_of::<pyo3::types::PyFloat>()
        || o.is_exact_instance_of::<pyo3::types::PyBool>()
        || o.is_none())
        && o.is_instance(generic).unwrap_or(false)
}

fn number_subclass(o: &Bound<'_, PyAny>) -> bool {
    let py = o.py();
    let ty = o.get_type();
    (o.is_instance_of::<pyo3::types::PyInt>() || o.is_instance_of::<pyo3::types::PyFloat>())
        && !ty.is(py.get_type::<pyo3::types::PyInt>())
        && !ty.is(py.get_type::<pyo3::types::PyFloat>())
        && !ty.is(py.get_type::<pyo3::types::PyBool>())
}
