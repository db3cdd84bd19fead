//! Tensor subclasses (`class Tagged(torch.Tensor)`) in the trace. Their instances are
//! tensors of the graph (`Value::Tensor` whose `TensorVar` keeps the Python type) listed in
//! `Tracer::subclass_vars`. Which subclasses are traced, and what an attribute of one is,
//! `variables/tensor_subclass.py` answers.
//!
//! Unless subclass dispatch is off (`torch._C.DisableTorchFunctionSubclass()` in the trace,
//! or at the call), every torch call that receives an instance of a subclass with its own
//! `__torch_function__` runs as eager runs it: `cls.__torch_function__(func, types, args,
//! kwargs)`, traced, with `func` the callable eager passes (`torch.mul`, `Tensor.add`,
//! `Tensor.__add__` for `+`, a descriptor's `__get__` for `t.shape`). torch's own
//! `Tensor.__torch_function__` is traced through `polyfills_torch_function.tensor_torch_function`. A
//! subclass tensor reaching the graph any other way while dispatch is on is a graph break
//! (`check_plain`), never a silent skip of its override.

use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PyType;

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::{SourceRef, Value};

/// A subclass instance in the trace: its class, and whether torch calls dispatch through
/// the class's `__torch_function__`. Holds its `TensorVar` so the address stays its own.
pub struct SubclassVar {
    pub cls: Py<PyAny>,
    /// Where the class can be read from (guarded when the trace uses it), if anywhere.
    pub cls_source: SourceRef,
    pub dispatch: bool,
    /// An argument: where it was read from, and the instance (its own `__dict__`).
    pub input: Option<(std::sync::Arc<crate::guards::Source>, Py<PyAny>)>,
    _var: Py<PyAny>,
}

// What an attribute of an instance is (`tensor_subclass.member`).
const FUNCTION: i64 = 1;
const PROPERTY: i64 = 2;
const GETTER: i64 = 3;
const TENSOR_METHOD: i64 = 4;

fn helper<'py>(tx: &Tracer<'py>, name: &str) -> TResult<Bound<'py, PyAny>> {
    tx.hooks
        .tensor_subclass
        .bind(tx.py)
        .getattr(name)
        .map_err(|e| tx.err(e))
}

fn ask<'py>(
    tx: &Tracer<'py>,
    name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> TResult<Bound<'py, PyAny>> {
    helper(tx, name)?.call1(args).map_err(|e| tx.err(e))
}

/// Record `var` (a `TensorVar`) as an instance of `cls`, when `cls` is not a plain tensor
/// type. Called for graph inputs and for `as_subclass` results.
pub fn register(
    tx: &mut Tracer<'_>,
    var: &Bound<'_, PyAny>,
    cls: &Bound<'_, PyAny>,
    cls_source: SourceRef,
) -> TResult<()> {
    if cls.is(&tx.hooks.tensor_type) || cls.is(&tx.hooks.parameter_type) {
        return Ok(());
    }
    let dispatch = ask(tx, "dispatches", (cls,))?
        .is_truthy()
        .map_err(|e| tx.err(e))?;
    if tx.subclass_vars.is_empty() {
        tx.tf_off_at_start = !ask(tx, "torch_function_enabled", ())?
            .is_truthy()
            .map_err(|e| tx.err(e))?;
    }
    tx.subclass_vars.insert(
        var.as_ptr() as usize,
        SubclassVar {
            cls: cls.clone().unbind(),
            cls_source,
            dispatch,
            input: None,
            _var: var.clone().unbind(),
        },
    );
    Ok(())
}

/// The tensor guard's record of an input: a subclass instance's metadata is read from a
/// plain alias of it (reading it from the instance would run its `__torch_function__`).
pub fn input_meta(tx: &Tracer<'_>, obj: &Bound<'_, PyAny>) -> TResult<crate::guards::TensorMeta> {
    let ty = obj.get_type();
    if ty.is(&tx.hooks.tensor_type) || ty.is(&tx.hooks.parameter_type) {
        return crate::guards::TensorMeta::read(obj).map_err(|e| tx.err(e));
    }
    let plain = ask(tx, "plain_alias", (obj,))?;
    let mut meta = crate::guards::TensorMeta::read(&plain).map_err(|e| tx.err(e))?;
    meta.py_type = ty.unbind();
    Ok(meta)
}

/// Record that the subclass tensor `var` is the argument `obj` read from `s`.
pub fn set_input(
    tx: &mut Tracer<'_>,
    var: &Bound<'_, PyAny>,
    s: &std::sync::Arc<crate::guards::Source>,
    obj: &Bound<'_, PyAny>,
) {
    if let Some(sv) = tx.subclass_vars.get_mut(&(var.as_ptr() as usize)) {
        sv.input = Some((s.clone(), obj.clone().unbind()));
    }
}

/// `name` in the own `__dict__` of an argument's instance (read as CPython's lookup would
/// reach it: after data descriptors, before methods), realized from `s.name`.
fn instance_attr(tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Option<Value>> {
    let py = tx.py;
    let Some((s, obj)) = info(tx, v)
        .and_then(|sv| sv.input.as_ref())
        .map(|(s, o)| (s.clone(), o.clone_ref(py)))
    else {
        return Ok(None);
    };
    let (found, value): (bool, Bound<'_, PyAny>) = ask(tx, "instance_attr", (obj.bind(py), name))?
        .extract()
        .map_err(|e| tx.err(e))?;
    if !found {
        // (and it must stay absent for what the class gives to keep answering)
        let dict = std::sync::Arc::new(crate::guards::Source::InstDict { base: s });
        tx.guard(&dict, crate::guards::Guard::NotInDict(name.to_string()));
        return Ok(None);
    }
    let src = std::sync::Arc::new(crate::guards::Source::Attr {
        base: s,
        name: name.to_string(),
    });
    tx.realize(&value, Some(src)).map(Some)
}

/// The subclass record of a tensor value, if it is an instance of a subclass.
pub fn info<'a>(tx: &'a Tracer<'_>, v: &Value) -> Option<&'a SubclassVar> {
    if tx.subclass_vars.is_empty() {
        return None;
    }
    match v {
        Value::Tensor(var) => tx.subclass_vars.get(&(var.as_ptr() as usize)),
        _ => None,
    }
}

/// `v` is a subclass tensor whose torch calls go through its `__torch_function__` here.
pub fn dispatching(tx: &Tracer<'_>, v: &Value) -> bool {
    dispatch_on(tx) && info(tx, v).is_some_and(|s| s.dispatch)
}

/// Subclass dispatch is on at this point of the trace.
fn dispatch_on(tx: &Tracer<'_>) -> bool {
    tx.tf_disabled == 0 && !tx.tf_off_at_start
}

/// A value passed to a graph operation: a dispatching subclass tensor must have gone
/// through its `__torch_function__` first.
pub fn check_plain(tx: &Tracer<'_>, v: &Value) -> TResult<()> {
    if dispatching(tx, v) {
        return Err(Exit::brk(
            "a tensor subclass with __torch_function__ reaching a graph operation its override \
             was not asked about",
        ));
    }
    Ok(())
}

/// `polyfills_torch_function.disable_subclass_dispatch(delta)`: a `DisableTorchFunctionSubclass` block
/// opened (1) or closed (-1) in the trace.
pub fn disable(tx: &mut Tracer<'_>, args: &[Value]) -> TResult<Value> {
    let delta = args
        .first()
        .and_then(|a| a.as_const(tx.py))
        .and_then(|c| c.extract::<i64>().ok())
        .ok_or_else(|| Exit::internal("disable_subclass_dispatch without a constant delta"))?;
    tx.tf_disabled = if delta >= 0 {
        tx.tf_disabled.saturating_add(delta as u32)
    } else {
        tx.tf_disabled.saturating_sub(delta.unsigned_abs() as u32)
    };
    Ok(Value::none(tx.py))
}

/// The classes eager's dispatch would consult for these arguments, in its order: each
/// distinct subclass type once, a subclass before its base classes. Tensors inside list
/// and tuple arguments count (`torch.cat([a, b])`).
fn overloaded<'py>(
    tx: &Tracer<'py>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> Vec<(Bound<'py, PyType>, SourceRef)> {
    let py = tx.py;
    let mut out: Vec<(Bound<'py, PyType>, SourceRef)> = Vec::new();
    let add = |v: &Value, out: &mut Vec<(Bound<'py, PyType>, SourceRef)>| {
        let Some(s) = info(tx, v).filter(|s| s.dispatch) else {
            return;
        };
        let Ok(t) = s.cls.bind(py).clone().cast_into::<PyType>() else {
            return;
        };
        if out.iter().any(|(o, _)| o.is(&t)) {
            return;
        }
        let at = out
            .iter()
            .position(|(o, _)| t.is_subclass(o).unwrap_or(false))
            .unwrap_or(out.len());
        out.insert(at, (t, s.cls_source.clone()));
    };
    let all = args.iter().chain(kwargs.iter().map(|(_, v)| v));
    for v in all {
        match v {
            Value::Tuple(items) => items.iter().for_each(|i| add(i, &mut out)),
            Value::List(l) => l.items.borrow().iter().for_each(|i| add(i, &mut out)),
            _ => add(v, &mut out),
        }
    }
    out
}

/// `func(*args, **kwargs)` as eager runs it when a subclass tensor is among the arguments:
/// through each overloading class's `__torch_function__` until one does not return
/// NotImplemented. None: no argument dispatches (the caller records the plain operation).
pub fn dispatch<'py>(
    tx: &mut Tracer<'py>,
    func: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    if tx.subclass_vars.is_empty() || !dispatch_on(tx) {
        return Ok(None);
    }
    let py = tx.py;
    let types = overloaded(tx, args, kwargs);
    if types.is_empty() {
        return Ok(None);
    }
    let type_values = types
        .iter()
        .map(|(t, src)| tx.realize(t.as_any(), src.clone()))
        .collect::<TResult<Vec<_>>>()?;
    let func_v = tx.realize(func, None)?;
    let kw = Value::new_dict_from(
        kwargs
            .iter()
            .map(|(k, v)| {
                (
                    pyo3::types::PyString::new(py, k).into_any().unbind(),
                    v.clone(),
                )
            })
            .collect(),
    );
    for cls in &type_values {
        let tf = super::families::getattr(tx, cls, "__torch_function__")?;
        let r = super::families::call(
            tx,
            &tf,
            vec![
                func_v.clone(),
                Value::new_tuple(type_values.clone()),
                Value::new_tuple(args.to_vec()),
                kw.clone(),
            ],
            vec![],
        )?;
        if !matches!(&r, Value::Const(c) if c.is(py.NotImplemented())) {
            return Ok(Some(r));
        }
    }
    Err(super::exceptions::raise_builtin(
        py,
        "TypeError",
        "no implementation found on types that implement __torch_function__",
    ))
}

/// The callable eager hands `__torch_function__` for a graph call of `target`, with the
/// arguments in the order that callable takes them: for torch's own functions `target`
/// itself; for an operator (`+`, `<`, `t[i]`, `len`, `abs`, ...) what running it on a
/// recording subclass showed (`tensor_subclass.eager_operator`).
fn eager_func<'py>(
    tx: &Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
) -> TResult<(Bound<'py, PyAny>, Vec<Value>)> {
    let module: String = target
        .getattr("__module__")
        .and_then(|m| m.extract())
        .unwrap_or_default();
    if module == "torch" || module.starts_with("torch.") {
        return Ok((target.clone(), args.to_vec()));
    }
    let tensor_first = args.first().is_some_and(|a| a.is_tensor());
    let found = ask(tx, "eager_operator", (target, tensor_first, args.len()))?;
    let Ok((func, order)) = found.extract::<(Bound<'py, PyAny>, Vec<usize>)>() else {
        return Err(Exit::brk(format!(
            "{} on a tensor subclass with __torch_function__",
            tx.describe(target)
        )));
    };
    let reordered = order
        .iter()
        .map(|&i| args.get(i).cloned())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Exit::internal("eager_operator order out of range"))?;
    Ok((func, reordered))
}

/// A graph call of `target` (torch function, operator, `len`) when a subclass tensor is an
/// argument: dispatched as eager dispatches it. None: record the plain call.
pub fn graph_call<'py>(
    tx: &mut Tracer<'py>,
    target: &Bound<'py, PyAny>,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    if target.is(&tx.hooks.tensor_as_subclass) && kwargs.is_empty() {
        if let [v, rest @ ..] = args {
            return as_subclass(tx, v, rest);
        }
    }
    if tx.subclass_vars.is_empty() || !dispatch_on(tx) || overloaded(tx, args, kwargs).is_empty() {
        return Ok(None);
    }
    let (func, args) = eager_func(tx, target, args)?;
    dispatch(tx, &func, &args, kwargs)
}

/// `t.name` on a subclass tensor: the subclass's own methods and properties (traced), a C
/// attribute of torch.Tensor through `__torch_function__` (or plain when dispatch is off),
/// a torch.Tensor method as a method value. None: read it as on a plain tensor.
pub fn getattr(tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Option<Value>> {
    let Some(cls) = info(tx, v).map(|s| s.cls.clone_ref(tx.py)) else {
        return Ok(None);
    };
    let (code, obj): (i64, Bound<'_, PyAny>) = ask(tx, "member", (cls.bind(tx.py), name))?
        .extract()
        .map_err(|e| tx.err(e))?;
    if !matches!(code, PROPERTY | GETTER) {
        // Not a data descriptor: the instance's own attribute comes first.
        if let Some(r) = instance_attr(tx, v, name)? {
            return Ok(Some(r));
        }
    }
    match code {
        FUNCTION => {
            let f = tx.realize(&obj, None)?;
            Ok(Some(Value::BoundMethod(Rc::new((v.clone(), f)))))
        }
        PROPERTY => {
            let f = tx.realize(&obj, None)?;
            super::families::call(tx, &f, vec![v.clone()], vec![]).map(Some)
        }
        GETTER if dispatching(tx, v) => dispatch(tx, &obj, std::slice::from_ref(v), &[]),
        GETTER => Ok(None),
        TENSOR_METHOD => Ok(Some(Value::BuiltinMethod(Rc::new((
            v.clone(),
            name.to_string(),
        ))))),
        _ => Err(Exit::brk(format!(
            "attribute '{name}' of a {} instance (not a method or property of its class)",
            tx.describe(cls.bind(tx.py))
        ))),
    }
}

/// `super().name` in a method of a tensor subclass (`cls`: the class whose method runs):
/// the next class's own method or property, or torch.Tensor's, which eager runs with the
/// same `__torch_function__` dispatch as a direct call (`super().to(...)`).
pub fn super_attr(
    tx: &mut Tracer<'_>,
    cls: &Py<PyAny>,
    this: &Value,
    name: &str,
) -> TResult<Value> {
    let py = tx.py;
    let ty = match info(tx, this) {
        Some(s) => s.cls.clone_ref(py),
        None => tx.hooks.tensor_type.clone_ref(py),
    };
    let (code, obj): (i64, Bound<'_, PyAny>) = helper(tx, "member")?
        .call((ty.bind(py), name, cls.bind(py)), None)
        .and_then(|r| r.extract())
        .map_err(|e| tx.err(e))?;
    match code {
        FUNCTION | TENSOR_METHOD => {
            let f = tx.realize(&obj, None)?;
            Ok(Value::BoundMethod(Rc::new((this.clone(), f))))
        }
        PROPERTY | GETTER => {
            let f = tx.realize(&obj, None)?;
            super::families::call(tx, &f, vec![this.clone()], vec![])
        }
        _ => Err(Exit::brk(format!(
            "super().{name} in a method of tensor subclass {}",
            tx.describe(cls.bind(py))
        ))),
    }
}

/// `t.name(*args, **kwargs)` on a subclass tensor. None: call it as on a plain tensor.
pub fn call_method(
    tx: &mut Tracer<'_>,
    v: &Value,
    name: &str,
    args: &[Value],
    kwargs: &[(String, Value)],
) -> TResult<Option<Value>> {
    let Some(cls) = info(tx, v).map(|s| s.cls.clone_ref(tx.py)) else {
        return Ok(None);
    };
    let (code, obj): (i64, Bound<'_, PyAny>) = ask(tx, "member", (cls.bind(tx.py), name))?
        .extract()
        .map_err(|e| tx.err(e))?;
    if code == TENSOR_METHOD {
        // (`as_subclass` is the one method that does not ask `__torch_function__`)
        if !dispatching(tx, v) || name == "as_subclass" {
            return Ok(None);
        }
        let mut all = vec![v.clone()];
        all.extend(args.iter().cloned());
        return dispatch(tx, &obj, &all, kwargs);
    }
    let m = match getattr(tx, v, name)? {
        Some(m) => m,
        None => return Ok(None),
    };
    super::families::call(tx, &m, args.to_vec(), kwargs.to_vec()).map(Some)
}

/// `t.as_subclass(cls)` with subclass dispatch not involved: the same graph value as an
/// instance of `cls`. None: not such a call.
pub fn as_subclass(tx: &mut Tracer<'_>, v: &Value, args: &[Value]) -> TResult<Option<Value>> {
    let py = tx.py;
    let (Value::Tensor(var), [cls_v]) = (v, args) else {
        return Ok(None);
    };
    let cls_source = match cls_v {
        Value::Object(o) => o.source.clone(),
        _ => None,
    };
    let cls = tx
        .as_python_constant(cls_v)
        .filter(|c| c.is_instance_of::<PyType>())
        .ok_or_else(|| {
            Exit::brk("Tensor.as_subclass with an argument that is not a constant class")
        })?;
    let traced = cls.is(&tx.hooks.tensor_type)
        || ask(tx, "is_traced_subclass", (&cls,))?
            .is_truthy()
            .map_err(|e| tx.err(e))?;
    if !traced {
        return Err(Exit::brk(format!(
            "Tensor.as_subclass({}) (a subclass with its own __torch_dispatch__)",
            tx.describe(&cls)
        )));
    }
    let new = tx.record("as_subclass", (var.bind(py), &cls))?;
    register(tx, &new, &cls, cls_source)?;
    Ok(Some(Value::Tensor(new.unbind())))
}

/// How a subclass tensor leaves the graph: an input is fetched from its source again (the
/// graph got a plain alias of it); one computed in the graph is the graph's plain output
/// made an instance of its class again (`TensorBase.as_subclass(out, cls)`), as eager's
/// `as_subclass` made it. None: a plain tensor.
pub enum Leaves {
    Input(std::sync::Arc<crate::guards::Source>),
    Computed(Py<PyAny>),
}

pub fn leaves(tx: &Tracer<'_>, v: &Value) -> Option<Leaves> {
    let s = info(tx, v)?;
    let Value::Tensor(var) = v else { return None };
    Some(match tx.tensor_inputs.values().find(|(_, i)| i.is(var)) {
        Some((src, _)) => Leaves::Input(src.clone()),
        None => Leaves::Computed(s.cls.clone_ref(tx.py)),
    })
}
