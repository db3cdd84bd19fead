//! Tuples made or read in the trace (one value per real tuple: identity is kept).

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::Family;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

super::representation!(items_of, Tuple, Vec<Value>);

pub struct Tuple;

impl Family for Tuple {
    fn name(&self) -> &'static str {
        "tuple"
    }

    /// A tuple of its items' templates.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let items = items_of(v)?;
        Ok(OutTemplate::Tuple(out.values(tx, items.iter())?))
    }

    /// Methods keep the tuple as receiver; tuples have no other attributes.
    fn getattr(&self, _: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))))
    }

    super::container_methods!();

    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let items = crate::interp::iter::unpack(tx, v)?;
        Ok(crate::interp::iter::items_iter(items))
    }

    fn truthy(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        match v {
            Value::Tuple(t) => Ok(!t.is_empty()),
            _ => Err(Exit::internal("tuple family on another value")),
        }
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        Ok(tx.py.get_type::<PyTuple>().into_any())
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let Value::Tuple(items) = v else {
            return None;
        };
        let conv: Option<Vec<_>> = items.iter().map(|i| tx.as_python_constant(i)).collect();
        PyTuple::new(tx.py, conv?).ok().map(|t| t.into_any())
    }
}
