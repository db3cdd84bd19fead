//! Exception objects created in the trace (raised, caught, chained, stored): their
//! semantics live in `interp/exceptions.rs`.

use pyo3::prelude::*;

use super::Family;
use crate::interp::exceptions::ExcVal;
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Exception;

super::representation!(exc, Exception, ExcVal);

impl Family for Exception {
    fn name(&self) -> &'static str {
        "exception"
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        crate::interp::exceptions::load_attr(tx, v, exc(v)?, name)
    }

    fn setattr(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        value: Option<Value>,
    ) -> TResult<()> {
        crate::interp::exceptions::store_attr(tx, exc(v)?, name, value)
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        Ok(crate::interp::exceptions::class_of(tx.py, exc(v)?))
    }
}
