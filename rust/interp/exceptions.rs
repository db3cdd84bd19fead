//! Observed exceptions (DESIGN.md §3): exception objects created in the trace, `raise`,
//! unwinding through the 3.11 exception table, the handler instructions, and the errors
//! of interpreter-modelled operations that CPython raises with a known type and message.
//!
//! An exception is a `Value::Exception`: its class, `args`, cause, context and (for user
//! exception classes) instance attributes. `__traceback__` is always None. Anything the
//! model cannot reproduce exactly (keyword arguments to constructors, arbitrary attributes
//! on builtin exceptions, unmodelled exception types) breaks the graph instead.

use crate::ImportCached;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::kinds::*;
use super::output::{template_for, OutTemplate};
use super::tracer::Tracer;
use super::value::{ObjVal, SourceRef, Value};
use crate::guards::{Guard, Source};

pub struct ExcVal {
    pub cls: Py<PyAny>,
    pub cls_source: SourceRef,
    /// The builtin class the exception's layout comes from (`cls` itself for builtins).
    pub solid: Py<PyAny>,
    /// A user-defined class: instances take arbitrary attributes.
    pub user: bool,
    pub args: RefCell<Vec<Value>>,
    pub cause: RefCell<Option<Rc<ExcVal>>>,
    pub context: RefCell<Option<Rc<ExcVal>>>,
    pub suppress_context: Cell<bool>,
    /// Instance attributes (user classes; `name`/`obj` of an AttributeError).
    pub attrs: RefCell<Vec<(String, Value)>>,
    /// Set by `raise`: the unwinder sets `__context__` to the exception being handled.
    pub fresh: Cell<bool>,
    /// It has propagated through a traced frame: eager gives it a traceback, which the
    /// trace does not model.
    pub raised: Cell<bool>,
}

impl std::fmt::Debug for ExcVal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExcVal({})", self.cls)
    }
}

impl ExcVal {
    pub fn describe(&self, py: Python<'_>) -> String {
        let name = self
            .cls
            .bind(py)
            .getattr("__qualname__")
            .map(|n| n.to_string())
            .unwrap_or_default();
        let args: Vec<String> = self
            .args
            .borrow()
            .iter()
            .map(|a| match a {
                Value::Const(c) => c.bind(py).repr().map(|r| r.to_string()).unwrap_or_default(),
                other => format!("<{}>", other.type_name(py)),
            })
            .collect();
        format!("{name}({})", args.join(", "))
    }
}

struct Helpers {
    info: Py<PyAny>,
    is_builtin_init: Py<PyAny>,
    plain_store: Py<PyAny>,
    class_attr: Py<PyAny>,
    alloc: Py<PyAny>,
    fill: Py<PyAny>,
    foldable: Py<PyAny>,
    exc_info: Py<PyAny>,
    /// `sys.exception` (3.11+; 3.13's `contextlib.ExitStack.__exit__` calls it).
    exception: Py<PyAny>,
    builtins: Py<PyAny>,
}

static HELPERS: PyOnceLock<Helpers> = PyOnceLock::new();

fn helpers(py: Python<'_>) -> PyResult<&Helpers> {
    HELPERS.get_or_try_init(py, || {
        let m = py.import_cached("ferrodyn.variables.exceptions")?;
        let g = |n: &str| m.getattr(n).map(|o| o.unbind());
        Ok(Helpers {
            info: g("exception_class_info")?,
            is_builtin_init: g("is_builtin_init")?,
            plain_store: g("plain_store")?,
            class_attr: g("class_attr")?,
            alloc: g("alloc_exception")?,
            fill: g("fill_exception")?,
            foldable: g("FOLDABLE")?,
            exc_info: py.import_cached("sys")?.getattr("exc_info")?.unbind(),
            exception: py.import_cached("sys")?.getattr("exception")?.unbind(),
            builtins: py.import_cached("builtins")?.into_any().unbind(),
        })
    })
}

fn new_exc(cls: Py<PyAny>, solid: Py<PyAny>, user: bool, args: Vec<Value>) -> Rc<ExcVal> {
    Rc::new(ExcVal {
        cls,
        cls_source: None,
        solid,
        user,
        args: RefCell::new(args),
        cause: RefCell::new(None),
        context: RefCell::new(None),
        suppress_context: Cell::new(false),
        attrs: RefCell::new(Vec::new()),
        fresh: Cell::new(false),
        raised: Cell::new(false),
    })
}

/// A new instance of the builtin exception class `name` (e.g. "TypeError").
pub fn builtin(py: Python<'_>, name: &str, args: Vec<Value>) -> PyResult<Rc<ExcVal>> {
    let cls = helpers(py)?.builtins.bind(py).getattr(name)?.unbind();
    Ok(new_exc(cls.clone_ref(py), cls, false, args))
}

/// `raise exc`: the exit that unwinds the trace's frames.
pub fn raise(exc: Rc<ExcVal>) -> Exit {
    exc.fresh.set(true);
    Exit::Observed {
        exc,
        at: Default::default(),
    }
}

/// Raise the builtin exception `name(msg)` (a message CPython produces in the same spot).
pub fn raise_builtin(py: Python<'_>, name: &str, msg: impl Into<String>) -> Exit {
    let msg = msg.into();
    match builtin(py, name, vec![Value::constant(py, msg.as_str())]) {
        Ok(e) => raise(e),
        Err(_) => Exit::brk(format!("{name}: {msg}")),
    }
}

/// An error raised by really running a pure operation on constants: an observed
/// exception when its type is modelled and its args are constants; else a graph break.
pub fn from_real_error(tx: &mut Tracer<'_>, err: PyErr, what: &str) -> Exit {
    let py = tx.py;
    let brk = |err: &PyErr| Exit::brk(format!("{what} raised {}", err.value(py)));
    let Ok(h) = helpers(py) else {
        return brk(&err);
    };
    let ty = err.get_type(py);
    if !h.foldable.bind(py).contains(&ty).unwrap_or(false) {
        return brk(&err);
    }
    let Ok(args) = err.value(py).getattr("args") else {
        return brk(&err);
    };
    let mut vals = Vec::new();
    for a in args.try_iter().into_iter().flatten() {
        match a {
            Ok(a) if tx.classify(&a).ok() == Some(KIND_CONST) => {
                vals.push(Value::Const(a.unbind()))
            }
            _ => return brk(&err),
        }
    }
    let ty = ty.into_any().unbind();
    raise(new_exc(ty.clone_ref(py), ty, false, vals))
}

fn exc_of(v: &Value) -> Option<&Rc<ExcVal>> {
    match v {
        Value::Exception(e) => Some(e),
        _ => None,
    }
}

fn is_exception_class(_py: Python<'_>, obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<pyo3::types::PyType>()
        .map(|t| {
            t.is_subclass_of::<pyo3::exceptions::PyBaseException>()
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Calls the exception model handles: exception constructors, `BaseException.__init__`,
/// `e.with_traceback(None)`, `sys.exc_info()` and `sys.exception()`. None: not an exception
/// call.
pub fn intercept_call(
    tx: &mut Tracer<'_>,
    callee: &Value,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    match callee {
        Value::Object(o) if o.kind == KIND_CLASS || o.kind == KIND_PURE => {
            if !is_exception_class(py, o.obj.bind(py)) {
                return Ok(None);
            }
            construct(tx, o, args.to_vec(), kwargs).map(Some)
        }
        Value::Object(o) => {
            let h = helpers(py).map_err(|e| tx.err(e))?;
            let obj = o.obj.bind(py);
            if obj.is(h.exc_info.bind(py)) && args.is_empty() && kwargs.is_empty() {
                return exc_info(tx).map(Some);
            }
            // `sys.exception()`: the exception being handled, or None.
            if obj.is(h.exception.bind(py)) && args.is_empty() && kwargs.is_empty() {
                return Ok(Some(match tx.exc_info.clone() {
                    Some(e @ Value::Exception(_)) => e,
                    _ => Value::none(py),
                }));
            }
            if let Some(made) = exception_new(tx, obj, args, kwargs)? {
                return Ok(Some(made));
            }
            let Some(Value::Exception(e)) = args.first() else {
                return Ok(None);
            };
            let builtin_init = h
                .is_builtin_init
                .bind(py)
                .call1((obj,))
                .and_then(|b| b.extract::<bool>())
                .unwrap_or(false);
            if !builtin_init {
                return Ok(None);
            }
            let owner = obj.getattr("__objclass__").map_err(|e| tx.err(e))?;
            if !e
                .cls
                .bind(py)
                .cast::<pyo3::types::PyType>()
                .map(|c| c.is_subclass(&owner).unwrap_or(false))
                .unwrap_or(false)
            {
                return Err(Exit::brk(
                    "BaseException.__init__ on an unrelated exception",
                ));
            }
            base_init(tx, e, &args[1..], kwargs).map(Some)
        }
        Value::BuiltinMethod(m) => {
            let Value::Exception(e) = &m.0 else {
                return Ok(None);
            };
            match (m.1.as_str(), args) {
                ("with_traceback", [tb]) if kwargs.is_empty() => {
                    if !matches!(tb, Value::Const(c) if c.bind(py).is_none()) {
                        return Err(Exit::brk("with_traceback() with a traceback object"));
                    }
                    Ok(Some(m.0.clone()))
                }
                ("__init__", _) => base_init(tx, e, args, kwargs).map(Some),
                (name, _) => Err(Exit::brk(format!(
                    "calling {name}() of an exception object"
                ))),
            }
        }
        _ => Ok(None),
    }
}

/// `E.__new__(cls, *args)` of a builtin exception type (a subclass's `super().__new__` or
/// `cls.__new__(cls, ...)`): a new exception of `cls` whose `args` are `args`. When `cls`
/// keeps a modelled builtin `__init__` (which sets the same `args`) that is what `cls(*args)`
/// makes; with its own `__init__`, which this skips, it breaks. None: not such a call.
fn exception_new(
    tx: &mut Tracer<'_>,
    f: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let Some(Value::Object(c)) = args.first() else {
        return Ok(None);
    };
    if c.kind != KIND_CLASS {
        return Ok(None);
    }
    let is_new = f
        .get_type()
        .name()
        .is_ok_and(|n| n == "builtin_function_or_method")
        && f.getattr("__name__")
            .is_ok_and(|n| n.eq("__new__").unwrap_or(false));
    if !is_new || !is_exception_class(py, c.obj.bind(py)) {
        return Ok(None);
    }
    let owner = f.getattr("__self__").map_err(|e| tx.err(e))?;
    if !is_exception_class(py, &owner) {
        return Ok(None);
    }
    let cls = c.obj.bind(py);
    let subclass = cls.cast::<pyo3::types::PyType>().is_ok_and(|t| {
        owner
            .cast::<pyo3::types::PyType>()
            .is_ok_and(|o| t.is_subclass(o).unwrap_or(false))
    });
    let h = helpers(py).map_err(|e| tx.err(e))?;
    let builtin_init = cls
        .getattr("__init__")
        .and_then(|i| h.is_builtin_init.bind(py).call1((i,)))
        .and_then(|b| b.extract::<bool>())
        .unwrap_or(false);
    if !subclass || !builtin_init || !kwargs.is_empty() {
        return Err(Exit::brk(format!(
            "{}.__new__ of an exception class with its own __init__ (or keyword arguments)",
            tx.describe(&owner)
        )));
    }
    construct(tx, c, args[1..].to_vec(), kwargs).map(Some)
}

/// `BaseException.__init__(e, *args)`: replaces `args`.
fn base_init(
    tx: &Tracer<'_>,
    e: &ExcVal,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    if !kwargs.is_empty() {
        return Err(Exit::brk("keyword arguments to an exception's __init__"));
    }
    *e.args.borrow_mut() = args.to_vec();
    Ok(Value::none(tx.py))
}

/// `cls(*args)` for an exception class.
fn construct(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    args: Vec<Value>,
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let py = tx.py;
    if !kwargs.is_empty() {
        return Err(Exit::brk("keyword arguments to an exception constructor"));
    }
    let h = helpers(py).map_err(|e| tx.err(e))?;
    let cls = o.obj.bind(py);
    let info = h.info.bind(py).call1((cls,)).map_err(|e| tx.err(e))?;
    let (solid, user, init): (Bound<'_, PyAny>, bool, Bound<'_, PyAny>) =
        info.extract().map_err(|e| tx.err(e))?;
    let mut exc = new_exc(cls.clone().unbind(), solid.unbind(), user, args.clone());
    if let Some(e) = Rc::get_mut(&mut exc) {
        e.cls_source = o.source.clone();
    }
    let v = Value::Exception(exc);
    if !user {
        return Ok(v);
    }
    // Which `__init__` runs depends on the class: guard it like other class attributes.
    let init_src = o.source.as_ref().map(|s| {
        Arc::new(Source::Attr {
            base: s.clone(),
            name: "__init__".into(),
        })
    });
    if init.is_none() {
        if let Some(s) = &init_src {
            let real = cls.getattr("__init__").map_err(|e| tx.err(e))?;
            tx.guard(s, Guard::IdMatch(real.unbind()));
        }
        return Ok(v);
    }
    let init_v = tx.realize(&init, init_src)?;
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(v.clone());
    all.extend(args);
    let r = crate::interp::families::call(tx, &init_v, all, Vec::new())?;
    if !matches!(&r, Value::Const(n) if n.bind(py).is_none()) {
        return Err(Exit::brk("TypeError: __init__() should return None"));
    }
    Ok(v)
}

/// `sys.exc_info()`: the exception being handled, if any.
fn exc_info(tx: &mut Tracer<'_>) -> TResult<Value> {
    let py = tx.py;
    Ok(match tx.exc_info.clone() {
        Some(Value::Exception(e)) => {
            let cls = tx.realize(e.cls.bind(py), None)?;
            // A raised exception has a traceback, which only exists at run time: a stand-in
            // that is not None and breaks the graph wherever it is used.
            let tb = if e.raised.get() {
                let obj = tx.hooks.pending_traceback.clone_ref(py);
                Value::Object(Rc::new(crate::interp::value::ObjVal {
                    obj,
                    kind: crate::interp::kinds::KIND_UNSUPPORTED,
                    source: None,
                }))
            } else {
                Value::none(py)
            };
            Value::new_tuple(vec![cls, Value::Exception(e), tb])
        }
        _ => Value::new_tuple(vec![Value::none(py), Value::none(py), Value::none(py)]),
    })
}

fn opt_exc(py: Python<'_>, e: &Option<Rc<ExcVal>>) -> Value {
    match e {
        Some(e) => Value::Exception(e.clone()),
        None => Value::none(py),
    }
}

/// `e.name`.
pub fn load_attr(tx: &mut Tracer<'_>, whole: &Value, e: &Rc<ExcVal>, name: &str) -> TResult<Value> {
    let py = tx.py;
    if let Some((_, v)) = e.attrs.borrow().iter().find(|(k, _)| k == name) {
        return Ok(v.clone());
    }
    let solid = e.solid.bind(py);
    let is_solid = |n: &str| {
        solid
            .getattr("__name__")
            .map(|s| s.to_string() == n)
            .unwrap_or(false)
    };
    match name {
        "args" => return Ok(Value::new_tuple(e.args.borrow().clone())),
        "__cause__" => return Ok(opt_exc(py, &e.cause.borrow())),
        "__context__" => return Ok(opt_exc(py, &e.context.borrow())),
        "__suppress_context__" => return Ok(Value::constant(py, e.suppress_context.get())),
        "__traceback__" if !e.raised.get() => return Ok(Value::none(py)),
        "__traceback__" => {
            return Err(Exit::brk(
                "the traceback of an exception raised in the compiled region",
            ))
        }
        "__class__" => return tx.realize(e.cls.bind(py), e.cls_source.clone()),
        "with_traceback" => return Ok(Value::BuiltinMethod(Rc::new((whole.clone(), name.into())))),
        "value" if is_solid("StopIteration") => {
            return Ok(e.args.borrow().first().cloned().unwrap_or(Value::none(py)))
        }
        "name" | "obj" if is_solid("AttributeError") => return Ok(Value::none(py)),
        _ => {}
    }
    let h = helpers(py).map_err(|e| tx.err(e))?;
    let (how, attr): (i64, Bound<'_, PyAny>) = h
        .class_attr
        .bind(py)
        .call1((e.cls.bind(py), name))
        .and_then(|r| r.extract())
        .map_err(|e| tx.err(e))?;
    let src = e.cls_source.as_ref().map(|s| {
        Arc::new(Source::Attr {
            base: s.clone(),
            name: name.to_string(),
        })
    });
    if how == 2 || src.is_none() {
        return Err(Exit::brk(format!(
            "attribute '{name}' of a {} exception object",
            e.describe(py)
        )));
    }
    let v = tx.realize(&attr, src)?;
    Ok(if how == 0 {
        Value::BoundMethod(Rc::new((whole.clone(), v)))
    } else {
        v
    })
}

/// `e.name = value` (None: `del e.name`).
pub fn store_attr(
    tx: &mut Tracer<'_>,
    e: &ExcVal,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    let py = tx.py;
    let as_exc = |v: &Value| -> Option<Option<Rc<ExcVal>>> {
        match v {
            Value::Exception(x) => Some(Some(x.clone())),
            Value::Const(c) if c.bind(py).is_none() => Some(None),
            _ => None,
        }
    };
    match (name, &value) {
        ("__traceback__", Some(Value::Const(c))) if c.bind(py).is_none() => {
            e.raised.set(false);
            return Ok(());
        }
        ("__cause__", Some(v)) => {
            if let Some(x) = as_exc(v) {
                *e.cause.borrow_mut() = x;
                e.suppress_context.set(true);
                return Ok(());
            }
        }
        ("__context__", Some(v)) => {
            if let Some(x) = as_exc(v) {
                *e.context.borrow_mut() = x;
                return Ok(());
            }
        }
        ("__suppress_context__", Some(Value::Const(c))) => {
            if let Ok(b) = c.bind(py).extract::<bool>() {
                e.suppress_context.set(b);
                return Ok(());
            }
        }
        _ => {}
    }
    let plain = e.user
        && helpers(py)
            .and_then(|h| h.plain_store.bind(py).call1((e.cls.bind(py), name)))
            .and_then(|b| b.extract::<bool>())
            .unwrap_or(false)
        && !name.starts_with("__");
    if !plain {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a {} exception object",
            e.describe(py)
        )));
    }
    let mut attrs = e.attrs.borrow_mut();
    let pos = attrs.iter().position(|(k, _)| k == name);
    match (value, pos) {
        (Some(v), Some(i)) => attrs[i].1 = v,
        (Some(v), None) => attrs.push((name.to_string(), v)),
        (None, Some(i)) => {
            attrs.remove(i);
        }
        (None, None) => {
            return Err(Exit::brk(format!(
                "deleting a missing attribute '{name}' of an exception object"
            )))
        }
    }
    Ok(())
}

/// `super().name` inside a method of a user exception class.
pub fn super_attr(
    tx: &mut Tracer<'_>,
    cls: &Py<PyAny>,
    this: &Value,
    e: &ExcVal,
    name: &str,
) -> TResult<Value> {
    let py = tx.py;
    let mro = e.cls.bind(py).getattr("__mro__").map_err(|e| tx.err(e))?;
    let mro: Vec<Bound<'_, PyAny>> = mro.extract().map_err(|e| tx.err(e))?;
    let start = mro
        .iter()
        .position(|k| k.is(cls.bind(py)))
        .ok_or_else(|| Exit::brk("super(): class not in the exception's MRO"))?;
    for (idx, k) in mro.iter().enumerate().skip(start + 1) {
        let d = k.getattr("__dict__").map_err(|e| tx.err(e))?;
        let Ok(attr) = d.get_item(name) else {
            continue;
        };
        if attr
            .get_type()
            .name()
            .map(|n| n == "function")
            .unwrap_or(false)
        {
            let src = e.cls_source.as_ref().map(|s| {
                Arc::new(Source::Attr {
                    base: Arc::new(Source::Index {
                        base: Arc::new(Source::Attr {
                            base: s.clone(),
                            name: "__mro__".into(),
                        }),
                        index: idx as isize,
                    }),
                    name: name.to_string(),
                })
            });
            if src.is_none() {
                return Err(Exit::brk("super() method of an unguarded exception class"));
            }
            let f = tx.realize(&attr, src)?;
            return Ok(Value::BoundMethod(Rc::new((this.clone(), f))));
        }
        let builtin_init = name == "__init__"
            && helpers(py)
                .and_then(|h| h.is_builtin_init.bind(py).call1((&attr,)))
                .and_then(|b| b.extract::<bool>())
                .unwrap_or(false);
        if builtin_init {
            return Ok(Value::BuiltinMethod(Rc::new((
                this.clone(),
                "__init__".into(),
            ))));
        }
        break;
    }
    Err(Exit::brk(format!("super().{name} of an exception object")))
}

/// `except T:` — whether the exception matches a class or a tuple of classes.
pub fn matches(tx: &mut Tracer<'_>, exc: &Value, pattern: &Value) -> TResult<bool> {
    let py = tx.py;
    let Some(e) = exc_of(exc) else {
        return Err(Exit::internal("CHECK_EXC_MATCH on a non-exception"));
    };
    let classes: Vec<Value> = match pattern {
        Value::Tuple(t) => t.to_vec(),
        other => vec![other.clone()],
    };
    for c in classes {
        let Value::Object(o) = &c else {
            return Err(Exit::brk(format!("`except` over a '{}'", c.type_name(py))));
        };
        let obj = o.obj.bind(py);
        if !is_exception_class(py, obj) {
            return Err(Exit::brk(
                "`except` over something that is not an exception class",
            ));
        }
        let ty = obj
            .cast::<pyo3::types::PyType>()
            .map_err(|e| tx.err(e.into()))?;
        let ecls = e
            .cls
            .bind(py)
            .cast::<pyo3::types::PyType>()
            .map_err(|e| tx.err(e.into()))?;
        if ecls.is_subclass(ty).map_err(|e| tx.err(e))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `RAISE_VARARGS argc`.
pub fn raise_varargs(tx: &mut Tracer<'_>, frame: &mut Frame, argc: usize) -> Exit {
    match raise_varargs_inner(tx, frame, argc) {
        Ok(e) | Err(e) => e,
    }
}

pub(crate) fn instantiate(tx: &mut Tracer<'_>, v: &Value) -> TResult<Option<Rc<ExcVal>>> {
    let py = tx.py;
    match v {
        Value::Exception(e) => Ok(Some(e.clone())),
        Value::Object(o) if is_exception_class(py, o.obj.bind(py)) => {
            match crate::interp::families::call(tx, v, Vec::new(), Vec::new())? {
                Value::Exception(e) => Ok(Some(e)),
                _ => Err(Exit::brk(
                    "exception class call did not return an exception",
                )),
            }
        }
        _ => Ok(None),
    }
}

fn raise_varargs_inner(tx: &mut Tracer<'_>, frame: &mut Frame, argc: usize) -> TResult<Exit> {
    let py = tx.py;
    let cause = (argc == 2).then(|| frame.pop());
    let exc = match argc {
        0 => {
            // Bare `raise`: re-raise the exception being handled, unchanged.
            return Ok(match tx.exc_info.clone() {
                Some(Value::Exception(e)) => Exit::Observed {
                    exc: e,
                    at: Default::default(),
                },
                _ => raise_builtin(py, "RuntimeError", "No active exception to reraise"),
            });
        }
        _ => frame.pop(),
    };
    let Some(e) = instantiate(tx, &exc)? else {
        return Err(Exit::brk(format!(
            "raising a '{}' (not a modelled exception)",
            exc.type_name(py)
        )));
    };
    if let Some(c) = cause {
        let c = match &c {
            Value::Const(n) if n.bind(py).is_none() => None,
            other => match instantiate(tx, other)? {
                Some(x) => Some(x),
                None if matches!(other, Value::Const(_)) => {
                    return Ok(raise_builtin(
                        py,
                        "TypeError",
                        "exception causes must derive from BaseException",
                    ))
                }
                None => return Err(Exit::brk("raise ... from a non-exception")),
            },
        };
        *e.cause.borrow_mut() = c;
        e.suppress_context.set(true);
    }
    Ok(raise(e))
}

/// On a fresh raise, chain the exception being handled as `__context__` (breaking any
/// cycle through the handled exception's own context chain, like CPython).
pub fn attach_context(tx: &Tracer<'_>, e: &Rc<ExcVal>) {
    if !e.fresh.replace(false) {
        return;
    }
    let Some(Value::Exception(h)) = &tx.exc_info else {
        return;
    };
    if Rc::ptr_eq(h, e) {
        return;
    }
    let mut o = h.clone();
    loop {
        let next = o.context.borrow().clone();
        match next {
            Some(n) if Rc::ptr_eq(&n, e) => {
                *o.context.borrow_mut() = None;
                break;
            }
            Some(n) => o = n,
            None => break,
        }
    }
    *e.context.borrow_mut() = Some(h.clone());
}

/// Jump to the handler covering the instruction that raised, if any: the stack is cut to
/// the handler's depth, then (lasti,) and the exception are pushed.
pub fn unwind(tx: &Tracer<'_>, frame: &mut Frame, e: &Rc<ExcVal>) -> TResult<bool> {
    let spec = frame.spec.clone();
    let Some(ins) = spec.decoded.instructions.get(frame.current) else {
        return Ok(false);
    };
    let Some(entry) = spec.decoded.handler_for(ins.offset) else {
        return Ok(false);
    };
    let target = spec
        .decoded
        .index_at(entry.target)
        .ok_or_else(|| Exit::internal("exception handler at a bad offset"))?;
    let depth = entry.depth as usize;
    if depth > frame.stack.len() {
        return Err(Exit::internal("exception handler depth past the stack"));
    }
    frame.stack.truncate(depth);
    if entry.lasti {
        frame
            .stack
            .push(Value::constant(tx.py, (ins.offset / 2) as i64));
    }
    frame.stack.push(Value::Exception(e.clone()));
    frame.ip = target;
    Ok(true)
}

/// A `StopIteration` leaving a generator's frame becomes a `RuntimeError` (PEP 479).
pub fn leaving_generator(py: Python<'_>, e: Rc<ExcVal>) -> Rc<ExcVal> {
    let is_stop = e
        .cls
        .bind(py)
        .cast::<pyo3::types::PyType>()
        .map(|t| {
            t.is_subclass_of::<pyo3::exceptions::PyStopIteration>()
                .unwrap_or(false)
        })
        .unwrap_or(false);
    if !is_stop {
        return e;
    }
    match builtin(
        py,
        "RuntimeError",
        vec![Value::constant(py, "generator raised StopIteration")],
    ) {
        Ok(r) => {
            *r.cause.borrow_mut() = Some(e.clone());
            *r.context.borrow_mut() = Some(e);
            r.suppress_context.set(true);
            r
        }
        Err(_) => e,
    }
}

/// The object-table parts for rebuilding an escaping exception (side_effects/table.rs):
/// `alloc_exception(cls)`, then `fill_exception(e, solid, args, attrs, cause, context,
/// suppress)`.
pub fn table_parts(
    tx: &mut Tracer<'_>,
    e: &ExcVal,
    outputs: &mut Vec<Py<PyAny>>,
    extra: &mut Vec<Arc<Source>>,
) -> TResult<crate::side_effects::table::Entry> {
    let py = tx.py;
    let h = helpers(py).map_err(|e| tx.err(e))?;
    let (alloc, fill) = (h.alloc.clone_ref(py), h.fill.clone_ref(py));
    let args: Vec<OutTemplate> = e
        .args
        .borrow()
        .clone()
        .iter()
        .map(|a| template_for(tx, a, outputs, extra))
        .collect::<TResult<_>>()?;
    let mut attrs = Vec::new();
    for (k, v) in e.attrs.borrow().clone() {
        attrs.push((
            pyo3::types::PyString::new(py, &k).into_any().unbind(),
            template_for(tx, &v, outputs, extra)?,
        ));
    }
    let cause = template_for(tx, &opt_exc(py, &e.cause.borrow().clone()), outputs, extra)?;
    let context = template_for(
        tx,
        &opt_exc(py, &e.context.borrow().clone()),
        outputs,
        extra,
    )?;
    let parts = vec![
        OutTemplate::Const(e.solid.clone_ref(py)),
        OutTemplate::Tuple(args),
        OutTemplate::Dict(attrs),
        cause,
        context,
        OutTemplate::Const(
            pyo3::types::PyBool::new(py, e.suppress_context.get())
                .to_owned()
                .into_any()
                .unbind(),
        ),
    ];
    Ok(crate::side_effects::table::Entry::Custom {
        alloc,
        arg: e.cls.clone_ref(py),
        fill,
        parts,
    })
}

/// The class of an exception value (`type(e)`).
pub fn class_of<'py>(py: Python<'py>, e: &ExcVal) -> Bound<'py, PyAny> {
    e.cls.bind(py).clone()
}

/// CPython's AttributeError for a missing attribute of a plain object: the message,
/// and `name`/`obj` when the miss was a read (a failed `del` leaves them None).
pub fn attribute_error(py: Python<'_>, obj: Option<&Value>, ty: &str, name: &str) -> Exit {
    let msg = format!("'{ty}' object has no attribute '{name}'");
    let Ok(e) = builtin(
        py,
        "AttributeError",
        vec![Value::constant(py, msg.as_str())],
    ) else {
        return Exit::brk(format!("{msg} (AttributeError)"));
    };
    if let Some(o) = obj {
        let mut attrs = e.attrs.borrow_mut();
        attrs.push(("name".into(), Value::constant(py, name)));
        attrs.push(("obj".into(), o.clone()));
    }
    raise(e)
}

/// Whether an exit is an AttributeError (observed, or a break that stands for one), for
/// `hasattr` and `getattr` with a default.
pub fn is_attribute_error(py: Python<'_>, e: &Exit) -> bool {
    match e {
        Exit::Observed { exc, .. } => exc
            .cls
            .bind(py)
            .cast::<pyo3::types::PyType>()
            .map(|t| {
                t.is_subclass_of::<pyo3::exceptions::PyAttributeError>()
                    .unwrap_or(false)
            })
            .unwrap_or(false),
        Exit::Break { reason, .. } => {
            reason.contains("AttributeError") || reason.contains("has no attribute")
        }
        _ => false,
    }
}

/// Raise the builtin exception `name()` with no arguments (e.g. an exhausted `next`).
pub fn raise_builtin_args(py: Python<'_>, name: &str) -> Exit {
    match builtin(py, name, Vec::new()) {
        Ok(e) => raise(e),
        Err(_) => Exit::brk(format!("{name} raised")),
    }
}

/// Whether two `sys.exc_info()` states hold the same exception (or none).
pub fn same_exc_info(a: &Option<Value>, b: &Option<Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Value::Exception(x)), Some(Value::Exception(y))) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// `KeyError(key)` raised in the trace (catchable there), as a dict lookup raises it.
pub fn key_error(py: Python<'_>, key: Value) -> Exit {
    match builtin(py, "KeyError", vec![key]) {
        Ok(e) => raise(e),
        Err(_) => Exit::brk("KeyError"),
    }
}
