//! Calls: user functions are inlined (bound with the function-spec cache), torch ops become
//! graph nodes, builtins run in Rust, and anything else breaks the graph with a reason.

use std::rc::Rc;
use std::sync::Arc;

use crate::ImportCached;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::builtins::call_builtin;
use super::containers::call_container_method;
use super::dispatch::run_frame;
use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{FuncVal, ObjVal, Value};
use crate::guards::{DictKey, Source};

pub use super::grad_mode::{grad_enabled, set_grad_mode};

pub fn call_value(
    tx: &mut Tracer<'_>,
    callee: &Value,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    if let Some(v) = super::exceptions::intercept_call(tx, callee, &args, &kwargs)? {
        return Ok(v);
    }
    match callee {
        Value::Function(f) => {
            let rf = super::stdlib::r(tx)?;
            if f.obj.as_ref().is_some_and(|o| o.is(&rf.signature)) {
                return super::signature::signature_call(tx, &args, &kwargs);
            }
            if kwargs.is_empty() && f.obj.as_ref().is_some_and(|o| o.is(&rf.environ_getitem)) {
                if let Some(v) = super::environ::getitem(tx, &args)? {
                    return Ok(v);
                }
            }
            // A library Python function with a polyfill (functools.update_wrapper).
            if let Some(o) = &f.obj {
                let pf = tx
                    .hooks
                    .polyfills
                    .bind(py)
                    .get_item(o.bind(py))
                    .ok()
                    .flatten();
                if let Some(pf) = pf {
                    let pf = tx.realize(&pf, None)?;
                    return call_value(tx, &pf, args, kwargs);
                }
            }
            inline_call(tx, f, args, kwargs)
        }
        Value::BoundMethod(m) => {
            let mut all = Vec::with_capacity(args.len() + 1);
            all.push(m.0.clone());
            all.extend(args);
            call_value(tx, &m.1, all, kwargs)
        }
        Value::BuiltinMethod(m) => {
            let (recv, name) = (&m.0, m.1.as_str());
            if let Value::Tensor(var) = recv {
                let mut conv = vec![var.bind(py).clone()];
                for a in &args {
                    conv.push(tx.to_graph_arg(a)?);
                }
                let kw = kwargs_dict(tx, &kwargs)?;
                let t = PyTuple::new(py, conv).map_err(|e| tx.err(e))?;
                tx.graph_calls += 1;
                let r = tx
                    .gb
                    .call_method1("call_method", (name, t, kw))
                    .map_err(|e| tx.err(e))?;
                return tx.from_graph_result(&r);
            }
            // `super().__init__()` reaching `object.__init__`: nothing to do, no arguments.
            if let (Value::Object(_), "object.__init__") = (recv, name) {
                if !args.is_empty() || !kwargs.is_empty() {
                    return Err(Exit::brk("object.__init__() with arguments"));
                }
                return Ok(Value::none(py));
            }
            // `super().__init__(...)` reaching list's/dict's own: the object's contents.
            if let (Value::Object(o), "container.__init__") = (recv, name) {
                return super::container_objects::init_call(tx, o, &args, &kwargs);
            }
            // object's `__eq__`/`__ne__` called explicitly on a plain object: identity, else
            // NotImplemented (the reflected operand decides).
            if let (Value::Object(_), "object.__eq__" | "object.__ne__", [other], true) =
                (recv, name, args.as_slice(), kwargs.is_empty())
            {
                let same = super::ops::is_same(tx, recv, other)?;
                return Ok(match (same, name) {
                    (true, "object.__eq__") => Value::constant(py, true),
                    (true, _) => Value::constant(py, false),
                    _ => Value::Const(py.NotImplemented()),
                });
            }
            // `super().__setattr__(name, value)` / `super().__delattr__(name)` inside a
            // class's own method: the plain store.
            if let (Value::Object(_), "object.__setattr__" | "object.__delattr__", true) =
                (recv, name, kwargs.is_empty())
            {
                return plain_store_call(tx, name, recv, &args);
            }
            // dict's own read methods on a dict subclass (`registry.get(k)`,
            // `output.keys()`, `super().get(k)`).
            if let Value::Object(o) = recv {
                if super::containers::is_sub_dict(o) && kwargs.is_empty() {
                    return super::containers::sub_dict_read(tx, o, name, &args);
                }
                if super::containers::is_sub_dict(o) && name == "update" && args.len() <= 1 {
                    // `d.update(other, k=v)`: `other` first, then the keywords.
                    if !args.is_empty() {
                        super::containers::sub_dict_read(tx, o, name, &args)?;
                    }
                    let kw = Value::kwargs_dict(py, kwargs);
                    return super::containers::sub_dict_read(tx, o, name, &[kw]);
                }
            }
            // `super().__getattribute__(name)`: the generic lookup.
            if let (Value::Object(_), "__getattribute__", [key], true) =
                (recv, name, args.as_slice(), kwargs.is_empty())
            {
                let key: String = key
                    .as_const(py)
                    .and_then(|k| k.extract().ok())
                    .ok_or_else(|| Exit::brk("__getattribute__ with a non-constant name"))?;
                return super::attrs::generic_getattr(tx, recv, &key);
            }
            if let Value::Generator(g) = recv {
                if !kwargs.is_empty() {
                    return Err(Exit::brk("keyword arguments to a generator method"));
                }
                return match (name, args.as_slice()) {
                    ("send", [v]) => super::iter::generator_send(tx, g, v.clone()),
                    ("__next__", []) => super::iter::generator_send(tx, g, Value::none(py)),
                    ("close", []) => super::iter::generator_close(tx, g),
                    ("throw", [e]) | ("throw", [e, _]) | ("throw", [e, _, _]) => {
                        let exc = match args.get(1) {
                            // throw(type, value): the class called with the value (or the
                            // value itself when it is already an instance).
                            Some(Value::Exception(v)) => v.clone(),
                            Some(v) if !matches!(v, Value::Const(c) if c.bind(py).is_none()) => {
                                match call_value(tx, e, vec![v.clone()], Vec::new())? {
                                    Value::Exception(x) => x,
                                    _ => return Err(Exit::brk("throw() with a non-exception")),
                                }
                            }
                            _ => super::exceptions::instantiate(tx, e)?
                                .ok_or_else(|| Exit::brk("throw() with a non-exception"))?,
                        };
                        super::iter::generator_throw(tx, g, exc)
                    }
                    _ => Err(Exit::brk(format!("generator.{name}() arguments"))),
                };
            }
            if let (Value::GradMode(prev), "__exit__") = (recv, name) {
                set_grad_mode(tx, *prev)?;
                return Ok(Value::none(py));
            }
            call_container_method(tx, recv, name, args, kwargs)
        }
        Value::Object(o) => call_object(tx, callee, o, args, kwargs),
        Value::Std(s) => super::stdlib::call_std(tx, s, args, kwargs),
        Value::Const(c) => {
            // Callable constants do not exist among the constant types; report clearly.
            Err(Exit::brk(format!(
                "'{}' object is not callable",
                c.bind(py)
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )))
        }
        other => Err(Exit::brk(format!("call to a '{}'", other.type_name(py)))),
    }
}

fn kwargs_dict<'py>(tx: &Tracer<'py>, kwargs: &[(String, Value)]) -> TResult<Bound<'py, PyDict>> {
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
    call_value(tx, &f, args, kwargs)
}

pub fn graph_call<'py>(
    tx: &mut Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Value> {
    let conv: Vec<_> = args
        .iter()
        .map(|a| tx.to_graph_arg(a))
        .collect::<TResult<_>>()?;
    let t = PyTuple::new(tx.py, conv).map_err(|e| tx.err(e))?;
    let kw = kwargs_dict(tx, kwargs)?;
    tx.graph_calls += 1;
    let r = tx
        .gb
        .call_method1("call_function", (target, t, kw))
        .map_err(|e| tx.err(e))?;
    tx.from_graph_result(&r)
}

fn all_constants<'py>(
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
fn symbolic_call<'py>(
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

fn call_object(
    tx: &mut Tracer<'_>,
    whole: &Value,
    o: &ObjVal,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let obj = o.obj.bind(py).clone();
    if o.kind == KIND_CLASS {
        if let Some(v) = super::model_output::construct(tx, &obj, &args, &kwargs)? {
            return Ok(v);
        }
        if is_typed_dict(&obj) {
            // Calling a TypedDict class makes a plain dict (one with optional keys breaks,
            // as in torch.compile).
            if obj
                .getattr("__optional_keys__")
                .and_then(|k| k.len())
                .is_ok_and(|n| n > 0)
            {
                return Err(Exit::brk(
                    "constructing a TypedDict with optional keys (torch.compile breaks too)",
                ));
            }
            let dict = tx.realize(super::stdlib::r(tx)?.dict.bind(py), None)?;
            return call_value(tx, &dict, args, kwargs);
        }
    }
    if matches!(o.kind, KIND_PURE | KIND_OPERATOR) {
        if let Some(v) = symbolic_call(tx, &obj, &args, &kwargs)? {
            return Ok(v);
        }
    }
    // `C.__subclasses__()`: read now, and again by the guards on every call (a subclass
    // defined later recompiles).
    if args.is_empty() && kwargs.is_empty() {
        if let Some(v) = subclasses_call(tx, o)? {
            return Ok(v);
        }
    }
    // `object.__getattribute__(obj, name)` (inside a class's own `__getattribute__`): the
    // generic lookup, which sees pending stores.
    if kwargs.is_empty() {
        if let [target @ Value::Object(_), key] = args.as_slice() {
            if obj.is(tx.hooks.object_getattribute.bind(py)) {
                let name: String = key
                    .as_const(py)
                    .and_then(|k| k.extract().ok())
                    .ok_or_else(|| Exit::brk("object.__getattribute__ with a non-constant name"))?;
                return super::attrs::generic_getattr(tx, target, &name);
            }
        }
    }
    // `tuple.__new__(cls, items)` for a tuple subclass (a user `__new__`'s
    // `super().__new__(cls, (a, b))`): a tuple value of that class.
    if let Some(v) = tuple_new(tx, &obj, &args, &kwargs)? {
        return Ok(v);
    }
    // `object.__new__(cls)` (in copyreg.__newobj__ or a user `__new__`): a new, empty object.
    if obj.is(tx.hooks.object_new.bind(py)) && kwargs.is_empty() {
        if let [Value::Object(c)] = args.as_slice() {
            if c.kind == KIND_CLASS {
                return crate::side_effects::new_objects::allocate(tx, c, true);
            }
        }
    }
    // `list.__new__(cls)` / `dict.__new__(cls)` for a plain list/dict subclass.
    if let Some(v) = super::container_objects::builtin_new(tx, &obj, &args, &kwargs)? {
        return Ok(v);
    }
    // A C function or type with a Python polyfill (itertools, functools.reduce): trace that.
    let polyfill = obj
        .hash()
        .ok()
        .and_then(|_| tx.hooks.polyfills.bind(py).get_item(&obj).ok().flatten());
    if let Some(pf) = polyfill {
        let f = tx.realize(&pf, None)?;
        return call_value(tx, &f, args, kwargs);
    }
    // A `functools.lru_cache` wrapper: trace the wrapped function, ignoring the cache (as
    // torch.compile does; a warning says so once).
    let attr_src = |base: &crate::interp::value::SourceRef, name: &str| {
        base.as_ref().map(|s| {
            std::sync::Arc::new(crate::guards::Source::Attr {
                base: s.clone(),
                name: name.into(),
            })
        })
    };
    let lru = tx.hooks.lru_cache_wrapper.bind(py);
    if obj.get_type().is(lru) {
        let wrapped = obj.getattr("__wrapped__").map_err(|e| tx.err(e))?;
        let _ = tx.hooks.warn_lru_cache.bind(py).call1((&obj,));
        let f = tx.realize(&wrapped, attr_src(&o.source, "__wrapped__"))?;
        return call_value(tx, &f, args, kwargs);
    }
    // The same, bound to an instance (an lru_cache-decorated method).
    if obj.get_type().is(tx
        .hooks
        .types
        .bind(py)
        .getattr("MethodType")
        .map_err(|e| tx.err(e))?)
    {
        let func = obj.getattr("__func__").map_err(|e| tx.err(e))?;
        if func.get_type().is(lru) {
            let wrapped = func.getattr("__wrapped__").map_err(|e| tx.err(e))?;
            let this = obj.getattr("__self__").map_err(|e| tx.err(e))?;
            let _ = tx.hooks.warn_lru_cache.bind(py).call1((&func,));
            let f = tx.realize(
                &wrapped,
                attr_src(&attr_src(&o.source, "__func__"), "__wrapped__"),
            )?;
            let this = tx.realize(&this, attr_src(&o.source, "__self__"))?;
            let mut all = Vec::with_capacity(args.len() + 1);
            all.push(this);
            all.extend(args);
            return call_value(tx, &f, all, kwargs);
        }
    }
    if let Some(v) = super::stdlib::call_stdlib(tx, &obj, whole, &args, &kwargs)? {
        return Ok(v);
    }
    if let Some(v) = call_builtin(tx, &obj, &args, &kwargs)? {
        return Ok(v);
    }
    if let Some(v) = super::grad_mode::grad_mode_ctor(tx, &obj, &args, &kwargs)? {
        return Ok(v);
    }
    match o.kind {
        KIND_TORCH_OP => graph_call(tx, &obj, &args, &kwargs),
        KIND_OPERATOR if tx.as_python_constant_all(&args).is_none() => {
            if let Some(v) = super::ops::operator_on_values(tx, &obj, &args)? {
                return Ok(v);
            }
            if args.iter().any(|a| a.is_tensor()) {
                return graph_call(tx, &obj, &args, &kwargs);
            }
            Err(Exit::brk(format!(
                "call to {} with non-constant arguments",
                tx.describe(&obj)
            )))
        }
        KIND_OPERATOR | KIND_PURE => match all_constants(tx, &args, &kwargs) {
            Some((a, k)) => match obj.call(a, Some(&k)) {
                Ok(r) => tx.realize(&r, None),
                Err(e) => {
                    let what = tx.describe(&obj);
                    Err(super::exceptions::from_real_error(tx, e, &what))
                }
            },
            None => {
                if args.iter().any(|a| a.is_tensor()) && o.kind == KIND_PURE {
                    // e.g. abs(tensor), min on tensors: the graph can compute these.
                    if let Ok(name) = obj.getattr("__name__").and_then(|n| n.extract::<String>()) {
                        if matches!(name.as_str(), "abs" | "pow" | "round") {
                            return graph_call(tx, &obj, &args, &kwargs);
                        }
                    }
                }
                Err(Exit::brk(format!(
                    "call to {} with non-constant arguments",
                    tx.describe(&obj)
                )))
            }
        },
        KIND_NN_MODULE => super::module_call::call_module(tx, whole, o, args, kwargs),
        KIND_MARKER => super::markers::call_marker(tx, o, args, kwargs),
        KIND_OBJECT if obj.is_instance_of::<crate::runtime::CompiledCode>() => {
            // A function compiled with ferrodyn called inside a trace: inline the original.
            let inner = obj.getattr("fn").map_err(|e| tx.err(e))?;
            call_wrapped(tx, o, &inner, "fn", args, kwargs)
        }
        KIND_OBJECT if args.is_empty() && kwargs.is_empty() && is_weakref(&obj) => {
            // Dereferencing a weak reference: the referent, guarded through `ref()`.
            let referent = obj.call0().map_err(|e| tx.err(e))?;
            let src = o
                .source
                .clone()
                .map(|s| Arc::new(Source::WeakrefDeref { base: s }));
            tx.realize(&referent, src)
        }
        KIND_OBJECT if kwargs.is_empty() && object_store_slot(tx, &obj).is_some() => {
            // `object.__setattr__(self, name, value)` / `object.__delattr__(self, name)`.
            match (object_store_slot(tx, &obj), args.split_first()) {
                (Some(slot), Some((target, rest))) => plain_store_call(tx, slot, target, rest),
                _ => Err(Exit::brk("object.__setattr__/__delattr__ without a target")),
            }
        }
        // `dict.__getitem__(d, k)`, `dict.get(d, k)`, `dict.__setitem__(d, k, v)`, ... on a
        // dict subclass object: dict's own method on its contents (the subclass's
        // overrides do not run).
        KIND_OBJECT
            if kwargs.is_empty()
                && matches!(args.first(), Some(Value::Object(r)) if super::containers::is_sub_dict(r))
                && dict_own_method_name(tx, &obj).is_some() =>
        {
            let name = dict_own_method_name(tx, &obj).unwrap_or_default();
            match args.split_first() {
                Some((Value::Object(r), rest)) => {
                    super::containers::sub_dict_read(tx, r, &name, rest)
                }
                _ => Err(Exit::internal("dict method without a receiver")),
            }
        }
        KIND_OBJECT => {
            let call = obj.get_type().getattr("__call__").ok();
            let is_py = call
                .as_ref()
                .map(|c| {
                    c.get_type()
                        .name()
                        .map(|n| n == "function")
                        .unwrap_or(false)
                })
                .unwrap_or(false);
            if is_py {
                call_dunder(tx, whole, "__call__", [args, vec![]].concat()).and_then(|v| {
                    if kwargs.is_empty() {
                        Ok(v)
                    } else {
                        Err(Exit::brk("keyword arguments to __call__"))
                    }
                })
            } else {
                Err(Exit::brk(format!(
                    "call to non-traceable object {}",
                    tx.describe(&obj)
                )))
            }
        }
        KIND_CLASS
            if !tx
                .hooks
                .namedtuple_info
                .bind(py)
                .call1((&obj,))
                .map(|i| i.is_none())
                .unwrap_or(true) =>
        {
            construct_namedtuple(tx, &obj, args, kwargs)
                .map(Some)?
                .ok_or_else(|| Exit::internal("namedtuple"))
        }
        KIND_CLASS => crate::side_effects::new_objects::construct(tx, whole, o, args, kwargs),
        _ => Err(Exit::brk(format!(
            "call to non-traceable function {}",
            tx.describe(&obj)
        ))),
    }
}

/// `tuple.__new__(cls[, iterable])` with `cls` a Python subclass of tuple whose instances
/// keep no other state than their items: a namedtuple value (fields and all, for a
/// namedtuple class) or a field-less one, rebuilt by the same call if it escapes. None for
/// any other call.
fn tuple_new(
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

/// A `typing.TypedDict` (or typing_extensions') class: its metaclass is `_TypedDictMeta`.
fn is_typed_dict(cls: &Bound<'_, PyAny>) -> bool {
    let meta = cls.get_type();
    !meta.is(cls.py().get_type::<pyo3::types::PyType>())
        && meta.name().is_ok_and(|n| n == "_TypedDictMeta")
        && meta
            .module()
            .is_ok_and(|m| m == "typing" || m == "typing_extensions")
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
    let src = o.source.as_ref().map(|s| {
        Arc::new(Source::Attr {
            base: Arc::new(Source::TypeOf { base: s.clone() }),
            name: name.into(),
        })
    });
    let fv = tx.realize(&f, src)?;
    // A staticmethod on the class (`type(o).name` unwraps it) gets no receiver.
    if class_raw_attr(&ty, name).is_some_and(|raw| {
        raw.get_type()
            .name()
            .map(|n| n == "staticmethod")
            .unwrap_or(false)
    }) {
        return call_value(tx, &fv, args, Vec::new());
    }
    let mut all = vec![recv.clone()];
    all.extend(args);
    call_value(tx, &fv, all, Vec::new())
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
fn construct_namedtuple<'py>(
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

fn is_weakref(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object.
    unsafe { pyo3::ffi::PyWeakref_CheckRef(obj.as_ptr()) != 0 }
}

/// `"object.__setattr__"` / `"object.__delattr__"` when `obj` is that slot wrapper.
fn object_store_slot(tx: &Tracer<'_>, obj: &Bound<'_, PyAny>) -> Option<&'static str> {
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
fn plain_store_call(
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
    crate::side_effects::mutate::store_attr_direct(tx, target, &key, value)?;
    Ok(Value::none(py))
}

/// `C.__subclasses__()` with type's own method on a class reached through a source.
fn subclasses_call(tx: &mut Tracer<'_>, o: &ObjVal) -> TResult<Option<Value>> {
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
fn dict_own_method_name(tx: &Tracer<'_>, f: &Bound<'_, PyAny>) -> Option<String> {
    use super::containers::{DICT_READS, DICT_WRITES};
    let py = tx.py;
    let name: String = f.getattr("__name__").ok()?.extract().ok()?;
    if !DICT_READS.contains(&name.as_str()) && !DICT_WRITES.contains(&name.as_str()) {
        return None;
    }
    let own = py.get_type::<PyDict>().getattr(name.as_str()).ok()?;
    own.is(f).then_some(name)
}
