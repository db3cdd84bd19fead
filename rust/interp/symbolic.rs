//! Dynamic-shape values in the tracer: `int` arguments that become symbolic graph inputs,
//! symbolic numbers (sizes and expressions of sizes, `Value::Tensor` over a SymInt) and
//! their specialisation to constants, and torch.Size values holding symbolic sizes.

use crate::ImportCached;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;

use super::exit::TResult;
use super::tracer::Tracer;
use super::value::{NamedTupleVal, Value};
use crate::guards::{Guard, Source};

impl<'py> Tracer<'py> {
    /// An `int` argument of the compiled function that dynamic shapes make a symbolic
    /// graph input (`dynamic=True`, or its value changed since an earlier trace): guarded
    /// on its type here and on its range by the shape guard.
    pub(crate) fn dynamic_int_input(
        &mut self,
        obj: &Bound<'py, PyAny>,
        s: &Arc<Source>,
    ) -> TResult<Option<Value>> {
        let py = self.py;
        let number = obj.get_type().is(py.get_type::<pyo3::types::PyInt>())
            || obj.get_type().is(py.get_type::<pyo3::types::PyFloat>());
        if !from_local_items(s) || !number {
            return Ok(None);
        }
        let var = self
            .gb
            .call_method1("add_int_input", (obj, s.render()))
            .map_err(|e| self.err(e))?;
        if var.is_none() {
            return Ok(None);
        }
        self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
        self.inputs.push(s.clone());
        Ok(Some(Value::Tensor(var.unbind())))
    }

    /// The items of a torch.Size value with symbolic sizes (a `NamedTuple` of class
    /// torch.Size), or None.
    pub fn size_items(&self, v: &Value) -> Option<Vec<Value>> {
        let Value::NamedTuple(n) = v else {
            return None;
        };
        let size = self
            .py
            .import_cached("torch")
            .and_then(|t| t.getattr("Size"))
            .ok()?;
        n.cls.bind(self.py).is(&size).then(|| (*n.items).clone())
    }

    /// A torch.Size value of these items (symbolic sizes among them).
    pub fn torch_size(&self, items: Vec<Value>) -> TResult<Value> {
        let size = self
            .py
            .import_cached("torch")
            .and_then(|t| t.getattr("Size"))
            .map_err(|e| self.err(e))?;
        Ok(Value::NamedTuple(Rc::new(NamedTupleVal {
            cls: size.unbind(),
            fields: Vec::new(),
            structseq: true,
            items: Rc::new(items),
            attrs: Default::default(),
        })))
    }

    /// Whether `v` is a symbolic number (a dynamic size or an expression of sizes).
    pub fn is_symbolic(&self, v: &Value) -> bool {
        match v {
            Value::Tensor(var) => var
                .bind(self.py)
                .call_method0("is_symbolic")
                .and_then(|b| b.is_truthy())
                .unwrap_or(false),
            _ => false,
        }
    }

    /// A symbolic number (a dynamic size computed in the graph) as the constant it is in
    /// this trace; the shape environment guards that it keeps the value. None for a tensor.
    pub fn specialize_symbolic(&self, var: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        if !var
            .call_method0("is_symbolic")
            .and_then(|b| b.is_truthy())
            .unwrap_or(false)
        {
            return None;
        }
        var.call_method0("specialize").ok()
    }
}

/// A frame argument, or an item (at any depth) of a tuple or list argument or of an iterator
/// argument's items left (`IterItem`): the ints that
/// become symbolic after they change, as torch.compile's automatic dynamic ints (an index
/// carried on a resume function's stack, `(i, layer)` of an `enumerate` loop, among them).
fn from_local_items(s: &Source) -> bool {
    match s {
        Source::Local { .. } => true,
        Source::Index { base, .. } | Source::IterItem { base, .. } => from_local_items(base),
        _ => false,
    }
}
