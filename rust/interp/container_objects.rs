//! List and dict subclass objects: constructed in the trace (`cls()`, `list.__new__(cls)`,
//! a Python `__init__`'s `super().__init__(...)`) with their contents on a mirror
//! (`containers.rs` reads and changes it; `side_effects/table.rs` rebuilds an escaping one
//! with the builtin's own C methods), and compared by contents as the builtin's C rich
//! comparison does.

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::kinds::*;
use super::tracer::Tracer;
use super::value::Value;

/// `list.__new__(cls)` / `dict.__new__(cls)` for a plain list/dict subclass `cls`: a new,
/// empty object of it whose contents the trace models (`new_object_shell`). None: not such
/// a call.
pub fn builtin_new(
    tx: &mut Tracer<'_>,
    obj: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let ([Value::Object(c), ..], true) = (args, kwargs.is_empty()) else {
        return Ok(None);
    };
    if c.kind != KIND_CLASS {
        return Ok(None);
    }
    let list = py.get_type::<pyo3::types::PyList>();
    let dict = py.get_type::<pyo3::types::PyDict>();
    let is_new_of =
        |t: &Bound<'_, pyo3::types::PyType>| t.getattr("__new__").is_ok_and(|f| f.is(obj));
    let base = if is_new_of(&list) {
        list
    } else if is_new_of(&dict) {
        dict
    } else {
        return Ok(None);
    };
    let sub = c
        .obj
        .bind(py)
        .cast::<pyo3::types::PyType>()
        .is_ok_and(|t| t.is_subclass(&base).unwrap_or(false) && !t.is(&base));
    if !sub {
        return Ok(None);
    }
    crate::side_effects::new_objects::allocate(tx, c, false).map(Some)
}

/// `list.__init__`/`dict.__init__` (the builtin's own) on a list/dict-subclass object made
/// in the trace: its mirror gets what `list(*args)` / `dict(*args, **kwargs)` would hold.
/// None when `v` is not such an object or `init` is the class's own.
pub fn construct_init(
    tx: &mut Tracer<'_>,
    v: &Value,
    init: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Value::Object(o) = v else {
        return Ok(None);
    };
    let key = o.obj.as_ptr() as usize;
    let builtin_init =
        |t: Bound<'_, pyo3::types::PyType>| t.getattr("__init__").is_ok_and(|f| f.is(init));
    let ours = if tx.seq_shadows.contains_key(&key) {
        builtin_init(py.get_type::<pyo3::types::PyList>())
    } else {
        tx.dict_shadows.contains_key(&key) && builtin_init(py.get_type::<pyo3::types::PyDict>())
    };
    if !ours {
        return Ok(None);
    }
    // A new object's contents are empty: `__init__` fills them.
    init_call(tx, o, args, kwargs)?;
    Ok(Some(v.clone()))
}

/// `list.__init__(obj, *args)` / `dict.__init__(obj, *args, **kwargs)` on a list/dict
/// subclass object whose contents the trace models: a list's contents become what
/// `list(*args)` holds (it clears first), a dict's are updated with `dict(*args, **kwargs)`.
pub fn init_call(
    tx: &mut Tracer<'_>,
    o: &super::value::ObjVal,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    let key = o.obj.as_ptr() as usize;
    if let Some(l) = super::containers::list_shadow(tx, o)? {
        let f = tx.hooks.b.list.clone_ref(py);
        let Some(Value::List(m)) = super::builtins::call_builtin(tx, f.bind(py), args, kwargs)?
        else {
            return Err(Exit::brk("list.__init__ arguments"));
        };
        tx.list_mutating(&l)?;
        *l.items.borrow_mut() = m.items.borrow().clone();
        return Ok(Value::none(py));
    }
    if let Some(d) = tx.dict_shadows.get(&key).cloned() {
        let f = tx.hooks.b.dict.clone_ref(py);
        let Some(Value::Dict(m)) = super::builtins::call_builtin(tx, f.bind(py), args, kwargs)?
        else {
            return Err(Exit::brk("dict.__init__ arguments"));
        };
        let items: Vec<(Py<PyAny>, Value)> = m.snapshot(py);
        if !items.is_empty() {
            tx.dict_mutating(&d)?;
        }
        for (k, v) in items {
            super::dispatch::dict_set(tx, &d, k, v);
        }
        return Ok(Value::none(py));
    }
    Err(Exit::brk(
        "list.__init__/dict.__init__ on an object whose contents are not modelled",
    ))
}

/// For an object whose class compares with a builtin's C rich comparison (not object's,
/// not Python code): its contents as a plain list, tuple or dict value when it is a
/// list/tuple/dict subclass that keeps that comparison and whose contents the trace reads
/// (`containers.rs`); a break for any other such object; None for everything else.
pub fn compared_contents(tx: &mut Tracer<'_>, v: &Value) -> TResult<Option<Value>> {
    let py = tx.py;
    let Value::Object(o) = v else {
        return Ok(None);
    };
    if o.kind != KIND_OBJECT {
        return Ok(None);
    }
    let obj = o.obj.bind(py).clone();
    let ty = obj.get_type();
    let eq = ty.getattr("__eq__").map_err(|e| tx.err(e))?;
    if eq.is(tx.hooks.object_eq.bind(py)) || eq.get_type().name().is_ok_and(|n| n == "function") {
        return Ok(None);
    }
    let keeps = |base: Bound<'_, pyo3::types::PyType>| {
        ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"]
            .iter()
            .all(|n| match (ty.getattr(*n), base.getattr(*n)) {
                (Ok(a), Ok(b)) => a.is(&b),
                _ => false,
            })
    };
    // Described only when it breaks.
    let what = |tx: &Tracer<'_>| {
        Exit::brk(format!(
            "comparison of a {} (its comparison is implemented in C)",
            tx.describe(&ty.clone().into_any())
        ))
    };
    if obj.is_instance_of::<pyo3::types::PyList>() || obj.is_instance_of::<pyo3::types::PyTuple>() {
        let is_list = obj.is_instance_of::<pyo3::types::PyList>();
        let base = if is_list {
            py.get_type::<pyo3::types::PyList>()
        } else {
            py.get_type::<pyo3::types::PyTuple>()
        };
        if !keeps(base) || !super::containers::stock_seq(tx, o) {
            return Err(what(tx));
        }
        let items = super::containers::stock_seq_items(tx, o)?;
        return Ok(Some(if is_list {
            Value::new_list(items)
        } else {
            Value::new_tuple(items)
        }));
    }
    if obj.is_instance_of::<pyo3::types::PyDict>() && keeps(py.get_type::<pyo3::types::PyDict>()) {
        let items = super::containers::sub_dict_read(tx, o, "items", &[])?;
        let d = Value::new_dict_val();
        for p in super::iter::unpack(tx, &items)? {
            let kv = super::iter::unpack(tx, &p)?;
            let [k, v] = kv.as_slice() else {
                return Err(what(tx));
            };
            let k = super::dispatch::dict_key_const(tx, k)?;
            super::dispatch::dict_set(tx, &d, k, v.clone());
        }
        return Ok(Some(Value::Dict(d)));
    }
    Err(what(tx))
}
