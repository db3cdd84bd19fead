//! Grad-mode context managers (`torch.no_grad()`, `torch.enable_grad()`,
//! `torch.set_grad_enabled(b)`): entering sets the mode in the trace; the `__exit__` that
//! BEFORE_WITH pushes restores the mode it saved.

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct GradMode;

impl Family for GradMode {
    fn name(&self) -> &'static str {
        "grad-mode context manager"
    }

    fn call_method(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        name: &str,
        _: Args,
        _: Kwargs,
    ) -> TResult<Value> {
        match (v, name) {
            (Value::GradMode(prev), "__exit__") => {
                crate::interp::grad_mode::set_grad_mode(tx, *prev)?;
                Ok(Value::none(tx.py))
            }
            _ => Err(Exit::brk(format!(
                "method {name} of a grad-mode context manager"
            ))),
        }
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, _: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        Err(Exit::brk("type() of a grad-mode context manager"))
    }
}
