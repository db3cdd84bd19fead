//! `obj.method` for a user function bound to a receiver: calling it inlines the function
//! with the receiver first.

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::TResult;
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;
use crate::ImportCached;

pub struct BoundMethod;

super::representation!(parts, BoundMethod, (Value, Value));

impl Family for BoundMethod {
    fn name(&self) -> &'static str {
        "bound method"
    }

    /// `types.MethodType(function, receiver)` again.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let m = parts(v)?;
        let f = out.value(tx, &m.1)?;
        let this = out.value(tx, &m.0)?;
        Ok(OutTemplate::Call(
            crate::interp::output::py_attr(tx, "types", "MethodType")?,
            vec![f, this],
        ))
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let m = parts(v)?;
        match name {
            "__self__" => Ok(m.0.clone()),
            "__func__" => Ok(m.1.clone()),
            _ => super::getattr(tx, &m.1, name),
        }
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let m = parts(v)?;
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(m.0.clone());
        all.extend(args);
        super::call(tx, &m.1, all, kwargs)
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        tx.py
            .import_cached("types")
            .and_then(|t| t.getattr("MethodType"))
            .map_err(|e| tx.err(e))
    }
}
