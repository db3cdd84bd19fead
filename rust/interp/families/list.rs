//! Lists made or read in the trace; mutations of pre-existing lists go through the
//! side-effect store.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::Family;
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

super::representation!(list_of, List, crate::interp::value::ListVal);

pub struct List;

impl Family for List {
    fn name(&self) -> &'static str {
        "list"
    }

    /// A list from the inputs is the same object (its changes are replayed); a new one is
    /// built from its items.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let l = list_of(v)?;
        Ok(match &l.source {
            Some(s) => out.fetch(s),
            None => {
                let items = l.items.borrow().clone();
                OutTemplate::List(out.values(tx, items.iter())?)
            }
        })
    }

    /// Methods keep the list as receiver; lists have no other attributes.
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
            Value::List(l) => Ok(!l.items.borrow().is_empty()),
            _ => Err(Exit::internal("list family on another value")),
        }
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, _: &Value) -> TResult<Bound<'py, PyAny>> {
        Ok(tx.py.get_type::<PyList>().into_any())
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let Value::List(l) = v else {
            return None;
        };
        let conv: Option<Vec<_>> = l
            .items
            .borrow()
            .iter()
            .map(|i| tx.as_python_constant(i))
            .collect();
        PyList::new(tx.py, conv?).ok().map(|t| t.into_any())
    }
}
