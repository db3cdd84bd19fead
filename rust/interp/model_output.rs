//! transformers' `ModelOutput` dataclasses (`BaseModelOutput(last_hidden_state=h, ...)`),
//! modelled from their fields instead of running their construction (a dict subclass with a
//! custom metaclass, `__setattr__` and `__post_init__`). Only classes that behave exactly
//! like `ModelOutput` qualify (`ferrodyn/variables/model_output.py`).
//!
//! Its state is fully given by the field values: every field is an attribute; the mapping
//! holds the fields that are not None, in field order; integer and slice indexing go
//! through that tuple. Escaping the graph, it is `cls(**fields)` called again (the real
//! construction, once per call, as in eager). Setting a field (`out[k] = v`, `out.k = v`)
//! is modelled; other mutations, or anything not modelled here, break the graph.

use std::rc::Rc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::stdlib::StdVal;
use super::tracer::Tracer;
use super::value::Value;
use crate::ImportCached;

fn is_none(py: Python<'_>, v: &Value) -> bool {
    v.as_const(py).is_some_and(|c| c.is_none())
}

/// `cls(*args, **kwargs)` for a qualifying ModelOutput class; None for any other class.
pub fn construct(
    tx: &mut Tracer<'_>,
    cls: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    // A ModelOutput is a dict (OrderedDict) subclass: most classes stop here, without
    // asking Python.
    let is_dict_type = cls
        .cast::<pyo3::types::PyType>()
        .is_ok_and(|t| t.is_subclass_of::<pyo3::types::PyDict>().unwrap_or(false));
    if !is_dict_type {
        return Ok(None);
    }
    let fields = py
        .import_cached("ferrodyn.variables")
        .and_then(|m| m.call_method1("model_output_fields", (cls,)))
        .map_err(|e| tx.err(e))?;
    if fields.is_none() {
        return Ok(None);
    }
    let names: Vec<String> = fields.extract().map_err(|e| tx.err(e))?;
    if args.len() > names.len() {
        return Err(Exit::brk("ModelOutput constructed with too many arguments"));
    }
    let mut values: Vec<Option<Value>> = vec![None; names.len()];
    for (slot, a) in values.iter_mut().zip(args) {
        *slot = Some(a.clone());
    }
    let mut renamed: Vec<(usize, Value)> = Vec::new();
    for (k, v) in kwargs {
        match names.iter().position(|n| n == k) {
            Some(i) => {
                if values[i].is_some() {
                    return Err(Exit::brk(format!("ModelOutput got '{k}' twice")));
                }
                values[i] = Some(v.clone());
            }
            None => {
                // A deprecated name (`past_key_values`) that transformers' wrapper renames.
                let renames = py
                    .import_cached("ferrodyn.variables")
                    .and_then(|m| m.call_method1("model_output_renames", (cls,)))
                    .and_then(|r| r.get_item(k.as_str()))
                    .and_then(|n| n.extract::<String>())
                    .ok();
                let i = renames
                    .and_then(|n| names.iter().position(|x| *x == n))
                    .ok_or_else(|| {
                        Exit::brk(format!("ModelOutput constructed with keyword '{k}'"))
                    })?;
                renamed.push((i, v.clone()));
            }
        }
    }
    // The new name wins when both are given (the wrapper drops the old one).
    for (i, v) in renamed {
        if values[i].is_none() {
            values[i] = Some(v);
        }
    }
    let mut values: Vec<Value> = values
        .into_iter()
        .map(|v| v.unwrap_or_else(|| Value::none(py)))
        .collect();
    // `__post_init__` treats a lone non-tensor first field as an iterable of items.
    if values[1..].iter().all(|v| is_none(py, v)) && !values[0].is_tensor() {
        match lone_first_field(py, &values[0]) {
            LoneFirst::Kept => {}
            LoneFirst::Emptied => values[0] = Value::none(py),
            LoneFirst::Unpacked => {
                return Err(Exit::brk(
                    "ModelOutput whose only field is not a tensor (__post_init__ unpacks it)",
                ))
            }
        }
    }
    Ok(Some(Value::Std(Rc::new(StdVal::ModelOutput {
        cls: cls.clone().unbind(),
        names,
        values: std::cell::RefCell::new(values),
    }))))
}

fn parts(s: &StdVal) -> TResult<(&[String], Vec<Value>)> {
    match s {
        StdVal::ModelOutput { names, values, .. } => Ok((names, values.borrow().clone())),
        _ => Err(Exit::internal("not a ModelOutput")),
    }
}

/// The (name, value) pairs of the mapping: the fields that are not None.
pub fn present(tx: &Tracer<'_>, s: &StdVal) -> TResult<Vec<(String, Value)>> {
    let (names, values) = parts(s)?;
    Ok(names
        .iter()
        .zip(values)
        .filter(|(_, v)| !is_none(tx.py, v))
        .map(|(n, v)| (n.clone(), v))
        .collect())
}

fn to_tuple(tx: &Tracer<'_>, s: &StdVal) -> TResult<Value> {
    if let StdVal::ModelOutput { cls, .. } = s {
        let own = tx
            .py
            .import_cached("ferrodyn.variables")
            .and_then(|m| m.call_method1("model_output_own_to_tuple", (cls.bind(tx.py),)))
            .and_then(|r| r.is_truthy())
            .map_err(|e| tx.err(e))?;
        if own {
            return Err(Exit::brk(
                "to_tuple() or positional indexing of a ModelOutput class with its own to_tuple",
            ));
        }
    }
    Ok(Value::new_tuple(
        present(tx, s)?.into_iter().map(|(_, v)| v).collect(),
    ))
}

/// `out.name`: a field (None ones too). A name that is not a field and that no class in the
/// MRO defines raises AttributeError (`hasattr(out, "vision_hidden_states")` is False; a
/// ModelOutput sets no other instance attributes); other names break.
pub fn load_attr(tx: &Tracer<'_>, s: &StdVal, name: &str) -> TResult<Value> {
    let (names, values) = parts(s)?;
    if let Some(i) = names.iter().position(|n| n == name) {
        return Ok(values[i].clone());
    }
    if let StdVal::ModelOutput { cls, .. } = s {
        let cls = cls.bind(tx.py);
        let on_class = cls
            .cast::<pyo3::types::PyType>()
            .map_or(true, |t| super::calls::class_raw_attr(t, name).is_some());
        if !on_class && !name.starts_with("__") {
            let ty = cls
                .getattr("__name__")
                .map(|n| n.to_string())
                .unwrap_or_default();
            return Err(super::exceptions::attribute_error(tx.py, None, &ty, name));
        }
    }
    Err(Exit::brk(format!("attribute '{name}' of a ModelOutput")))
}

/// `out[k] = v` (`ModelOutput.__setitem__`: the mapping entry and the attribute) and
/// `out.k = v` (`ModelOutput.__setattr__`: also the mapping entry when `k` is in it and `v`
/// is not None), for a field `k`: the field's new value. What would make the mapping
/// differ from "the fields that are not None" (a None value; an attribute store to a
/// field not in the mapping) breaks, as does any other name.
pub fn store(tx: &mut Tracer<'_>, s: &StdVal, key: &str, value: Value, item: bool) -> TResult<()> {
    let StdVal::ModelOutput { names, values, .. } = s else {
        return Err(Exit::internal("not a ModelOutput"));
    };
    let Some(i) = names.iter().position(|n| n == key) else {
        return Err(Exit::brk(format!(
            "storing '{key}' on a ModelOutput (not a field)"
        )));
    };
    if is_none(tx.py, &value) {
        return Err(Exit::brk(format!(
            "storing None to ModelOutput field '{key}'"
        )));
    }
    if !item && is_none(tx.py, &values.borrow()[i]) {
        return Err(Exit::brk(format!(
            "setting ModelOutput attribute '{key}' that is not in its mapping"
        )));
    }
    values.borrow_mut()[i] = value;
    Ok(())
}

/// `out[k]`: by field name in the mapping, or by position in `to_tuple()`.
pub fn subscr(tx: &mut Tracer<'_>, s: &StdVal, idx: &Value) -> TResult<Value> {
    let py = tx.py;
    if let Some(k) = idx.as_const(py).and_then(|k| k.extract::<String>().ok()) {
        let (names, _) = parts(s)?;
        if !names.contains(&k) {
            return Err(Exit::brk(format!("ModelOutput['{k}'] (not a field)")));
        }
        return match present(tx, s)?.into_iter().find(|(n, _)| *n == k) {
            Some((_, v)) => Ok(v),
            None => Err(super::exceptions::raise_builtin(py, "KeyError", k)),
        };
    }
    let t = to_tuple(tx, s)?;
    super::ops::subscr(tx, &t, idx)
}

/// `out.to_tuple()`, `out.get(k[, default])`, and the mapping views `out.keys()`,
/// `out.values()`, `out.items()`; anything else breaks.
pub fn call_method(
    tx: &mut Tracer<'_>,
    s: &std::rc::Rc<StdVal>,
    name: &str,
    args: &[Value],
) -> TResult<Value> {
    use super::dict_views::ViewKind;
    let py = tx.py;
    let view = |kind| {
        Ok(Value::Std(std::rc::Rc::new(StdVal::ModelOutputView {
            out: s.clone(),
            kind,
        })))
    };
    match (name, args) {
        ("keys", []) => view(ViewKind::Keys),
        ("values", []) => view(ViewKind::Values),
        ("items", []) => view(ViewKind::Items),
        ("to_tuple", []) => to_tuple(tx, s),
        ("get", [k]) | ("get", [k, _]) => {
            let key = k
                .as_const(py)
                .and_then(|k| k.extract::<String>().ok())
                .ok_or_else(|| Exit::brk("ModelOutput.get with a non-constant key"))?;
            let default = args.get(1).cloned().unwrap_or_else(|| Value::none(py));
            Ok(present(tx, s)?
                .into_iter()
                .find(|(n, _)| *n == key)
                .map(|(_, v)| v)
                .unwrap_or(default))
        }
        _ => Err(Exit::brk(format!("ModelOutput.{name}()"))),
    }
}

/// What iterating `out.keys()` / `values()` / `items()` gives now.
pub fn view_items(
    tx: &Tracer<'_>,
    s: &StdVal,
    kind: super::dict_views::ViewKind,
) -> TResult<Vec<Value>> {
    use super::dict_views::ViewKind;
    let py = tx.py;
    Ok(present(tx, s)?
        .into_iter()
        .map(|(n, v)| match kind {
            ViewKind::Keys => Value::constant(py, n.as_str()),
            ViewKind::Values => v,
            ViewKind::Items => Value::new_tuple(vec![Value::constant(py, n.as_str()), v]),
        })
        .collect())
}

/// What `ModelOutput.__post_init__` does with a first field that is the only one set and
/// is not a tensor.
enum LoneFirst {
    /// Stored as it is: None, a number (not iterable), or a tuple whose first item is not a
    /// `(str, value)` pair (a tuple of tensors).
    Kept,
    /// An empty tuple: iterating it sets nothing, and the field ends up None.
    Emptied,
    /// Anything else (a dict, `(key, value)` pairs, other iterables): not modelled.
    Unpacked,
}

/// The items of a tuple value or a constant tuple (None for anything else).
fn tuple_items(py: Python<'_>, v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Tuple(t) => Some(t.to_vec()),
        Value::Const(c) => {
            let t = c.bind(py).cast::<pyo3::types::PyTuple>().ok()?;
            Some(t.iter().map(|i| Value::Const(i.unbind())).collect())
        }
        _ => None,
    }
}

fn lone_first_field(py: Python<'_>, v: &Value) -> LoneFirst {
    let items = match (tuple_items(py, v), v) {
        (Some(items), _) => items,
        (None, Value::Const(c)) => {
            let c = c.bind(py);
            let number = c.is_instance_of::<pyo3::types::PyInt>()
                || c.is_instance_of::<pyo3::types::PyFloat>();
            return if c.is_none() || number {
                LoneFirst::Kept
            } else {
                LoneFirst::Unpacked
            };
        }
        // (A list made in the trace is filled after the objects that hold it are rebuilt:
        // the ModelOutput's `__post_init__` would see it empty.)
        _ => return LoneFirst::Unpacked,
    };
    let Some(first) = items.first() else {
        return LoneFirst::Emptied;
    };
    let pair = match first {
        Value::List(l) => Some(l.items.borrow().clone()),
        other => tuple_items(py, other),
    };
    match pair {
        Some(p) if p.len() == 2 => match &p[0] {
            Value::Const(k) if k.bind(py).is_instance_of::<pyo3::types::PyString>() => {
                LoneFirst::Unpacked
            }
            Value::Const(_) | Value::Tensor(_) => LoneFirst::Kept,
            _ => LoneFirst::Unpacked,
        },
        Some(_) | None => LoneFirst::Kept,
    }
}

/// The keys the mapping iterates over.
pub fn keys(tx: &Tracer<'_>, s: &StdVal) -> TResult<Vec<Value>> {
    Ok(present(tx, s)?
        .into_iter()
        .map(|(n, _)| Value::constant(tx.py, n.as_str()))
        .collect())
}
