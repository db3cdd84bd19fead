//! What every Python object from the program shares, whatever its family (user objects,
//! classes, modules, nn.Modules, builtin and torch functions, markers): CPython's
//! attribute lookup with pending stores seen first, stores through the side-effect store,
//! the checks every call makes before the family's own (polyfills, `lru_cache`, stdlib
//! models, builtins), the methods of `object` and of dict/list bases called explicitly,
//! and truth value by `__bool__`/`__len__`.
//!
//! `python_object_verbs!` gives a family these shared verbs; a family overrides one by
//! leaving it out of the list and writing its own.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::{Args, Kwargs};
use crate::guards::{Guard, Source};
use crate::interp::calls::call_dunder;
use crate::interp::exit::{Exit, TResult};
use crate::interp::kinds::*;
use crate::interp::tracer::Tracer;
use crate::interp::value::{ObjVal, SourceRef, Value};
use crate::side_effects::store::ptr_of;

/// The object of a value of an object family.
pub fn obj(v: &Value) -> TResult<&Rc<ObjVal>> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(Exit::internal("object family on another value")),
    }
}

/// Expands to the shared verbs named in the list, inside `impl Family for ...`.
macro_rules! python_object_verbs {
    ($($verb:ident),* $(,)?) => { $(python_object_verbs!(@one $verb);)* };
    (@one getattr) => {
        fn getattr(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            name: &str,
        ) -> crate::interp::exit::TResult<crate::interp::value::Value> {
            super::python_object::getattr(tx, v, name)
        }
    };
    (@one setattr) => {
        fn setattr(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            name: &str,
            value: Option<crate::interp::value::Value>,
        ) -> crate::interp::exit::TResult<()> {
            super::python_object::store_object_attr(tx, v, name, value, false)
        }
    };
    (@one call_method) => {
        fn call_method(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            name: &str,
            args: super::Args,
            kwargs: super::Kwargs,
        ) -> crate::interp::exit::TResult<crate::interp::value::Value> {
            super::python_object::call_method(tx, v, name, args, kwargs)
        }
    };
    (@one call) => {
        /// The shared call checks, and nothing more: anything else is not traceable.
        fn call(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            args: super::Args,
            kwargs: super::Kwargs,
        ) -> crate::interp::exit::TResult<crate::interp::value::Value> {
            super::python_object::call_or_break(tx, v, args, kwargs)
        }
    };
    (@one truthy) => {
        fn truthy(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
        ) -> crate::interp::exit::TResult<bool> {
            super::python_object::truthy(tx, v)
        }
    };
    (@one python_type) => {
        fn python_type<'py>(
            &self,
            tx: &crate::interp::tracer::Tracer<'py>,
            v: &crate::interp::value::Value,
        ) -> crate::interp::exit::TResult<pyo3::Bound<'py, pyo3::PyAny>> {
            use pyo3::prelude::*;
            Ok(super::python_object::obj(v)?.obj.bind(tx.py).get_type().into_any())
        }
    };
    (@one reconstruct) => {
        fn reconstruct(
            &self,
            tx: &mut crate::interp::tracer::Tracer<'_>,
            v: &crate::interp::value::Value,
            out: &mut crate::interp::output::Rebuild<'_>,
        ) -> crate::interp::exit::TResult<crate::interp::output::OutTemplate> {
            super::python_object::reconstruct(tx, v, out)
        }
    };
    (@one as_constant) => {
        fn as_constant<'py>(
            &self,
            tx: &crate::interp::tracer::Tracer<'py>,
            v: &crate::interp::value::Value,
        ) -> Option<pyo3::Bound<'py, pyo3::PyAny>> {
            super::python_object::as_constant(tx, v)
        }
    };
}
pub(crate) use python_object_verbs;

/// A Python object rebuilt after the graph: the object at its source (fetched each call),
/// or the object itself when the trace made it from constants.
pub fn reconstruct(
    tx: &mut Tracer<'_>,
    v: &Value,
    out: &mut crate::interp::output::Rebuild<'_>,
) -> TResult<crate::interp::output::OutTemplate> {
    use crate::interp::output::OutTemplate;
    let o = obj(v)?;
    Ok(match &o.source {
        Some(s) => out.fetch(s),
        None if o.obj.is(&tx.hooks.pending_traceback) => {
            return Err(Exit::brk(
                "the traceback of an exception raised in the compiled region leaves it",
            ))
        }
        None => OutTemplate::Const(o.obj.clone_ref(tx.py)),
    })
}

/// `obj.name` by CPython's algorithm: pending stores of the trace first (unless the
/// class's own `__getattribute__` or a data descriptor must see the read), then the real
/// object's lookup, guarded (`attrs::object_attr`).
pub fn getattr(tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
    let o = obj(v)?;
    let attrs = crate::interp::attrs::object_attr;
    if name == "__dict__" {
        if crate::interp::inst_dict::wants_view(tx, v) {
            return Ok(crate::interp::inst_dict::view(v));
        }
        tx.side_effects.dict_exposed.insert(ptr_of(&o.obj));
        let d = attrs(tx, v, o, name, false)?;
        if let (Value::Dict(m), KIND_OBJECT) = (&d, o.kind) {
            // The real namespace's mirror: stores through it are instance-dict stores on
            // `o` (`inst_dict::store_through_mirror`).
            tx.side_effects
                .namespace_mirrors
                .insert(Rc::as_ptr(m) as usize, (m.clone(), v.clone()));
        }
        return Ok(d);
    }
    if tx.side_effects.pending_is_raw(ptr_of(&o.obj), name) {
        // A pending instance-dict entry under a class data descriptor's name
        // (`obj.__dict__[name] = v`): the descriptor still wins.
        return attrs(tx, v, o, name, false);
    }
    // A class's Python __getattribute__ sees every read first; pending stores are found by
    // the generic lookup it reaches (`attrs::generic_getattr`).
    if crate::interp::attrs::custom_getattribute(tx, o) {
        return attrs(tx, v, o, name, false);
    }
    if let Some(m) = crate::interp::set_objects::method(tx, o, name)? {
        return Ok(m);
    }
    if let Some(m) = crate::interp::containers::stock_seq_method(tx, o, name)? {
        return Ok(m);
    }
    match crate::side_effects::mutate::load_pending_attr(tx, o, name)? {
        Some(found) => Ok(found),
        None => {
            crate::interp::attrs::inherited_pending_store(tx, o, name)?;
            attrs(tx, v, o, name, false)
        }
    }
}

/// A call of an object whose family models no calls: the shared checks, else a break.
pub fn call_or_break(tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
    if let Some(r) = call_prelude(tx, v, &args, &kwargs)? {
        return Ok(r);
    }
    let f = obj(v)?.obj.bind(tx.py).clone();
    Err(Exit::brk(format!(
        "call to non-traceable function {}",
        tx.describe(&f)
    )))
}

/// What every call of a Python object checks before its family's own semantics. Ok(None):
/// none applies.
pub fn call_prelude(
    tx: &mut Tracer<'_>,
    whole: &Value,
    args: &Args,
    kwargs: &Kwargs,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let o = obj(whole)?;
    let f = o.obj.bind(py).clone();
    // `C.__subclasses__()`: read now, and again by the guards on every call (a subclass
    // defined later recompiles).
    if args.is_empty() && kwargs.is_empty() {
        if let Some(r) = crate::interp::calls::subclasses_call(tx, o)? {
            return Ok(Some(r));
        }
        if let Some(r) = super::builtin_function::thread_ident(tx, &f)? {
            return Ok(Some(r));
        }
    }
    // `object.__getattribute__(obj, name)` (inside a class's own `__getattribute__`): the
    // generic lookup, which sees pending stores.
    if kwargs.is_empty() {
        if let [target @ Value::Object(_), key] = args.as_slice() {
            if f.is(tx.hooks.object_getattribute.bind(py)) {
                let name: String = key
                    .as_const(py)
                    .and_then(|k| k.extract().ok())
                    .ok_or_else(|| Exit::brk("object.__getattribute__ with a non-constant name"))?;
                return crate::interp::attrs::generic_getattr(tx, target, &name).map(Some);
            }
        }
    }
    // `tuple.__new__(cls, items)` for a tuple subclass (a user `__new__`'s
    // `super().__new__(cls, (a, b))`): a tuple value of that class.
    if let Some(r) = crate::interp::calls::tuple_new(tx, &f, args, kwargs)? {
        return Ok(Some(r));
    }
    // `object.__new__(cls)` (in copyreg.__newobj__ or a user `__new__`): a new, empty
    // object.
    if f.is(tx.hooks.object_new.bind(py)) && kwargs.is_empty() {
        if let [Value::Object(c)] = args.as_slice() {
            if c.kind == KIND_CLASS {
                return crate::side_effects::new_objects::allocate(tx, c, true).map(Some);
            }
        }
    }
    // `list.__new__(cls)` / `dict.__new__(cls)` for a plain list/dict subclass.
    if let Some(r) = crate::interp::container_objects::builtin_new(tx, &f, args, kwargs)? {
        return Ok(Some(r));
    }
    // A C function or type with a Python polyfill (itertools, functools.reduce): trace
    // that.
    let polyfill = f
        .hash()
        .ok()
        .and_then(|_| tx.hooks.polyfills.bind(py).get_item(&f).ok().flatten());
    if let Some(pf) = polyfill {
        let pf = tx.realize(&pf, None)?;
        return super::call(tx, &pf, args.clone(), kwargs.clone()).map(Some);
    }
    if let Some(r) = lru_cache_call(tx, o, args, kwargs)? {
        return Ok(Some(r));
    }
    if let Some(r) = crate::interp::stdlib::call_stdlib(tx, &f, whole, args, kwargs)? {
        return Ok(Some(r));
    }
    if let Some(r) = crate::interp::builtins::call_builtin(tx, &f, args, kwargs)? {
        return Ok(Some(r));
    }
    crate::interp::grad_mode::grad_mode_ctor(tx, &f, args, kwargs)
}

fn attr_src(base: &SourceRef, name: &str) -> SourceRef {
    base.as_ref().map(|s| {
        Arc::new(Source::Attr {
            base: s.clone(),
            name: name.into(),
        })
    })
}

/// A `functools.lru_cache` wrapper (or one bound to an instance): trace the wrapped
/// function, ignoring the cache (as torch.compile does; a warning says so once).
fn lru_cache_call(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    args: &Args,
    kwargs: &Kwargs,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let f = o.obj.bind(py);
    let lru = tx.hooks.lru_cache_wrapper.bind(py);
    if f.get_type().is(lru) {
        let wrapped = f.getattr("__wrapped__").map_err(|e| tx.err(e))?;
        let _ = tx.hooks.warn_lru_cache.bind(py).call1((f,));
        let w = tx.realize(&wrapped, attr_src(&o.source, "__wrapped__"))?;
        return super::call(tx, &w, args.clone(), kwargs.clone()).map(Some);
    }
    let method_type = tx
        .hooks
        .types
        .bind(py)
        .getattr("MethodType")
        .map_err(|e| tx.err(e))?;
    if !f.get_type().is(method_type) {
        return Ok(None);
    }
    let func = f.getattr("__func__").map_err(|e| tx.err(e))?;
    if !func.get_type().is(lru) {
        return Ok(None);
    }
    let wrapped = func.getattr("__wrapped__").map_err(|e| tx.err(e))?;
    let this = f.getattr("__self__").map_err(|e| tx.err(e))?;
    let _ = tx.hooks.warn_lru_cache.bind(py).call1((&func,));
    let w = tx.realize(
        &wrapped,
        attr_src(&attr_src(&o.source, "__func__"), "__wrapped__"),
    )?;
    let this = tx.realize(&this, attr_src(&o.source, "__self__"))?;
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(this);
    all.extend(args.iter().cloned());
    super::call(tx, &w, all, kwargs.clone()).map(Some)
}

/// The methods of `object`, `dict` and `list` reached on a Python object by name (through
/// `super()` or a stock method of a container subclass), as `BuiltinMethod`s.
pub fn call_method(
    tx: &mut Tracer<'_>,
    recv: &Value,
    name: &str,
    args: Args,
    kwargs: Kwargs,
) -> TResult<Value> {
    let py = tx.py;
    let o = obj(recv)?;
    match (name, args.as_slice(), kwargs.is_empty()) {
        // `super().__init__()` reaching `object.__init__`: nothing to do, no arguments.
        ("object.__init__", [], true) => return Ok(Value::none(py)),
        ("object.__init__", _, _) => return Err(Exit::brk("object.__init__() with arguments")),
        // `super().__init__(...)` reaching list's/dict's own: the object's contents.
        ("container.__init__", _, _) => {
            return crate::interp::container_objects::init_call(tx, o, &args, &kwargs);
        }
        // object's `__eq__`/`__ne__` called explicitly on a plain object: identity, else
        // NotImplemented (the reflected operand decides).
        ("object.__eq__" | "object.__ne__", [other], true) => {
            let same = crate::interp::ops::is_same(tx, recv, other)?;
            return Ok(match (same, name) {
                (true, "object.__eq__") => Value::constant(py, true),
                (true, _) => Value::constant(py, false),
                _ => Value::Const(py.NotImplemented()),
            });
        }
        // `super().__setattr__(name, value)` / `super().__delattr__(name)` inside a class's
        // own method: the plain store.
        ("object.__setattr__" | "object.__delattr__", _, true) => {
            return crate::interp::calls::plain_store_call(tx, name, recv, &args);
        }
        // `super().__getattribute__(name)`: the generic lookup.
        ("__getattribute__", [key], true) => {
            let key: String = key
                .as_const(py)
                .and_then(|k| k.extract().ok())
                .ok_or_else(|| Exit::brk("__getattribute__ with a non-constant name"))?;
            return crate::interp::attrs::generic_getattr(tx, recv, &key);
        }
        _ => {}
    }
    // dict's own read methods on a dict subclass (`registry.get(k)`, `output.keys()`,
    // `super().get(k)`).
    if crate::interp::containers::is_sub_dict(o) {
        if kwargs.is_empty() {
            return crate::interp::containers::sub_dict_read(tx, o, name, &args);
        }
        if name == "update" && args.len() <= 1 {
            // `d.update(other, k=v)`: `other` first, then the keywords.
            if !args.is_empty() {
                crate::interp::containers::sub_dict_read(tx, o, name, &args)?;
            }
            let kw = Value::kwargs_dict(py, kwargs);
            return crate::interp::containers::sub_dict_read(tx, o, name, &[kw]);
        }
    }
    crate::interp::containers::call_container_method(tx, recv, name, args, kwargs)
}

/// `bool(obj)`: `__bool__` (which must return a bool), else `__len__`, else true.
pub fn truthy(tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
    let py = tx.py;
    let ty = obj(v)?.obj.bind(py).get_type();
    let has_bool = ty.hasattr("__bool__").unwrap_or(false);
    let has_len = ty.hasattr("__len__").unwrap_or(false);
    if !has_bool && !has_len {
        return Ok(true);
    }
    if !has_bool {
        let n = call_dunder(tx, v, "__len__", vec![])?;
        return Ok(crate::interp::builtins::valid_len(py, &n)? != 0);
    }
    let b = call_dunder(tx, v, "__bool__", vec![])?;
    match b.as_const(py) {
        Some(c) if c.is_instance_of::<pyo3::types::PyBool>() => {
            c.is_truthy().map_err(|e| tx.err(e))
        }
        Some(c) => Err(crate::interp::exceptions::raise_builtin(
            py,
            "TypeError",
            format!(
                "__bool__ should return bool, returned {}",
                c.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ),
        )),
        None => Err(Exit::brk(format!(
            "__bool__ returned a '{}'",
            b.type_name(py)
        ))),
    }
}

/// The object itself, unless its real state differs from the trace's (new or mutated),
/// or it is an input whose state lives in C (an ndarray): only its type is guarded, so
/// folding would bake in today's contents.
pub fn as_constant<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    let o = obj(v).ok()?;
    let py = tx.py;
    let foldable = !o.obj.is(&tx.hooks.pending_traceback)
        && !tx.side_effects.has_pending(ptr_of(&o.obj))
        && (o.kind != KIND_OBJECT
            || o.source.is_none()
            || !crate::interp::tracer::opaque_c_state(o.obj.bind(py)));
    foldable.then(|| o.obj.bind(py).clone())
}

/// `iter(obj)` through its class's `__iter__`; a user iterator it returns is driven by
/// its `__next__`.
pub fn iter_by_dunder(tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
    let py = tx.py;
    let it = call_dunder(tx, v, "__iter__", vec![])?;
    match &it {
        Value::Object(i) if i.kind == KIND_OBJECT || i.kind == KIND_NN_MODULE => {
            let has_next = i
                .obj
                .bind(py)
                .get_type()
                .hasattr("__next__")
                .unwrap_or(false);
            if !has_next {
                return Err(Exit::brk(
                    "iter() returned an object without __next__ (TypeError)",
                ));
            }
            Ok(Value::new_iter(crate::interp::value::IterVal::Dunder(
                it.clone(),
            )))
        }
        _ => super::iter(tx, &it),
    }
}

/// `f(*args)` of a pure function or operator on constants: run now (its errors are the
/// program's). Ok(None) when an argument is not a constant.
pub fn fold_call(
    tx: &mut Tracer<'_>,
    v: &Value,
    args: &Args,
    kwargs: &Kwargs,
) -> TResult<Option<Value>> {
    let o = obj(v)?;
    let f = o.obj.bind(tx.py).clone();
    // A user object's dunder (`repr(obj)` of an object made in the trace, not a constant)
    // is traced before anything is folded.
    if let Some(r) = crate::interp::dunder_ops::before_fold(tx, &f, args, kwargs)? {
        return Ok(Some(r));
    }
    let Some((a, k)) = crate::interp::calls::all_constants(tx, args, kwargs) else {
        return Ok(None);
    };
    let f = &f;
    match f.call(a, Some(&k)) {
        Ok(r) => tx.realize(&r, None).map(Some),
        Err(e) => {
            let what = tx.describe(f);
            Err(crate::interp::exceptions::from_real_error(tx, e, &what))
        }
    }
}

/// Whether `obj.name = v` on an instance of `cls` is the plain instance-dict store: the
/// class keeps `object.__setattr__` and has no attribute `name` (so no descriptor or field
/// intercepts it).
pub fn plain_instance_store(tx: &Tracer<'_>, cls: &Py<PyAny>, name: &str) -> bool {
    let py = tx.py;
    let cls = cls.bind(py);
    let object_setattr = py
        .get_type::<pyo3::types::PyAny>()
        .getattr("__setattr__")
        .ok();
    let same = match (cls.getattr("__setattr__"), object_setattr) {
        (Ok(a), Some(b)) => a.is(&b),
        _ => false,
    };
    same && !cls.hasattr(name).unwrap_or(true)
}

/// `object.__setattr__(obj, name, value)` (value None: `object.__delattr__`): the plain
/// instance-dict (or slot) store, past any `__setattr__` of the class.
pub fn store_attr_direct(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
) -> TResult<()> {
    store_object_attr(tx, obj, name, value, true)
}

/// A store on a user object: traced through the class's own Python `__setattr__` /
/// `__delattr__` (`obj.name = v` is `type(obj).__setattr__(obj, name, v)`, whose
/// `super().__setattr__` is the plain store) unless `direct`, else the plain store.
pub fn store_object_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    name: &str,
    value: Option<Value>,
    direct: bool,
) -> TResult<()> {
    let py = tx.py;
    let Value::Object(o) = obj else {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of a '{}'",
            obj.type_name(py)
        )));
    };
    let ptr = crate::side_effects::store::ptr_of(&o.obj);
    if o.kind == KIND_NN_MODULE {
        return super::nn_module::store_module_attr(tx, obj, name, value);
    }
    let custom = tx
        .hooks
        .setattr_plain
        .bind(py)
        .call1((o.obj.bind(py), name, direct, value.is_none()))
        .map_err(|e| tx.err(e))?;
    if custom.is_instance_of::<pyo3::types::PyString>() {
        // A data descriptor with a Python `__set__`/`__delete__` on the class: trace
        // `type(d).__set__(d, obj, v)`.
        let hook = if value.is_some() {
            "__set__"
        } else {
            "__delete__"
        };
        let (f, d) = crate::interp::attrs::class_descriptor_hook(tx, o, name, hook)?;
        let mut args = vec![d, obj.clone()];
        args.extend(value);
        crate::interp::families::call(tx, &f, args, Vec::new())?;
        return Ok(());
    }
    if !custom.is_none() {
        let slot = if value.is_some() {
            "__setattr__"
        } else {
            "__delattr__"
        };
        let f = tx.realize(
            &custom,
            crate::interp::attrs::class_member_source(tx, o, slot),
        )?;
        let mut args = vec![obj.clone(), Value::constant(py, name)];
        args.extend(value);
        crate::interp::families::call(tx, &f, args, Vec::new())?;
        return Ok(());
    }
    if tx.side_effects.dict_exposed.contains(&ptr) {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' after obj.__dict__ was read in the trace"
        )));
    }
    if tx.side_effects.is_new(ptr) {
        if !tx.side_effects.store_new_attr(ptr, name, value) {
            return Err(crate::side_effects::mutate::attribute_error(
                tx, o, name, None,
            ));
        }
        return Ok(());
    }
    if o.kind != KIND_OBJECT && !(o.kind == KIND_CLASS && value.is_some()) {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of {} (only plain Python objects are supported)",
            tx.describe(o.obj.bind(py))
        )));
    }
    let Some(src) = &o.source else {
        return Err(Exit::brk(format!(
            "assignment to attribute '{name}' of an object the compiled code cannot reach again"
        )));
    };
    if value.is_none() {
        match tx.side_effects.pending_attr(ptr, name) {
            Some(Some(_)) => {}
            Some(None) => {
                return Err(crate::side_effects::mutate::attribute_error(
                    tx, o, name, None,
                ))
            }
            None => {
                let has = o
                    .obj
                    .bind(py)
                    .getattr("__dict__")
                    .and_then(|d| d.cast_into::<PyDict>().map_err(PyErr::from))
                    .and_then(|d| d.contains(name))
                    .unwrap_or(false);
                if !has {
                    return Err(crate::side_effects::mutate::attribute_error(
                        tx, o, name, None,
                    ));
                }
                tx.guard(src, Guard::HasAttr(name.to_string(), true));
            }
        }
    }
    if o.kind == KIND_CLASS {
        tx.side_effects.class_stores += 1;
    }
    tx.side_effects.store_existing_attr(obj, ptr, name, value);
    Ok(())
}
