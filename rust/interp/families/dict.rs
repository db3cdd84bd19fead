//! Dicts made or read in the trace, including the stdlib dict types modelled as tagged
//! dicts (OrderedDict, defaultdict, Counter: see stdlib.rs).

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::Family;
use crate::interp::exit::TResult;
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::{DictVal, Value};

pub struct Dict;

super::representation!(dict, Dict, DictVal);

impl Family for Dict {
    fn name(&self) -> &'static str {
        "dict"
    }

    /// A dict from the inputs is the same object (its changes are replayed); a new one is
    /// built from its entries.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let d = dict(v)?;
        if let Some(s) = &d.source {
            return Ok(out.fetch(s));
        }
        let entries: Vec<(Py<PyAny>, Value)> = d
            .entries
            .borrow()
            .iter()
            .map(|(k, i)| (k.clone_ref(tx.py), i.clone()))
            .collect();
        let mut built = Vec::with_capacity(entries.len());
        for (k, i) in entries {
            crate::interp::output::no_fake_id(tx, &k)?;
            built.push((k, out.value(tx, &i)?));
        }
        Ok(OutTemplate::Dict(built))
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        if name == "default_factory" {
            return crate::interp::stdlib::default_factory(tx, dict(v)?, v);
        }
        Ok(Value::BuiltinMethod(Rc::new((v.clone(), name.to_string()))))
    }

    super::container_methods!();

    /// Iterating a dict walks its keys, in insertion order.
    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let py = tx.py;
        let keys = dict(v)?.keys(py).into_iter().map(Value::Const).collect();
        Ok(crate::interp::iter::items_iter(keys))
    }

    fn truthy(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        Ok(!dict(v)?.is_empty())
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        if let Some(t) = crate::interp::stdlib_out::python_type(tx, v)? {
            return Ok(t);
        }
        Ok(tx.py.get_type::<PyDict>().into_any())
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        let d = dict(v).ok()?;
        if tx.stdlib.tag(d).is_some() {
            return crate::interp::stdlib_out::as_python_constant(tx, v);
        }
        let out = PyDict::new(tx.py);
        for (k, val) in d.entries.borrow().iter() {
            out.set_item(k.bind(tx.py), tx.as_python_constant(val)?)
                .ok()?;
        }
        Some(out.into_any())
    }
}
