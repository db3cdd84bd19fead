//! Binary operators and rich comparisons with a user object on either side, by CPython's
//! protocol (`Objects/abstract.c` `binary_op1`, `Objects/object.c` `do_richcompare`): the
//! right operand's reflected method first when its class is a proper subclass of the left's
//! (and, for operators, overrides it), then the left operand's method, then the reflected
//! one; `NotImplemented` passes to the next; `==`/`!=` end in identity, anything else in
//! eager's `TypeError`. Each Python dunder is traced (never run at trace time: an object
//! from the frame is a constant to the tracer, and folding `a == b` would run its `__eq__`
//! once and bake the answer in); object's defaults are modelled; any other C slot breaks.

use pyo3::prelude::*;
use pyo3::types::PyType;

use super::calls::{call_dunder, class_raw_attr};
use super::exit::{Exit, TResult};
use super::kinds::*;
use super::ops::is_same;
use super::tracer::Tracer;
use super::value::Value;

/// `<`, `<=`, `==`, `!=`, `>`, `>=` (COMPARE_OP's order): the method and its reflection.
const COMPARE_DUNDERS: [(&str, &str, &str); 6] = [
    ("__lt__", "__gt__", "<"),
    ("__le__", "__ge__", "<="),
    ("__eq__", "__eq__", "=="),
    ("__ne__", "__ne__", "!="),
    ("__gt__", "__lt__", ">"),
    ("__ge__", "__le__", ">="),
];

fn user_object(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.kind == KIND_OBJECT)
}

/// Whether `==` with `v` on either side is decided here (a user object of a plain Python
/// class).
pub fn compares_by_dunder(tx: &Tracer<'_>, v: &Value) -> bool {
    match v {
        Value::Object(o) if o.kind == KIND_OBJECT => {
            plain_object_class(&o.obj.bind(tx.py).get_type())
        }
        _ => false,
    }
}

/// Whether `v` is, or is a list/tuple holding (at any depth), an object `==` is decided
/// for here.
fn holds_dunder_operand(tx: &Tracer<'_>, v: &Value, depth: usize) -> bool {
    // A list holding itself (or a deep nest) is not searched past a few levels.
    if depth > MAX_DEPTH {
        return false;
    }
    match v {
        Value::Tuple(items) => items.iter().any(|i| holds_dunder_operand(tx, i, depth + 1)),
        Value::List(l) => l
            .items
            .borrow()
            .iter()
            .any(|i| holds_dunder_operand(tx, i, depth + 1)),
        _ => compares_by_dunder(tx, v),
    }
}

/// How deep nested lists, tuples and dicts are searched for user objects.
const MAX_DEPTH: usize = 8;

/// `lhs <op> rhs` for two tuples or two lists, one holding a user object: as CPython's
/// `list_richcompare`/`tuplerichcompare` (the first items that are neither identical nor
/// `==` decide; else the lengths). None: not this case.
pub fn sequence_compare(
    tx: &mut Tracer<'_>,
    op: usize,
    lhs: &Value,
    rhs: &Value,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let (a, b) = match (lhs, rhs) {
        (Value::Tuple(a), Value::Tuple(b)) => (a.to_vec(), b.to_vec()),
        (Value::List(a), Value::List(b)) => (a.items.borrow().clone(), b.items.borrow().clone()),
        _ => return Ok(None),
    };
    if !(holds_dunder_operand(tx, lhs, 0) || holds_dunder_operand(tx, rhs, 0)) {
        return Ok(None);
    }
    if a.len() != b.len() && matches!(op, 2 | 3) {
        return Ok(Some(Value::constant(py, op == 3)));
    }
    for (x, y) in a.iter().zip(&b) {
        if is_same(tx, x, y)? {
            continue;
        }
        let eq = super::ops::compare_op(tx, 2, x, y)?;
        if crate::interp::families::truthy(tx, &eq)? {
            continue;
        }
        return Ok(Some(match op {
            2 => Value::constant(py, false),
            3 => Value::constant(py, true),
            _ => super::ops::compare_op(tx, op, x, y)?,
        }));
    }
    let (n, m) = (a.len(), b.len());
    let r = match op {
        0 => n < m,
        1 => n <= m,
        2 => n == m,
        3 => n != m,
        4 => n > m,
        _ => n >= m,
    };
    Ok(Some(Value::constant(py, r)))
}

/// Operands this module decides: at least one user object, and every user object of a
/// class made of Python classes over `object` (a subclass of a builtin keeps the builtin's
/// C slots: the callers' other paths handle those).
fn applies(tx: &Tracer<'_>, lhs: &Value, rhs: &Value) -> bool {
    let plain = |v: &Value| match v {
        Value::Object(o) if o.kind == KIND_OBJECT => {
            Some(plain_object_class(&o.obj.bind(tx.py).get_type()))
        }
        _ => None,
    };
    match (plain(lhs), plain(rhs)) {
        (None, None) => false,
        (a, b) => a.unwrap_or(true) && b.unwrap_or(true),
    }
}

/// What a class's slot for `name` is.
enum Slot {
    /// Not defined anywhere in the MRO.
    Missing,
    /// A Python function (traced through `call_dunder`).
    Python,
    /// `object`'s own.
    ObjectDefault,
    /// Another C implementation: not modelled.
    Builtin(String),
}

fn slot(ty: &Bound<'_, PyType>, name: &str) -> Slot {
    let py = ty.py();
    let Some(raw) = class_raw_attr(ty, name) else {
        return Slot::Missing;
    };
    let tname = raw
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    if tname == "function" || tname == "staticmethod" {
        return Slot::Python;
    }
    let object_own = py
        .get_type::<pyo3::types::PyAny>()
        .getattr("__dict__")
        .and_then(|d| d.get_item(name))
        .is_ok_and(|o| o.is(&raw));
    if object_own {
        return Slot::ObjectDefault;
    }
    let owner = ty.qualname().map(|q| q.to_string()).unwrap_or_default();
    Slot::Builtin(format!("{owner}.{name} is implemented in C"))
}

/// Whether the class derives from `object` through Python classes only (a builtin's slot
/// then answers NotImplemented to it, whatever the builtin).
fn plain_object_class(ty: &Bound<'_, PyType>) -> bool {
    let py = ty.py();
    let object = py.get_type::<pyo3::types::PyAny>();
    ty.getattr("__mro__")
        .and_then(|m| m.try_iter().map(|it| it.collect::<Vec<_>>()))
        .is_ok_and(|mro| {
            mro.into_iter().all(|k| {
                k.is_ok_and(|k| {
                    k.is(&object)
                        || k.cast::<PyType>().is_ok_and(|t| {
                            // SAFETY: reads the flags of a live type object.
                            unsafe {
                                (*t.as_type_ptr()).tp_flags & pyo3::ffi::Py_TPFLAGS_HEAPTYPE != 0
                            }
                        })
                })
            })
        })
}

fn type_of<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyType>> {
    match v {
        Value::Object(o) => Some(o.obj.bind(tx.py).get_type()),
        _ => tx.as_python_constant(v).map(|c| c.get_type()),
    }
}

fn not_implemented(tx: &Tracer<'_>, v: &Value) -> bool {
    matches!(v, Value::Const(c) if c.bind(tx.py).is(tx.py.NotImplemented()))
}

fn type_name(tx: &Tracer<'_>, v: &Value) -> String {
    v.type_name(tx.py)
}

/// The answer of `v`'s `name` method to `w` (NotImplemented included), or a break.
fn attempt(tx: &mut Tracer<'_>, v: &Value, w: &Value, name: &str) -> TResult<Value> {
    let py = tx.py;
    if !user_object(v) {
        // A builtin operand: its slot declines an operand of a plain Python class.
        let other_plain = match w {
            Value::Object(o) => plain_object_class(&o.obj.bind(py).get_type()),
            _ => false,
        };
        if other_plain {
            return Ok(Value::Const(py.NotImplemented()));
        }
        return Err(Exit::brk(format!(
            "{name} between '{}' and '{}'",
            type_name(tx, v),
            type_name(tx, w)
        )));
    }
    let Value::Object(o) = v else {
        return Err(Exit::internal("attempt on a non-object"));
    };
    let ty = o.obj.bind(py).get_type();
    match slot(&ty, name) {
        Slot::Python => call_dunder(tx, v, name, vec![w.clone()]),
        Slot::Missing => Ok(Value::Const(py.NotImplemented())),
        Slot::ObjectDefault => match name {
            "__eq__" => Ok(if is_same(tx, v, w)? {
                Value::constant(py, true)
            } else {
                Value::Const(py.NotImplemented())
            }),
            "__ne__" => {
                // object's `__ne__` asks the object's own `__eq__` and inverts it.
                let eq = attempt(tx, v, w, "__eq__")?;
                if not_implemented(tx, &eq) {
                    return Ok(eq);
                }
                match tx.as_python_constant(&eq).map(|c| c.is_truthy()) {
                    Some(Ok(b)) => Ok(Value::constant(py, !b)),
                    _ => Err(Exit::brk(
                        "`!=` through an `__eq__` that returned a value without a constant truth",
                    )),
                }
            }
            _ => Ok(Value::Const(py.NotImplemented())),
        },
        Slot::Builtin(why) => Err(Exit::brk(why)),
    }
}

/// `lhs <op> rhs` for COMPARE_OP index `op`, when either side is a user object (None: not
/// this module's case).
pub fn rich_compare(
    tx: &mut Tracer<'_>,
    op: usize,
    lhs: &Value,
    rhs: &Value,
) -> TResult<Option<Value>> {
    if !applies(tx, lhs, rhs) {
        return Ok(None);
    }
    let py = tx.py;
    let (name, swapped, sym) = *COMPARE_DUNDERS
        .get(op)
        .ok_or_else(|| Exit::internal("bad COMPARE_OP"))?;
    let (Some(lt), Some(rt)) = (type_of(tx, lhs), type_of(tx, rhs)) else {
        return Err(Exit::brk(format!(
            "comparison between '{}' and '{}'",
            type_name(tx, lhs),
            type_name(tx, rhs)
        )));
    };
    let reflected_first = !lt.is(&rt) && rt.is_subclass(lt.as_any()).unwrap_or(false);
    if reflected_first {
        let r = attempt(tx, rhs, lhs, swapped)?;
        if !not_implemented(tx, &r) {
            return Ok(Some(r));
        }
    }
    let r = attempt(tx, lhs, rhs, name)?;
    if !not_implemented(tx, &r) {
        return Ok(Some(r));
    }
    if !reflected_first {
        let r = attempt(tx, rhs, lhs, swapped)?;
        if !not_implemented(tx, &r) {
            return Ok(Some(r));
        }
    }
    match op {
        2 => Ok(Some(Value::constant(py, is_same(tx, lhs, rhs)?))),
        3 => Ok(Some(Value::constant(py, !is_same(tx, lhs, rhs)?))),
        _ => Err(super::exceptions::raise_builtin(
            py,
            "TypeError",
            format!(
                "'{sym}' not supported between instances of '{}' and '{}'",
                type_name(tx, lhs),
                type_name(tx, rhs)
            ),
        )),
    }
}

/// `lhs <op> rhs` (`name`: `add`, `and`, `floordiv`, ...; `sym`: `+`, ...; `inplace`: the
/// augmented form) when either side is a user object (None: not this module's case).
pub fn binary(
    tx: &mut Tracer<'_>,
    name: &str,
    sym: &str,
    inplace: bool,
    lhs: &Value,
    rhs: &Value,
) -> TResult<Option<Value>> {
    if !applies(tx, lhs, rhs) {
        return Ok(None);
    }
    let py = tx.py;
    if inplace && user_object(lhs) {
        let iname = format!("__i{name}__");
        if let Value::Object(o) = lhs {
            match slot(&o.obj.bind(py).get_type(), &iname) {
                Slot::Python => {
                    let r = call_dunder(tx, lhs, &iname, vec![rhs.clone()])?;
                    if !not_implemented(tx, &r) {
                        return Ok(Some(r));
                    }
                }
                Slot::Builtin(why) => return Err(Exit::brk(why)),
                Slot::Missing | Slot::ObjectDefault => {}
            }
        }
    }
    let forward = format!("__{name}__");
    let reflected = format!("__r{name}__");
    let (Some(lt), Some(rt)) = (type_of(tx, lhs), type_of(tx, rhs)) else {
        return Err(Exit::brk(format!(
            "`{sym}` between '{}' and '{}'",
            type_name(tx, lhs),
            type_name(tx, rhs)
        )));
    };
    let same = lt.is(&rt);
    let overrides = |tx: &Tracer<'_>| {
        let a = class_raw_attr(&rt, &reflected);
        let b = class_raw_attr(&lt, &reflected);
        let _ = tx;
        match (a, b) {
            (Some(a), Some(b)) => !a.is(&b),
            (Some(_), None) => true,
            _ => false,
        }
    };
    let reflected_first = !same && rt.is_subclass(lt.as_any()).unwrap_or(false) && overrides(tx);
    if reflected_first {
        let r = attempt(tx, rhs, lhs, &reflected)?;
        if !not_implemented(tx, &r) {
            return Ok(Some(r));
        }
    }
    let r = attempt(tx, lhs, rhs, &forward)?;
    if !not_implemented(tx, &r) {
        return Ok(Some(r));
    }
    if !same && !reflected_first {
        let r = attempt(tx, rhs, lhs, &reflected)?;
        if !not_implemented(tx, &r) {
            return Ok(Some(r));
        }
    }
    if !(user_object(lhs) && user_object(rhs)) {
        // A builtin operand may still have a say CPython's slots give it (a sequence
        // repeated by an object's `__index__`): let the operation run natively.
        return Err(Exit::brk(format!(
            "unsupported operand types for {sym}: '{}' and '{}'",
            type_name(tx, lhs),
            type_name(tx, rhs)
        )));
    }
    let shown = if inplace {
        format!("{sym}=")
    } else {
        sym.to_string()
    };
    Err(super::exceptions::raise_builtin(
        py,
        "TypeError",
        format!(
            "unsupported operand type(s) for {shown}: '{}' and '{}'",
            type_name(tx, lhs),
            type_name(tx, rhs)
        ),
    ))
}

/// Dunders a builtin never reaches on a user object, or reaches without running its code.
const INERT_DUNDERS: [&str; 16] = [
    "__init__",
    "__new__",
    "__init_subclass__",
    "__post_init__",
    "__setattr__",
    "__delattr__",
    "__getattr__",
    "__getattribute__",
    "__class_getitem__",
    "__set_name__",
    "__get__",
    "__set__",
    "__delete__",
    "__del__",
    "__subclasshook__",
    "__torch_function__",
];

/// Whether `v` is a user object whose class defines `__hash__` or `__eq__` in Python (using it
/// as a dict key runs them).
pub fn hashes_by_dunder(tx: &Tracer<'_>, v: &Value) -> bool {
    let Value::Object(o) = v else {
        return false;
    };
    if o.kind != KIND_OBJECT {
        return false;
    }
    let ty = o.obj.bind(tx.py).get_type();
    plain_object_class(&ty)
        && (matches!(slot(&ty, "__hash__"), Slot::Python)
            || matches!(slot(&ty, "__eq__"), Slot::Python))
}

/// Standard-library modules whose classes' dunders run no user code (Enum and Flag members,
/// ABCs).
const STDLIB_PURE_MODULES: [&str; 5] = [
    "enum",
    "abc",
    "collections.abc",
    "_collections_abc",
    "typing",
];

/// Whether `v` is (or holds, through tuples, lists and dicts) a user object of a plain
/// Python class defining a Python dunder a builtin may call (`__repr__`, `__eq__`,
/// `__index__`, ...).
fn holds_user_code(tx: &Tracer<'_>, v: &Value) -> bool {
    holds_user_code_in(tx, v, 0)
}

fn holds_user_code_in(tx: &Tracer<'_>, v: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let inner = |x: &Value| holds_user_code_in(tx, x, depth + 1);
    match v {
        Value::Tuple(items) => items.iter().any(inner),
        Value::List(l) => l.items.borrow().iter().any(inner),
        Value::Dict(d) => d.entries.borrow().iter().any(|(_, x)| inner(x)),
        Value::Object(o) if o.kind == KIND_OBJECT => {
            let ty = o.obj.bind(tx.py).get_type();
            plain_object_class(&ty) && defines_python_dunder(&ty)
        }
        _ => false,
    }
}

fn defines_python_dunder(ty: &Bound<'_, PyType>) -> bool {
    let Ok(mro) = ty.getattr("__mro__") else {
        return true;
    };
    let Ok(iter) = mro.try_iter() else {
        return true;
    };
    for k in iter {
        let Ok(k) = k else { return true };
        // The standard library's own dunders (Enum's `__repr__`/`__hash__`, ...) are pure.
        let stdlib = k
            .getattr("__module__")
            .ok()
            .and_then(|m| m.extract::<String>().ok())
            .is_some_and(|m| STDLIB_PURE_MODULES.contains(&m.as_str()));
        if stdlib {
            continue;
        }
        let Ok(d) = k.getattr("__dict__") else {
            return true;
        };
        let Ok(items) = d.call_method0("items").and_then(|i| i.try_iter()) else {
            return true;
        };
        for item in items {
            let Ok((name, value)) = item.and_then(|i| i.extract::<(String, Bound<'_, PyAny>)>())
            else {
                continue;
            };
            if name.starts_with("__")
                && name.ends_with("__")
                && !INERT_DUNDERS.contains(&name.as_str())
                && value
                    .get_type()
                    .name()
                    .is_ok_and(|n| n == "function" || n == "staticmethod" || n == "classmethod")
            {
                return true;
            }
        }
    }
    false
}

/// Before a builtin `f` is folded on constant arguments: a user object among them would
/// have its Python dunders run now, once, instead of on every call. `repr`, `str`, `abs`,
/// `hash`, `format` and `range` of one user object trace the dunder they call; any other
/// builtin breaks. None: nothing of the user's runs, fold.
pub fn before_fold<'py>(
    tx: &mut Tracer<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    if !(args.iter().any(|a| holds_user_code(tx, a))
        || kwargs.iter().any(|(_, a)| holds_user_code(tx, a)))
    {
        return Ok(None);
    }
    let py = tx.py;
    let name = f
        .getattr("__name__")
        .and_then(|n| n.extract::<String>())
        .unwrap_or_default();
    let module = f
        .getattr("__module__")
        .ok()
        .and_then(|m| m.extract::<String>().ok())
        .unwrap_or_else(|| "builtins".into());
    let is_builtins = module == "builtins";
    // No dunder of the object's class runs.
    if is_builtins && matches!(name.as_str(), "id" | "callable" | "type" | "isinstance") {
        return Ok(None);
    }
    if is_builtins && kwargs.is_empty() {
        if let [v @ Value::Object(o)] = args {
            let ty = o.obj.bind(py).get_type();
            let traced = |tx: &mut Tracer<'_>, dunder: &str, extra: Vec<Value>| {
                call_dunder(tx, v, dunder, extra).map(Some)
            };
            match name.as_str() {
                "repr" if matches!(slot(&ty, "__repr__"), Slot::Python) => {
                    return traced(tx, "__repr__", vec![]);
                }
                "str" => match (slot(&ty, "__str__"), slot(&ty, "__repr__")) {
                    (Slot::Python, _) => return traced(tx, "__str__", vec![]),
                    (Slot::ObjectDefault, Slot::Python) => return traced(tx, "__repr__", vec![]),
                    _ => {}
                },
                "abs" if matches!(slot(&ty, "__abs__"), Slot::Python) => {
                    return traced(tx, "__abs__", vec![]);
                }
                "hash" if matches!(slot(&ty, "__hash__"), Slot::Python) => {
                    return traced(tx, "__hash__", vec![]);
                }
                "range" if matches!(slot(&ty, "__index__"), Slot::Python) => {
                    let n = call_dunder(tx, v, "__index__", vec![])?;
                    let c = tx
                        .as_python_constant(&n)
                        .ok_or_else(|| Exit::brk("range() of an __index__ that is not constant"))?;
                    let r = f.call1((c,)).map_err(|e| tx.err(e))?;
                    return tx.realize(&r, None).map(Some);
                }
                _ => {}
            }
        }
        if let ([v @ Value::Object(_), spec], "format") = (args, name.as_str()) {
            return format_by_dunder(tx, v, Some(spec.clone()));
        }
    }
    Err(Exit::brk(format!(
        "{}() of a user object whose class defines Python dunders (they run on every call)",
        tx.describe(f)
    )))
}

/// `format(v, spec)` / an f-string field for a user object: its Python `__format__`, or
/// object's (`str(v)` for an empty spec) over its Python `__str__`/`__repr__`. None: no
/// Python dunder is involved.
pub fn format_by_dunder(
    tx: &mut Tracer<'_>,
    v: &Value,
    spec: Option<Value>,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Value::Object(o) = v else {
        return Ok(None);
    };
    if o.kind != KIND_OBJECT || !holds_user_code(tx, v) {
        return Ok(None);
    }
    let ty = o.obj.bind(py).get_type();
    let spec = spec.unwrap_or_else(|| Value::constant(py, ""));
    match slot(&ty, "__format__") {
        Slot::Python => call_dunder(tx, v, "__format__", vec![spec]).map(Some),
        Slot::ObjectDefault => {
            let empty = tx
                .as_python_constant(&spec)
                .and_then(|s| s.extract::<String>().ok())
                .is_some_and(|s| s.is_empty());
            if !empty {
                return Err(Exit::brk("format() of a user object with a non-empty spec"));
            }
            match (slot(&ty, "__str__"), slot(&ty, "__repr__")) {
                (Slot::Python, _) => call_dunder(tx, v, "__str__", vec![]).map(Some),
                (Slot::ObjectDefault, Slot::Python) => {
                    call_dunder(tx, v, "__repr__", vec![]).map(Some)
                }
                _ => Ok(None),
            }
        }
        _ => Err(Exit::brk("format() of a user object with a C __format__")),
    }
}

/// `-v`, `+v`, `~v` of a user object: its Python `__neg__`/`__pos__`/`__invert__` traced.
/// None: not a user object with Python dunders (the fold runs no user code).
pub fn unary(tx: &mut Tracer<'_>, name: &str, v: &Value) -> TResult<Option<Value>> {
    let Value::Object(o) = v else {
        return Ok(None);
    };
    if o.kind != KIND_OBJECT || !holds_user_code(tx, v) {
        return Ok(None);
    }
    let dunder = format!("__{name}__");
    match slot(&o.obj.bind(tx.py).get_type(), &dunder) {
        Slot::Python => call_dunder(tx, v, &dunder, vec![]).map(Some),
        Slot::Builtin(why) => Err(Exit::brk(why)),
        // Missing: eager's TypeError, raised by folding (no user code runs).
        Slot::Missing | Slot::ObjectDefault => Ok(None),
    }
}
