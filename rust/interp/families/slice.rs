//! Slices (`a[i:j:k]` and `slice(...)`).

use pyo3::prelude::*;
use pyo3::types::PySlice;

use super::Family;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Slice;

impl Family for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }

    /// A slice of constants is that slice.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let _ = out;
        match tx.as_python_constant(v) {
            Some(c) => Ok(OutTemplate::Const(c.unbind())),
            None => Err(Exit::brk("returning a slice of tensors")),
        }
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let Value::Slice(s) = v else {
            return Err(Exit::internal("slice family on another value"));
        };
        match name {
            "start" => Ok(s[0].clone()),
            "stop" => Ok(s[1].clone()),
            "step" => Ok(s[2].clone()),
            _ => Err(crate::interp::exceptions::attribute_error(
                tx.py,
                Some(v),
                "slice",
                name,
            )),
        }
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        Ok(PySlice::full(tx.py).get_type().into_any())
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let Value::Slice(s) = v else {
            return None;
        };
        let [a, b, c] = &**s;
        let (a, b, c) = (
            tx.as_python_constant(a)?,
            tx.as_python_constant(b)?,
            tx.as_python_constant(c)?,
        );
        PySlice::full(tx.py).get_type().call1((a, b, c)).ok()
    }
}
