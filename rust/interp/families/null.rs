//! The NULL that PUSH_NULL / LOAD_GLOBAL / LOAD_METHOD push before a callable: never a
//! program value, so any verb on it is an internal error.

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Null;

impl Family for Null {
    fn name(&self) -> &'static str {
        "NULL"
    }

    fn getattr(&self, _: &mut Tracer<'_>, _: &Value, name: &str) -> TResult<Value> {
        Err(Exit::internal(format!("attribute '{name}' of NULL")))
    }

    fn setattr(&self, _: &mut Tracer<'_>, _: &Value, name: &str, _: Option<Value>) -> TResult<()> {
        Err(Exit::internal(format!(
            "storing attribute '{name}' on NULL"
        )))
    }

    fn call(&self, _: &mut Tracer<'_>, _: &Value, _: Args, _: Kwargs) -> TResult<Value> {
        Err(Exit::internal("call to NULL"))
    }

    fn iter(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<Value> {
        Err(Exit::internal("iteration over NULL"))
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Err(Exit::internal("truth value of NULL"))
    }

    fn python_type<'py>(&self, _: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        Err(Exit::internal("type() of NULL"))
    }
}
