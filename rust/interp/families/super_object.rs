//! `super()` inside a method: attribute reads walk the MRO after the class whose method
//! is running, bound to the receiver (`attrs::super_attr`).

use super::Family;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

super::representation!(pair, Super, (pyo3::Py<pyo3::PyAny>, Value));

pub struct Super;

impl Family for Super {
    fn name(&self) -> &'static str {
        "super object"
    }

    /// `super(cls, receiver)` again, after the graph.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let s = pair(v)?;
        let recv = out.value(tx, &s.1)?;
        Ok(OutTemplate::Call(
            tx.hooks.super_type.clone_ref(tx.py),
            vec![OutTemplate::Const(s.0.clone_ref(tx.py)), recv],
        ))
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        match v {
            Value::Super(s) => crate::interp::attrs::super_attr(tx, &s.0, &s.1, name),
            _ => Err(Exit::internal("super family on another value")),
        }
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }
}
