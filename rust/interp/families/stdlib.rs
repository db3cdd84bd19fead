//! Modelled stdlib objects (`functools.partial`, `deque`, `set`, `map`, `filter`,
//! `itemgetter`, ModelOutput, dict views, `inspect.Signature`, ...): their semantics live
//! in `interp/stdlib*.rs`, one model per type; this family routes the verbs to them.

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::stdlib::StdVal;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Stdlib;

super::representation!(std_val, Std, StdVal);

impl Family for Stdlib {
    fn name(&self) -> &'static str {
        "stdlib object"
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        crate::interp::stdlib::load_attr_std(tx, v, std_val(v)?, name)
    }

    /// Only a ModelOutput's fields are stored to (as its `__setattr__` does).
    fn setattr(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        value: Option<Value>,
    ) -> TResult<()> {
        let s = std_val(v)?;
        match (&**s, value) {
            (StdVal::ModelOutput { .. }, Some(val)) => {
                crate::interp::model_output::store(tx, s, name, val, false)
            }
            _ => Err(Exit::brk(format!(
                "assignment to attribute '{name}' of a '{}'",
                v.type_name(tx.py)
            ))),
        }
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        crate::interp::stdlib::call_std(tx, std_val(v)?, args, kwargs)
    }

    super::container_methods!();

    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        crate::interp::stdlib::get_iter_std(tx, v, std_val(v)?)
    }

    fn truthy(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        Ok(crate::interp::stdlib::truthy_std(tx, std_val(v)?))
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        crate::interp::stdlib_out::python_type(tx, v)?
            .ok_or_else(|| Exit::internal("stdlib value without a type"))
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        crate::interp::stdlib_out::as_python_constant(tx, v)
    }
}
