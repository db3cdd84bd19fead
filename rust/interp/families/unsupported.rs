//! Objects the tracer does not model (C extension objects, opaque callables): read with
//! guards and passed around, but calling one, asking its type or iterating it breaks
//! unless a builtin model or polyfill covers it.

use pyo3::prelude::*;

use super::python_object::{obj, python_object_verbs};
use super::Family;
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Unsupported;

impl Family for Unsupported {
    fn name(&self) -> &'static str {
        "unsupported object"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        as_constant,
        call,
        reconstruct
    );

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        Err(Exit::brk(format!(
            "type() of unsupported object {}",
            tx.describe(obj(v)?.obj.bind(tx.py))
        )))
    }
}
