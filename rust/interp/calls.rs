//! Calls: user functions are inlined (bound with the function-spec cache), torch ops become
//! graph nodes, builtins run in Rust, and anything else breaks the graph with a reason.

use std::rc::Rc;
use std::sync::Arc;

use crate::ImportCached;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::dispatch::run_frame;
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{FuncVal, ObjVal, Value};
use crate::guards::{DictKey, Source};

pub use super::grad_mode::{grad_enabled, set_grad_mode};

pub(crate) fn kwargs_dict<'py>(
    tx: &Tracer<'py>,
    kwargs: &[(String, Value)],
) -> TResult<Bound<'py, PyDict>> {
    let d = PyDict::new(tx.py);
    for (k, v) in kwargs {
        d.set_item(k, tx.to_graph_arg(v)?).map_err(|e| tx.err(e))?;
    }
    Ok(d)
}

/// Record `target(*args, **kwargs)` in the graph.
/// Calls what a wrapper object holds in its attribute `attr` (`inner`), read through the
/// wrapper's source, in place of the wrapper.
pub fn call_wrapped<'py>(
    tx: &mut Tracer<'py>,
    wrapper: &ObjVal,
    inner: &Bound<'py, PyAny>,
    attr: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let src = wrapper.source.clone().map(|s| {
        Arc::new(Source::Attr {
            base: s,
            name: attr.into(),
        })
    });
    let f = tx.realize(inner, src)?;
    crate::interp::families::call(tx, &f, args, kwargs)
}

pub fn graph_call<'py>(
    tx: &mut Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    if let Some(r) = super::tensor_subclass::graph_call(tx, target, args, kwargs)? {
        return Ok(r);
    }
    if let Some(r) = super::numpy_arrays::graph_call(tx, target, args, kwargs)? {
        return Ok(r);
    }
    let conv: Vec<_> = args
        .iter()
        .map(|a| tx.to_graph_arg(a))
        .collect::<TResult<_>>()?;
    let t = PyTuple::new(tx.py, conv).map_err(|e| tx.err(e))?;
    let kw = kwargs_dict(tx, kwargs)?;
    let r = tx.record("call_function", (target, t, kw))?;
    tx.from_graph_result(&r)
}

pub(crate) fn all_constants<'py>(
    tx: &Tracer<'py>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> Option<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let conv: Option<Vec<_>> = args.iter().map(|a| tx.as_python_constant(a)).collect();
    let t = PyTuple::new(tx.py, conv?).ok()?;
    let d = PyDict::new(tx.py);
    for (k, v) in kwargs {
        d.set_item(k, tx.as_python_constant(v)?).ok()?;
    }
    Some((t, d))
}

/// Number functions applied to symbolic sizes (dynamic shapes): `abs`, `round`, `pow`,
/// `math.floor/ceil/trunc/sqrt` and `operator.*` become graph nodes whose results stay
/// symbolic, as in torch.compile (folding them would specialise the size).
pub(crate) fn symbolic_call<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    if !kwargs.is_empty()
        || !args.iter().any(|a| tx.is_symbolic(a))
        || args.iter().any(|a| a.is_tensor() && !tx.is_symbolic(a))
    {
        return Ok(None);
    }
    let text = |attr: &str| {
        obj.getattr(attr)
            .and_then(|m| m.extract::<String>())
            .unwrap_or_default()
    };
    let (module, name) = (text("__module__"), text("__name__"));
    let target = match (module.as_str(), name.as_str()) {
        ("math", "sqrt") => py
            .import_cached("torch")
            .and_then(|t| t.getattr("sym_sqrt"))
            .map_err(|e| tx.err(e))?,
        ("math", "floor" | "ceil" | "trunc")
        | ("builtins", "abs" | "round" | "pow")
        | ("_operator", _) => obj.clone(),
        _ => return Ok(None),
    };
    graph_call(tx, &target, args, kwargs).map(Some)
}

/// `tuple.__new__(cls[, iterable])` with `cls` a Python subclass of tuple whose instances
/// keep no other state than their items: a namedtuple value (fields and all, for a
/// namedtuple class) or a field-less one, rebuilt by the same call if it escapes. None for
/// any other call.
pub(crate) fn tuple_new(
    tx: &mut Tracer<'_>,
    obj: &Bound<'_, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    // Cheap shape checks first: this runs for every call of a Python object.
    let cls = match args {
        [Value::Object(c)] | [Value::Object(c), _] if c.kind == KIND_CLASS => c,
        _ => return Ok(None),
    };
    let tuple_type = py.get_type::<PyTuple>();
    if !kwargs.is_empty() || !tuple_type.getattr("__new__").is_ok_and(|n| n.is(obj)) {
        return Ok(None);
    }
    let items = match args {
        [_, it] => super::iter::unpack(tx, it)?,
        _ => Vec::new(),
    };
    let c = cls.obj.bind(py);
    let Ok(t) = c.cast::<pyo3::types::PyType>() else {
        return Ok(None);
    };
    if t.is(&tuple_type) {
        return Ok(Some(Value::new_tuple(items)));
    }
    if !t.is_subclass(&tuple_type).unwrap_or(false) {
        return Ok(None);
    }
    let is_namedtuple = !tx
        .hooks
        .namedtuple_info
        .bind(py)
        .call1((c,))
        .map(|i| i.is_none())
        .unwrap_or(true);
    if is_namedtuple {
        return tx.named_tuple(c, items).map(Some);
    }
    Ok(Some(Value::NamedTuple(Rc::new(
        super::value::NamedTupleVal {
            cls: c.clone().unbind(),
            fields: Vec::new(),
            structseq: false,
            items: Rc::new(items),
            attrs: Default::default(),
        },
    ))))
}

/// Call a dunder method of an object's type (`__len__`, `__getitem__`, `__iter__`, ...)
/// by inlining it when it is Python code.
pub fn call_dunder(
    tx: &mut Tracer<'_>,
    recv: &Value,
    name: &str,
    args: Vec<Value>,
) -> TResult<Value> {
    let py = tx.py;
    let Value::Object(o) = recv else {
        return Err(Exit::brk(format!("{name} of a '{}'", recv.type_name(py))));
    };
    let ty = o.obj.bind(py).get_type();
    let f = ty
        .getattr(name)
        .map_err(|_| Exit::brk(format!("'{}' object has no {name}", recv.type_name(py))))?;
    if super::containers::is_sub_dict(o)
        && tx
            .hooks
            .dict_read_method
            .bind(py)
            .call1((&f, name))
            .and_then(|b| b.is_truthy())
            .unwrap_or(false)
    {
        return super::containers::sub_dict_read(tx, o, name, &args);
    }
    if let Some(r) = super::set_objects::dunder(tx, o, name, &args)? {
        return Ok(r);
    }
    if !f
        .get_type()
        .name()
        .map(|n| n == "function")
        .unwrap_or(false)
    {
        return Err(Exit::brk(format!(
            "{}.{name} is implemented in C",
            tx.describe(&ty.into_any())
        )));
    }
    // `type(obj).name`; for an object made in the trace, through the class it was made
    // from (so the function's cells and globals are guarded like any function's).
    let src = match &o.source {
        Some(s) => Some(Arc::new(Source::Attr {
            base: Arc::new(Source::TypeOf { base: s.clone() }),
            name: name.into(),
        })),
        None => super::attrs::class_member_source(tx, o, name),
    };
    let fv = tx.realize(&f, src)?;
    // A staticmethod on the class (`type(o).name` unwraps it) gets no receiver.
    if class_raw_attr(&ty, name).is_some_and(|raw| {
        raw.get_type()
            .name()
            .map(|n| n == "staticmethod")
            .unwrap_or(false)
    }) {
        return crate::interp::families::call(tx, &fv, args, Vec::new());
    }
    let mut all = vec![recv.clone()];
    all.extend(args);
    crate::interp::families::call(tx, &fv, all, Vec::new())
}

/// `name` as stored in the first class dict of `ty.__mro__` that has it (no descriptor
/// runs).
pub fn class_raw_attr<'py>(
    ty: &Bound<'py, pyo3::types::PyType>,
    name: &str,
) -> Option<Bound<'py, PyAny>> {
    let mro = ty.getattr("__mro__").ok()?;
    for k in mro.try_iter().ok()? {
        let d = k.ok()?.getattr("__dict__").ok()?;
        if let Ok(v) = d.get_item(name) {
            return Some(v);
        }
    }
    None
}

/// Inline a user function: bind arguments like CPython, then interpret its body.
pub fn inline_call(
    tx: &mut Tracer<'_>,
    f: &Rc<FuncVal>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let spec = f.spec.clone();
    let is_generator = spec.flags & crate::spec_cache::CO_GENERATOR != 0;
    if spec.is_generator_like() && !is_generator {
        return Err(Exit::brk(format!(
            "call to coroutine/async function {}",
            spec.qualname
        )));
    }
    if tx.depth >= tx.max_depth {
        return Err(Exit::brk("inlining depth limit reached (deep recursion?)"));
    }
    if spec.filename.contains("/_pytest/") || spec.filename.contains("\\_pytest\\") {
        // pytest's raises/warns checkers read real exceptions and tracebacks.
        return Err(Exit::brk(format!(
            "call to pytest's {} (pytest's code runs natively)",
            spec.qualname
        )));
    }
    let obj = f.obj.as_ref().map(|o| o.bind(py).clone());
    let defaults_obj = match (&f.defaults, &obj) {
        (None, Some(o)) => Some(o.getattr("__defaults__").map_err(|e| tx.err(e))?),
        _ => None,
    };
    let n_defaults = match (&f.defaults, &defaults_obj) {
        (Some(d), _) => d.len(),
        (None, Some(d)) if !d.is_none() => d.len().unwrap_or(0),
        _ => 0,
    };
    let kwdefaults_obj = match (&f.kwdefaults, &obj) {
        (None, Some(o)) => Some(o.getattr("__kwdefaults__").map_err(|e| tx.err(e))?),
        _ => None,
    };
    let fsrc = f.source.clone();
    let mut errors: Option<Exit> = None;
    let slots = {
        let tx_cell = std::cell::RefCell::new(&mut *tx);
        let bound = spec.bind(
            args,
            kwargs,
            n_defaults,
            |i| -> TResult<Value> {
                if let Some(d) = &f.defaults {
                    return Ok(d[i].clone());
                }
                let d = defaults_obj
                    .as_ref()
                    .ok_or_else(|| Exit::internal("no defaults"))?;
                let item = d.get_item(i).map_err(|e| Exit::internal(e.to_string()))?;
                let src = fsrc.as_ref().map(|s| {
                    Arc::new(Source::Index {
                        base: Arc::new(Source::Attr {
                            base: s.clone(),
                            name: "__defaults__".into(),
                        }),
                        index: i as isize,
                    })
                });
                tx_cell.borrow_mut().realize(&item, src)
            },
            |name| -> TResult<Option<Value>> {
                if let Some(kd) = &f.kwdefaults {
                    return Ok(kd.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
                }
                let Some(d) = kwdefaults_obj.as_ref().filter(|d| !d.is_none()) else {
                    return Ok(None);
                };
                let Ok(Some(item)) = d.cast::<PyDict>().map(|d| d.get_item(name).ok().flatten())
                else {
                    return Ok(None);
                };
                let src = fsrc.as_ref().map(|s| {
                    Arc::new(Source::DictItem {
                        base: Arc::new(Source::Attr {
                            base: s.clone(),
                            name: "__kwdefaults__".into(),
                        }),
                        key: DictKey::Str(name.to_string()),
                    })
                });
                tx_cell.borrow_mut().realize(&item, src).map(Some)
            },
            Value::new_tuple,
            |kw| {
                let items = kw
                    .into_iter()
                    .map(|(k, v)| (pyo3::types::PyString::new(py, &k).into_any().unbind(), v))
                    .collect();
                // The callee's own **kwargs dict, built by this call.
                Value::new_dict_from(items)
            },
            |msg| super::exceptions::raise_builtin(py, "TypeError", msg),
        );
        match bound {
            Ok(s) => Some(s),
            Err(e) => {
                errors = Some(e);
                None
            }
        }
    };
    if let Some(e) = errors {
        return Err(e);
    }
    let slots = slots.unwrap_or_default();
    let mut frame = Frame {
        spec: spec.clone(),
        locals: slots,
        pending: Vec::new(),
        pending_sources: Default::default(),
        stack: Vec::with_capacity(16),
        ip: 0,
        kw_names: None,
        globals: f.globals.clone_ref(py),
        globals_source: f.globals_source.clone(),
        closure: f.closure.clone(),
        current: 0,
        is_root: false,
        gen_exc: None,
    };
    frame.locals.resize(spec.localsplus.len(), None);
    if is_generator {
        // The body runs lazily, one `next` at a time (see iter.rs).
        let g = Rc::new(super::value::GenVal {
            frame: std::cell::RefCell::new(Some(Box::new(frame))),
            name: spec.qualname.clone(),
            drained: Default::default(),
        });
        tx.generators.push(g.clone());
        return Ok(Value::Generator(g));
    }
    tx.depth += 1;
    // Inlining recurses on the native stack: grow it on demand rather than overflow.
    let r = stacker::maybe_grow(256 * 1024, 8 * 1024 * 1024, || run_frame(tx, &mut frame));
    tx.depth -= 1;
    r
}

/// `P(a, b=..)` for a namedtuple class (fields bound like its generated __new__, with
/// defaults), or `S(iterable)` for a structseq.
pub(crate) fn construct_namedtuple<'py>(
    tx: &mut Tracer<'py>,
    cls: &Bound<'py, PyAny>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let info = tx
        .hooks
        .namedtuple_info
        .bind(py)
        .call1((cls,))
        .map_err(|e| tx.err(e))?;
    let (fields, defaults, structseq): (Vec<String>, Bound<'_, PyDict>, bool) =
        info.extract().map_err(|e| tx.err(e))?;
    if structseq {
        let [it] = args.as_slice() else {
            return Err(Exit::brk("structseq constructor takes one iterable"));
        };
        let items = super::iter::unpack(tx, it)?;
        return tx.named_tuple(cls, items);
    }
    if args.len() > fields.len() {
        return Err(Exit::brk("TypeError: too many arguments for namedtuple"));
    }
    let mut slots: Vec<Option<Value>> = vec![None; fields.len()];
    for (i, a) in args.into_iter().enumerate() {
        slots[i] = Some(a);
    }
    for (k, v) in kwargs {
        let i = fields
            .iter()
            .position(|f| *f == k)
            .ok_or_else(|| Exit::brk(format!("TypeError: unexpected field '{k}'")))?;
        if slots[i].is_some() {
            return Err(Exit::brk(format!(
                "TypeError: got multiple values for argument '{k}'"
            )));
        }
        slots[i] = Some(v);
    }
    let mut items = Vec::with_capacity(fields.len());
    for (i, s) in slots.into_iter().enumerate() {
        match s {
            Some(v) => items.push(v),
            None => match defaults.get_item(&fields[i]).map_err(|e| tx.err(e))? {
                Some(d) => items.push(tx.realize(&d, None)?),
                None => {
                    return Err(Exit::brk(format!(
                        "TypeError: missing field '{}'",
                        fields[i]
                    )))
                }
            },
        }
    }
    tx.named_tuple(cls, items)
}

pub(crate) fn is_weakref(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object.
    unsafe { pyo3::ffi::PyWeakref_CheckRef(obj.as_ptr()) != 0 }
}

/// `"object.__setattr__"` / `"object.__delattr__"` when `obj` is that slot wrapper.
pub(crate) fn object_store_slot(tx: &Tracer<'_>, obj: &Bound<'_, PyAny>) -> Option<&'static str> {
    let p = obj.as_ptr();
    if p == tx.hooks.object_setattr.as_ptr() {
        Some("object.__setattr__")
    } else if p == tx.hooks.object_delattr.as_ptr() {
        Some("object.__delattr__")
    } else {
        None
    }
}

/// `object.__setattr__(target, name, value)` / `object.__delattr__(target, name)` (`slot`
/// names which; `rest` are the arguments after the target): the plain store, past the
/// class's own `__setattr__`.
pub(crate) fn plain_store_call(
    tx: &mut Tracer<'_>,
    slot: &str,
    target: &Value,
    rest: &[Value],
) -> TResult<Value> {
    let py = tx.py;
    let (key, value) = match (slot, rest) {
        ("object.__setattr__", [k, v]) => (k, Some(v.clone())),
        ("object.__delattr__", [k]) => (k, None),
        _ => return Err(Exit::brk(format!("{slot}() with unexpected arguments"))),
    };
    let key: String = key
        .as_const(py)
        .and_then(|k| k.extract().ok())
        .ok_or_else(|| Exit::brk(format!("{slot} with a non-constant name")))?;
    crate::interp::families::python_object::store_attr_direct(tx, target, &key, value)?;
    Ok(Value::none(py))
}

/// `C.__subclasses__()` with type's own method on a class reached through a source.
pub(crate) fn subclasses_call(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Value>> {
    let py = tx.py;
    let Some(crate::guards::Source::Attr { base, name }) = o.source.as_deref() else {
        return Ok(None);
    };
    let obj = o.obj.bind(py);
    if name != "__subclasses__" {
        return Ok(None);
    }
    let Ok(cls) = obj.getattr("__self__") else {
        return Ok(None);
    };
    let Ok(cls) = cls.cast_into::<pyo3::types::PyType>() else {
        return Ok(None);
    };
    let stock = py
        .get_type::<pyo3::types::PyType>()
        .getattr("__subclasses__");
    let own = cls.get_type().getattr("__subclasses__");
    if !matches!((own, stock), (Ok(a), Ok(b)) if a.is(&b)) {
        return Ok(None);
    }
    let list = cls.call_method0("__subclasses__").map_err(|e| tx.err(e))?;
    let src = Arc::new(crate::guards::Source::Subclasses { base: base.clone() });
    Ok(Some(tx.realize(&list, Some(src))?))
}

/// The name of `f` when it is one of dict's own methods that `containers::sub_dict_read`
/// models (`dict.__getitem__`, `dict.get`, `dict.__setitem__`, ...), taken off `dict`
/// itself (not a subclass's override).
pub(crate) fn dict_own_method_name(tx: &Tracer<'_>, f: &Bound<'_, PyAny>) -> Option<String> {
    use super::containers::{DICT_READS, DICT_WRITES};
    let py = tx.py;
    let name: String = f.getattr("__name__").ok()?.extract().ok()?;
    if !DICT_READS.contains(&name.as_str()) && !DICT_WRITES.contains(&name.as_str()) {
        return None;
    }
    let own = py.get_type::<PyDict>().getattr(name.as_str()).ok()?;
    own.is(f).then_some(name)
}
