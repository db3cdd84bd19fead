//! `d.keys()`, `d.values()`, `d.items()` of a dict value (`StdVal::DictView`): live views
//! over the dict, as in CPython — iterating one again starts over, and a later change of
//! the dict is seen through a view made before it. They escape as the same method of the
//! (rebuilt or fetched) dict.

use std::rc::Rc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::stdlib::StdVal;
use super::tracer::Tracer;
use super::value::{DictVal, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ViewKind {
    Keys,
    Values,
    Items,
}

impl ViewKind {
    fn name(self) -> &'static str {
        match self {
            ViewKind::Keys => "keys",
            ViewKind::Values => "values",
            ViewKind::Items => "items",
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ViewKind::Keys => "dict_keys",
            ViewKind::Values => "dict_values",
            ViewKind::Items => "dict_items",
        }
    }

    /// The type of the same view of an OrderedDict.
    pub fn odict_type_name(self) -> &'static str {
        match self {
            ViewKind::Keys => "odict_keys",
            ViewKind::Values => "odict_values",
            ViewKind::Items => "odict_items",
        }
    }

    /// `OrderedDict.keys` (or values, items): the unbound method.
    pub fn odict_method(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .import("collections")?
            .getattr("OrderedDict")?
            .getattr(self.name())?
            .unbind())
    }

    /// `dict.keys` (or values, items): the unbound method, which rebuilds the view.
    pub fn method(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(py
            .get_type::<pyo3::types::PyDict>()
            .getattr(self.name())?
            .unbind())
    }

    pub fn python_type(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        Ok(pyo3::types::PyDict::new(py)
            .call_method0(self.name())?
            .get_type()
            .into_any())
    }

    /// The view's items now, in the dict's order.
    pub fn items(self, tx: &mut Tracer<'_>, d: &DictVal) -> TResult<Vec<Value>> {
        let py = tx.py;
        if let ViewKind::Keys = self {
            return Ok(d.keys(py).into_iter().map(Value::Const).collect());
        }
        Ok(tx
            .dict_items(d)?
            .into_iter()
            .map(|(k, v)| match self {
                ViewKind::Values => v,
                _ => Value::new_tuple(vec![Value::Const(k), v]),
            })
            .collect())
    }
}

pub fn view(d: &Rc<DictVal>, kind: ViewKind) -> Value {
    Value::Std(Rc::new(StdVal::DictView {
        dict: d.clone(),
        kind,
    }))
}

/// `x in view`: a key lookup for keys (and for items, whose value is then compared by
/// identity or as constants); values would compare with `==` on arbitrary values: a break.
pub fn contains(tx: &mut Tracer<'_>, d: &Rc<DictVal>, kind: ViewKind, x: &Value) -> TResult<bool> {
    match kind {
        ViewKind::Keys => super::ops::contains(tx, &Value::Dict(d.clone()), x),
        ViewKind::Items => {
            let pair: Vec<Value> = match x {
                Value::Tuple(t) => (**t).clone(),
                Value::Const(c) if c.bind(tx.py).is_exact_instance_of::<pyo3::types::PyTuple>() => {
                    super::iter::unpack(tx, x)?
                }
                _ => return Ok(false),
            };
            let [k, v] = pair.as_slice() else {
                return Ok(false);
            };
            if !super::ops::contains(tx, &Value::Dict(d.clone()), k)? {
                return Ok(false);
            }
            let key = tx
                .as_python_constant(k)
                .ok_or_else(|| Exit::brk("`in` on dict items with a non-constant key"))?;
            let found = tx.dict_get(d, &key)?;
            match found {
                Some(found) => {
                    if super::ops::is_same(tx, &found, v).unwrap_or(false) {
                        return Ok(true);
                    }
                    match (tx.as_python_constant(&found), tx.as_python_constant(v)) {
                        (Some(a), Some(b)) => a.eq(b).map_err(|e| tx.err(e)),
                        _ => Err(Exit::brk(
                            "`in` on dict items comparing non-constant values",
                        )),
                    }
                }
                None => Ok(false),
            }
        }
        ViewKind::Values => Err(Exit::brk("`in` on dict values")),
    }
}
