//! Python builtins that the interpreter implements itself because their arguments may be
//! symbolic: len, isinstance, range, enumerate, zip, tuple, list, dict, getattr, hasattr,
//! type, iter, next, reversed, sum, min, max, int/float/bool/str on constants, print.

use crate::ImportCached;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::calls::graph_call;
use super::exit::{Exit, TResult};
use super::iter::{iter_next, unpack};
use super::ops::binary_op;
use super::tracer::Tracer;
use super::value::{IterVal, Value};
use crate::guards::Guard;

fn int_arg(tx: &Tracer<'_>, v: &Value, what: &str) -> TResult<i64> {
    if super::dunder_ops::compares_by_dunder(tx, v) {
        // Converting it would run its `__index__` now, once, instead of on every call.
        return Err(Exit::brk(format!(
            "{what} of a user object (through its __index__)"
        )));
    }
    tx.as_python_constant(v)
        .and_then(|c| c.extract().ok())
        .ok_or_else(|| Exit::brk(format!("{what} with a non-constant argument")))
}

/// Handle `obj(*args, **kwargs)` if `obj` is a builtin implemented here; Ok(None) otherwise.
pub fn call_builtin<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let b = &tx.hooks.b;
    let is = |f: &Py<PyAny>| obj.is(f.bind(py));
    let kw = |name: &str| {
        kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let no_kwargs = |what: &str| -> TResult<()> {
        if kwargs.is_empty() {
            Ok(())
        } else {
            Err(Exit::brk(format!("keyword arguments to {what}()")))
        }
    };

    // `hash(obj)` of an object whose class defines `__hash__` in Python (a frozen
    // dataclass's): traced, then reduced as `hash()` reduces an int (a constant).
    if let ([v @ Value::Object(o)], true) = (args, kwargs.is_empty()) {
        let is_hash = py
            .import_cached("builtins")
            .and_then(|m| m.getattr("hash"))
            .is_ok_and(|h| h.is(obj));
        if is_hash
            && o.kind == super::kinds::KIND_OBJECT
            && super::ops::python_slot(tx, o, "__hash__")
        {
            let r = super::calls::call_dunder(tx, v, "__hash__", vec![])?;
            let c = r
                .as_const(py)
                .filter(|c| c.is_instance_of::<pyo3::types::PyInt>())
                .ok_or_else(|| Exit::brk("__hash__ returned a non-constant or a non-int"))?;
            // CPython's slot: the int itself when it fits a Py_ssize_t (-1 becomes -2),
            // else the int's own hash.
            let h = match c.extract::<isize>() {
                Ok(-1) => -2,
                Ok(h) => h,
                Err(_) => c.hash().map_err(|e| tx.err(e))?,
            };
            return Ok(Some(Value::constant(py, h)));
        }
    }
    // `vars(obj)` is `obj.__dict__` (a plain object that has one).
    if is(&b.vars) && kwargs.is_empty() {
        if let [v @ Value::Object(o)] = args {
            let has_dict = o.kind == super::kinds::KIND_OBJECT
                && o.obj
                    .bind(py)
                    .get_type()
                    .getattr("__dictoffset__")
                    .and_then(|n| n.extract::<isize>())
                    .is_ok_and(|n| n != 0);
            if has_dict {
                return crate::interp::families::getattr(tx, v, "__dict__").map(Some);
            }
        }
    }
    if is(&b.len) {
        no_kwargs("len")?;
        let [v] = args else {
            return Err(Exit::brk("len() takes exactly one argument"));
        };
        return len_of(tx, v).map(Some);
    }
    if is(&b.id) {
        // id() of an object reached from the inputs: its identity is guarded, the id is a
        // constant (as torch.compile does). Objects created in the trace have no id yet.
        no_kwargs("id")?;
        let [v] = args else {
            return Err(Exit::brk("id() takes exactly one argument"));
        };
        let (o, src) = match v {
            Value::Object(o) => (Some(o.obj.clone_ref(py)), o.source.clone()),
            Value::Function(f) => (f.obj.as_ref().map(|o| o.clone_ref(py)), f.source.clone()),
            _ => (None, None),
        };
        if let (Some(o), Some(s)) = (&o, src) {
            tx.guard(&s, Guard::IdMatch(o.clone_ref(py)));
            return Ok(Some(Value::constant(py, o.as_ptr() as usize)));
        }
        // Anything else with an identity in the trace (an object made here, a list or dict):
        // a stand-in id, the same for the same traced object, that may be compared and
        // used as a key (copy.deepcopy's memo) but never leaves the trace (output.rs).
        let key = match v {
            Value::Object(o) => Some(o.obj.as_ptr() as usize),
            Value::Const(c) => Some(c.as_ptr() as usize),
            Value::List(l) => Some(Rc::as_ptr(l) as usize),
            Value::Tuple(t) => Some(Rc::as_ptr(t) as usize),
            Value::Dict(d) => Some(Rc::as_ptr(d) as usize),
            Value::Exception(e) => Some(Rc::as_ptr(e) as usize),
            Value::Std(x) => Some(Rc::as_ptr(x) as usize),
            Value::Function(f) => Some(Rc::as_ptr(f) as usize),
            _ => None,
        };
        return match key {
            Some(k) => {
                let fake = tx
                    .hooks
                    .fake_id
                    .bind(py)
                    .call1((k,))
                    .map_err(|e| tx.err(e))?;
                Ok(Some(Value::Const(fake.unbind())))
            }
            None => Err(Exit::brk(format!(
                "id() of a '{}' created in the compiled region",
                v.type_name(py)
            ))),
        };
    }
    if is(&b.isinstance) || is(&b.issubclass) {
        no_kwargs("isinstance")?;
        let [v, cls] = args else {
            return Err(Exit::brk("isinstance() takes two arguments"));
        };
        let cls = class_operand(tx, cls)
            .ok_or_else(|| Exit::brk("isinstance() with a non-constant class"))?;
        if let Some(why) = user_instance_check(&cls) {
            return Err(Exit::brk(why));
        }
        guard_abc_registrations(tx, &cls)?;
        let r = if is(&b.isinstance) {
            let ty = crate::interp::families::python_type(tx, v)?;
            ty.cast::<pyo3::types::PyType>()
                .map_err(|e| tx.err(e.into()))?
                .is_subclass(&cls)
        } else {
            let sub = tx
                .as_python_constant(v)
                .ok_or_else(|| Exit::brk("issubclass() of a non-constant"))?;
            sub.cast::<pyo3::types::PyType>()
                .map_err(|e| tx.err(e.into()))?
                .is_subclass(&cls)
        };
        let r = r.map_err(|e| Exit::brk(format!("isinstance() raised {e}")))?;
        // isinstance() falls back to `obj.__class__` when the real type does not match; a
        // class that overrides `__class__` (a property that may lie) is left to CPython.
        if !r && is(&b.isinstance) && matches!(v, Value::Object(_)) && overrides_class_attr(v, py) {
            return Err(Exit::brk(
                "isinstance() of an object whose class overrides __class__",
            ));
        }
        return Ok(Some(Value::constant(py, r)));
    }
    if is(&b.range) {
        no_kwargs("range")?;
        let ints: Vec<i64> = args
            .iter()
            .map(|a| int_arg(tx, a, "range()"))
            .collect::<TResult<_>>()?;
        let r = b
            .range
            .bind(py)
            .call1(PyTuple::new(py, ints).map_err(|e| tx.err(e))?)
            .map_err(|e| Exit::brk(format!("range() raised {e}")))?;
        return Ok(Some(Value::Const(r.unbind())));
    }
    if is(&b.enumerate) {
        let (it, start) = match (args, kw("start")) {
            ([it], None) => (it.clone(), 0),
            ([it], Some(s)) => (it.clone(), int_arg(tx, &s, "enumerate()")?),
            ([it, s], None) => (it.clone(), int_arg(tx, s, "enumerate()")?),
            _ => return Err(Exit::brk("enumerate() arguments")),
        };
        let inner = crate::interp::families::iter(tx, &it)?;
        return Ok(Some(Value::new_iter(IterVal::Enumerate {
            inner,
            count: start,
        })));
    }
    if is(&b.zip) {
        let strict = match kw("strict") {
            Some(s) => s
                .as_const(py)
                .map(|c| c.is_truthy().unwrap_or(false))
                .unwrap_or(false),
            None => false,
        };
        let inners = args
            .iter()
            .map(|a| crate::interp::families::iter(tx, a))
            .collect::<TResult<Vec<_>>>()?;
        return Ok(Some(Value::new_iter(IterVal::Zip { inners, strict })));
    }
    if is(&b.tuple) || is(&b.list) {
        no_kwargs("tuple")?;
        let items = match args {
            [] => Vec::new(),
            [v] => unpack(tx, v)?,
            _ => return Err(Exit::brk("tuple()/list() takes at most one argument")),
        };
        return Ok(Some(if is(&b.tuple) {
            Value::new_tuple(items)
        } else {
            Value::new_list(items)
        }));
    }
    if is(&b.dict) {
        let mut items: Vec<(Py<PyAny>, Value)> = Vec::new();
        match args {
            [] => {}
            [Value::Dict(d)] => items = d.snapshot(py),
            // A dict subclass: its storage, as CPython copies it.
            [pairs] => match super::containers::sub_dict_items(tx, pairs)? {
                Some(kv) => items = kv,
                None => {
                    for p in unpack(tx, pairs)? {
                        let kv = unpack(tx, &p)?;
                        let [k, v] = kv.as_slice() else {
                            return Err(Exit::brk("dict() sequence element is not a pair"));
                        };
                        items.push((super::dispatch::dict_key_const(tx, k)?, v.clone()));
                    }
                }
            },
            _ => return Err(Exit::brk("dict() arguments")),
        }
        let d = Value::new_dict_val();
        for (k, v) in items {
            super::dispatch::dict_set(tx, &d, k, v);
        }
        for (k, v) in kwargs {
            let key = pyo3::types::PyString::new(py, k).into_any().unbind();
            super::dispatch::dict_set(tx, &d, key, v.clone());
        }
        return Ok(Some(Value::Dict(d)));
    }
    if is(&b.str_) && kwargs.is_empty() {
        if let [Value::Exception(e)] = args {
            return exception_str(tx, e).map(Some);
        }
    }
    if is(&b.int) || is(&b.float) || is(&b.bool_) || is(&b.str_) {
        // A symbolic size: `int(n)` is `n` itself (still symbolic); other conversions use its
        // value in this trace (guarded).
        if let ([v], true) = (args, kwargs.is_empty()) {
            if tx.is_symbolic(v) {
                let same_type =
                    crate::interp::families::python_type(tx, v).is_ok_and(|t| t.is(obj));
                if same_type && !is(&b.str_) {
                    return Ok(Some(v.clone()));
                }
                if is(&b.float) {
                    let f = py
                        .import_cached("torch")
                        .and_then(|t| t.getattr("sym_float"))
                        .map_err(|e| tx.err(e))?;
                    return super::calls::graph_call(tx, &f, args, &[]).map(Some);
                }
                let c = tx
                    .as_python_constant(v)
                    .ok_or_else(|| Exit::internal("symbolic value without a value"))?;
                let r = obj.call1((c,)).map_err(|e| tx.err(e))?;
                return Ok(Some(tx.realize(&r, None)?));
            }
        }
        if args.iter().any(|a| a.is_tensor()) {
            return Err(Exit::brk(format!(
                "data-dependent conversion {}(tensor) (reads tensor values into Python)",
                obj.getattr("__name__")
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )));
        }
        if is(&b.bool_) {
            if let [v] = args {
                let t = crate::interp::families::truthy(tx, v)?;
                return Ok(Some(Value::constant(py, t)));
            }
        }
        return fold_constants(tx, obj, args, kwargs);
    }
    if is(&b.getattr) {
        no_kwargs("getattr")?;
        let (v, name, default) = match args {
            [v, n] => (v, n, None),
            [v, n, d] => (v, n, Some(d.clone())),
            _ => return Err(Exit::brk("getattr() arguments")),
        };
        let name: String = name
            .as_const(py)
            .and_then(|c| c.extract().ok())
            .ok_or_else(|| Exit::brk("getattr() with a non-constant name"))?;
        return match (crate::interp::families::getattr(tx, v, &name), default) {
            (Ok(r), _) => Ok(Some(r)),
            (Err(e), Some(d)) if super::exceptions::is_attribute_error(py, &e) => Ok(Some(d)),
            (Err(e), _) => Err(e),
        };
    }
    if is(&b.setattr) || is(&b.delattr) {
        // `setattr(obj, "name", v)` / `delattr(obj, "name")`: the attribute store traced
        // like `obj.name = v` / `del obj.name`.
        no_kwargs("setattr")?;
        let (obj, name, value) = match args {
            [o, n, v] if is(&b.setattr) => (o, n, Some(v.clone())),
            [o, n] if is(&b.delattr) => (o, n, None),
            _ => return Err(Exit::brk("setattr()/delattr() arguments")),
        };
        let name: String = name
            .as_const(py)
            .and_then(|c| c.extract().ok())
            .ok_or_else(|| Exit::brk("setattr()/delattr() with a non-constant name"))?;
        crate::interp::families::setattr(tx, obj, &name, value)?;
        return Ok(Some(Value::none(py)));
    }
    if is(&b.hasattr) {
        no_kwargs("hasattr")?;
        let [v, name] = args else {
            return Err(Exit::brk("hasattr() arguments"));
        };
        let name: String = name
            .as_const(py)
            .and_then(|c| c.extract().ok())
            .ok_or_else(|| Exit::brk("hasattr() with a non-constant name"))?;
        return match crate::interp::families::getattr(tx, v, &name) {
            Ok(_) => Ok(Some(Value::constant(py, true))),
            Err(e) if super::exceptions::is_attribute_error(py, &e) => {
                if let Value::Object(o) = v {
                    let pending = tx
                        .side_effects
                        .has_pending(crate::side_effects::store::ptr_of(&o.obj));
                    if let (Some(s), false) = (&o.source, pending) {
                        tx.guard(s, crate::guards::Guard::HasAttr(name.clone(), false));
                    }
                }
                Ok(Some(Value::constant(py, false)))
            }
            Err(e) => Err(e),
        };
    }
    if is(&b.type_) {
        no_kwargs("type")?;
        let [v] = args else {
            return Err(Exit::brk("type() with more than one argument"));
        };
        let t = crate::interp::families::python_type(tx, v)?;
        // Through a source, so what the trace reads off the class is guarded (a class
        // attribute changed later recompiles).
        let src = match v {
            Value::Object(o) => super::attrs::class_source(tx, o),
            _ => None,
        };
        return Ok(Some(tx.realize(&t, src)?));
    }
    if is(&b.iter) {
        no_kwargs("iter")?;
        let [v] = args else {
            return Err(Exit::brk("iter() with a sentinel"));
        };
        return Ok(Some(crate::interp::families::iter(tx, v)?));
    }
    if is(&b.next) {
        no_kwargs("next")?;
        let (it, default) = match args {
            [it] => (it, None),
            [it, d] => (it, Some(d.clone())),
            _ => return Err(Exit::brk("next() arguments")),
        };
        if let Value::Generator(g) = it {
            // A generator's `return v` is StopIteration(v) (its `.value`).
            return match (super::iter::generator_resume(tx, g)?, default) {
                (super::dispatch::FrameExit::Yield(v), _) => Ok(Some(v)),
                (super::dispatch::FrameExit::Return(_), Some(d)) => Ok(Some(d)),
                (super::dispatch::FrameExit::Return(v), None) => {
                    let args = if matches!(&v, Value::Const(c) if c.bind(py).is_none()) {
                        Vec::new()
                    } else {
                        vec![v]
                    };
                    match super::exceptions::builtin(py, "StopIteration", args) {
                        Ok(e) => Err(super::exceptions::raise(e)),
                        Err(e) => Err(tx.err(e)),
                    }
                }
            };
        }
        return match (iter_next(tx, it)?, default) {
            (Some(v), _) => Ok(Some(v)),
            (None, Some(d)) => Ok(Some(d)),
            (None, None) => Err(super::exceptions::raise_builtin_args(py, "StopIteration")),
        };
    }
    if is(&b.reversed) {
        no_kwargs("reversed")?;
        let [v] = args else {
            return Err(Exit::brk("reversed() arguments"));
        };
        let mut items = match v {
            Value::Tuple(_) | Value::List(_) | Value::NamedTuple(_) => unpack(tx, v)?,
            Value::Object(_) => unpack(tx, v)?,
            Value::Const(_) => unpack(tx, v)?,
            _ => return Err(Exit::brk(format!("reversed() of a '{}'", v.type_name(py)))),
        };
        items.reverse();
        return Ok(Some(Value::new_iter(IterVal::Items { items, pos: 0 })));
    }
    if is(&b.sum) {
        let (it, start) = match (args, kw("start")) {
            ([it], None) => (it, Value::constant(py, 0)),
            ([it], Some(s)) => (it, s),
            ([it, s], None) => (it, s.clone()),
            _ => return Err(Exit::brk("sum() arguments")),
        };
        let mut acc = start;
        for v in unpack(tx, it)? {
            acc = binary_op(tx, 0, &acc, &v)?;
        }
        return Ok(Some(acc));
    }
    if (is(&b.min) || is(&b.max)) && !kwargs.is_empty() {
        // `key=` / `default=`: traced through the Python equivalent.
        let name = if is(&b.max) { "max_" } else { "min_" };
        let f = py
            .import_cached("ferrodyn.polyfills")
            .and_then(|m| m.getattr(name))
            .map_err(|e| tx.err(e))?;
        let f = tx.realize(&f, None)?;
        return crate::interp::families::call(tx, &f, args.to_vec(), kwargs.to_vec()).map(Some);
    }
    if (is(&b.min) || is(&b.max)) && kwargs.is_empty() {
        let items = match args {
            [one] => unpack(tx, one)?,
            many => many.to_vec(),
        };
        // Symbolic sizes among ints: `torch.sym_max`/`sym_min` nodes (the result stays
        // symbolic, as in torch.compile).
        // (Only ints: with a float among them eager's result keeps the winner's type,
        // which a symbolic max/min would not.)
        let int_like = |tx: &Tracer<'_>, v: &Value| {
            let symbolic_int = tx.is_symbolic(v)
                && crate::interp::families::python_type(tx, v)
                    .is_ok_and(|t| t.is(py.get_type::<pyo3::types::PyInt>()));
            symbolic_int
                || v.as_const(py)
                    .is_some_and(|c| c.is_exact_instance_of::<pyo3::types::PyInt>())
        };
        if items.len() >= 2
            && items.iter().any(|v| tx.is_symbolic(v))
            && items.iter().all(|v| int_like(tx, v))
        {
            let f = py
                .import_cached("torch")
                .and_then(|t| t.getattr(if is(&b.max) { "sym_max" } else { "sym_min" }))
                .map_err(|e| tx.err(e))?;
            let mut acc = items[0].clone();
            for v in &items[1..] {
                acc = super::calls::graph_call(tx, &f, &[acc, v.clone()], &[])?;
            }
            return Ok(Some(acc));
        }
        if items.iter().all(|v| !v.is_tensor()) {
            let consts: Option<Vec<_>> = items.iter().map(|v| tx.as_python_constant(v)).collect();
            if let Some(c) = consts {
                let t = PyTuple::new(py, c).map_err(|e| tx.err(e))?;
                let r = obj
                    .call1((t,))
                    .map_err(|e| Exit::brk(format!("min()/max() raised {e}")))?;
                return Ok(Some(tx.realize(&r, None)?));
            }
        }
        return Err(Exit::brk(
            "min()/max() over tensors (use torch.minimum/torch.maximum)",
        ));
    }
    if is(&b.all) || is(&b.any) {
        no_kwargs("all/any")?;
        let [it] = args else {
            return Err(Exit::brk("all()/any() take one argument"));
        };
        let want = is(&b.any);
        let iter = crate::interp::families::iter(tx, it)?;
        while let Some(v) = iter_next(tx, &iter)? {
            if crate::interp::families::truthy(tx, &v)? == want {
                return Ok(Some(Value::constant(py, want)));
            }
        }
        return Ok(Some(Value::constant(py, !want)));
    }
    if is(&b.print) {
        return crate::side_effects::mutate::print(tx, args, kwargs).map(Some);
    }
    if is(&b.slice) {
        no_kwargs("slice")?;
        let none = Value::none(py);
        let s = match args {
            [stop] => [none.clone(), stop.clone(), none],
            [a, b2] => [a.clone(), b2.clone(), none],
            [a, b2, c] => [a.clone(), b2.clone(), c.clone()],
            _ => return Err(Exit::brk("slice() arguments")),
        };
        return Ok(Some(Value::Slice(Rc::new(s))));
    }
    if is(&b.callable) {
        let [v] = args else {
            return Err(Exit::brk("callable() arguments"));
        };
        let r = match v {
            Value::Function(_) | Value::BoundMethod(_) | Value::BuiltinMethod(_) => true,
            Value::Object(o) => o.obj.bind(py).is_callable(),
            Value::Const(c) => c.bind(py).is_callable(),
            Value::Std(s) => s.is_callable(),
            _ => false,
        };
        return Ok(Some(Value::constant(py, r)));
    }
    if is(&b.set) {
        return fold_constants(tx, obj, args, kwargs);
    }
    Ok(None)
}

/// `str(e)` for an exception made in the trace whose class keeps its builtin `__str__`:
/// the builtin's text for the same (constant) args.
fn exception_str(tx: &mut Tracer<'_>, e: &Rc<super::exceptions::ExcVal>) -> TResult<Value> {
    let py = tx.py;
    let cls = e.cls.bind(py);
    let solid = e.solid.bind(py);
    let own_str = cls
        .getattr("__str__")
        .and_then(|a| solid.getattr("__str__").map(|b| a.is(&b)))
        .unwrap_or(false);
    if !own_str {
        return Err(Exit::brk(
            "str() of an exception whose class defines __str__",
        ));
    }
    let args = e.args.borrow().clone();
    let consts = tx
        .as_python_constant_all(&args)
        .ok_or_else(|| Exit::brk("str() of an exception with non-constant args"))?;
    let t = PyTuple::new(py, consts).map_err(|e| tx.err(e))?;
    let text = solid
        .call1(t)
        .and_then(|inst| inst.str())
        .map_err(|err| tx.err(err))?;
    Ok(Value::Const(text.into_any().unbind()))
}

/// Call a builtin type or function on constant arguments at trace time.
fn fold_constants<'py>(
    tx: &mut Tracer<'py>,
    obj: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let py = tx.py;
    if let Some(r) = super::dunder_ops::before_fold(tx, obj, args, kwargs)? {
        return Ok(Some(r));
    }
    let conv: Option<Vec<_>> = args.iter().map(|a| tx.as_python_constant(a)).collect();
    let conv =
        conv.ok_or_else(|| Exit::brk(format!("{}() of a non-constant", tx.describe(obj))))?;
    let d = pyo3::types::PyDict::new(py);
    for (k, v) in kwargs {
        let c = tx
            .as_python_constant(v)
            .ok_or_else(|| Exit::brk("non-constant keyword argument"))?;
        d.set_item(k, c).map_err(|e| tx.err(e))?;
    }
    let t = PyTuple::new(py, conv).map_err(|e| tx.err(e))?;
    let r = obj
        .call(t, Some(&d))
        .map_err(|e| Exit::brk(format!("{}() raised {e}", tx.describe(obj))))?;
    Ok(Some(tx.realize(&r, None)?))
}

/// Whether `type(v)` finds `__class__` anywhere but `object` (a property or descriptor that
/// `isinstance` would consult).
fn overrides_class_attr(v: &Value, py: Python<'_>) -> bool {
    let Value::Object(o) = v else {
        return false;
    };
    let ty = o.obj.bind(py).get_type();
    let own = py
        .get_type::<PyAny>()
        .getattr(pyo3::intern!(py, "__dict__"))
        .and_then(|d| d.get_item("__class__"));
    match (super::calls::class_raw_attr(&ty, "__class__"), own) {
        (Some(raw), Ok(own)) => !raw.is(&own),
        _ => true,
    }
}

/// The result of a user `__len__` as `len()` would return it: an `int` (bools included) that
/// is `>= 0`. Anything else (a negative or huge int, a non-int, a traced value) graph-breaks,
/// so that `len()` runs natively and raises as in eager.
pub fn valid_len(py: Python<'_>, n: &Value) -> TResult<i64> {
    match n.as_const(py) {
        Some(c) if c.is_instance_of::<pyo3::types::PyInt>() => match c.extract::<i64>() {
            Ok(n) if n >= 0 => Ok(n),
            _ => Err(Exit::brk("__len__ returned a negative or huge int")),
        },
        _ => Err(Exit::brk("__len__ returned a non-int")),
    }
}

/// `len(v)`.
pub fn len_of(tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
    let py = tx.py;
    Ok(match v {
        Value::Tuple(t) => Value::constant(py, t.len()),
        Value::NamedTuple(n) => Value::constant(py, n.items.len()),
        Value::List(l) => Value::constant(py, l.items.borrow().len()),
        Value::Dict(d) => Value::constant(py, d.len()),
        Value::Const(c) => Value::constant(
            py,
            c.bind(py)
                .len()
                .map_err(|e| Exit::brk(format!("len() raised {e}")))?,
        ),
        // A tensor's first size (`x.size(0)`: symbolic under dynamic shapes).
        // (a subclass instance's `Tensor.__len__` goes through its __torch_function__)
        Value::Tensor(var) if !tx.is_symbolic(v) && !super::tensor_subclass::dispatching(tx, v) => {
            let r = tx.record("tensor_len", (var.bind(py),))?;
            tx.from_graph_result(&r)?
        }
        Value::Tensor(_) => {
            let f = tx.hooks.b.len.bind(py).clone();
            graph_call(tx, &f, std::slice::from_ref(v), &[])?
        }
        Value::Std(s) => super::stdlib::len(tx, s)?,
        Value::Object(o) if super::containers::stock_seq(tx, o) => {
            Value::constant(py, super::containers::stock_seq_items(tx, o)?.len())
        }
        Value::Object(_) => {
            let n = super::calls::call_dunder(tx, v, "__len__", vec![])?;
            Value::constant(py, valid_len(py, &n)?)
        }
        other => return Err(Exit::brk(format!("len() of a '{}'", other.type_name(py)))),
    })
}

/// The class (or tuple of classes) `isinstance`/`issubclass` checks against: a constant, or
/// a class whose attributes the trace changed (pending class-attribute stores leave its
/// identity and bases as they are).
fn class_operand<'py>(tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
    match v {
        Value::Object(o) if o.kind == super::kinds::KIND_CLASS => Some(o.obj.bind(tx.py).clone()),
        Value::Tuple(items) => {
            let parts: Option<Vec<_>> = items.iter().map(|i| class_operand(tx, i)).collect();
            pyo3::types::PyTuple::new(tx.py, parts?)
                .ok()
                .map(|t| t.into_any())
        }
        _ => tx.as_python_constant(v),
    }
}

/// When `cls` is (or holds) an ABC, the answer also depends on what was registered with
/// `ABC.register`: guard on `abc.get_cache_token()`, which every registration changes.
fn guard_abc_registrations(tx: &mut Tracer<'_>, cls: &Bound<'_, PyAny>) -> TResult<()> {
    let py = tx.py;
    let is_abc = |c: &Bound<'_, PyAny>| {
        super::calls::class_raw_attr(&c.get_type(), "__instancecheck__").is_some_and(|raw| {
            raw.getattr("__module__")
                .ok()
                .and_then(|m| m.extract::<String>().ok())
                .is_some_and(|m| m == "abc")
        })
    };
    let any_abc = match cls.cast::<PyTuple>() {
        Ok(t) => t.iter().any(|c| is_abc(&c)),
        Err(_) => is_abc(cls),
    };
    if any_abc {
        let token = py
            .import("_abc")
            .and_then(|m| m.getattr("get_cache_token"))
            .and_then(|f| f.call0())
            .map_err(|e| tx.err(e))?;
        let src = std::sync::Arc::new(crate::guards::Source::AbcCacheToken);
        tx.guard(&src, crate::guards::Guard::Equals(token.unbind()));
    }
    Ok(())
}

/// A class (or one in a tuple of classes) whose metaclass answers `isinstance`/`issubclass`
/// with its own Python `__instancecheck__`/`__subclasscheck__` (user code, whose answer can
/// change between calls), other than the standard library's `abc`/`typing` ones and torch's: the reason
/// to break. None: the check runs no user code.
fn user_instance_check(cls: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(t) = cls.cast::<PyTuple>() {
        return t.iter().find_map(|c| user_instance_check(&c));
    }
    let meta = cls.get_type();
    for name in ["__instancecheck__", "__subclasscheck__"] {
        let Some(raw) = super::calls::class_raw_attr(&meta, name) else {
            continue;
        };
        if !raw.is_instance_of::<pyo3::types::PyFunction>() {
            continue;
        }
        let module = raw
            .getattr("__module__")
            .ok()
            .and_then(|m| m.extract::<String>().ok())
            .unwrap_or_default();
        // torch's own (nn.Parameter's `_ParameterMeta`) answer from the instance's type and
        // flags, which the tensor's guards cover.
        if module != "abc" && module != "typing" && !module.starts_with("torch") {
            return Some(format!(
                "isinstance() against a class whose metaclass defines {name} in Python"
            ));
        }
    }
    None
}
