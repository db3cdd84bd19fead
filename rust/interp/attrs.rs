//! Name and attribute loads: globals, `obj.name` on every kind of value. The lookup order
//! for Python objects comes from the tracker (`variables/attrs.py`); this file turns the
//! answer into a guarded source and a value.

use std::rc::Rc;
use std::sync::Arc;

use pyo3::ffi;
use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::frame::Frame;
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{GlobalsAccess, ObjVal, SourceRef, Value};
use crate::bytecode::PyVersion;
use crate::guards::{DictKey, Guard, Source};

/// Where the frame's global `name` is read from for guards (None: its globals are not
/// guarded).
pub fn global_source(frame: &Frame, name: &str) -> SourceRef {
    Some(Arc::new(match &frame.globals_source {
        GlobalsAccess::Root => Source::Global {
            name: name.to_string(),
        },
        GlobalsAccess::Via(g) => Source::DictItem {
            base: g.clone(),
            key: DictKey::Str(name.to_string()),
        },
        GlobalsAccess::Unguarded => return None,
    }))
}

pub fn load_global(tx: &mut Tracer<'_>, frame: &Frame, name: &str) -> TResult<Value> {
    let py = tx.py;
    if let Some(v) = crate::side_effects::mutate::load_pending_global(tx, frame, name) {
        return v;
    }
    let globals = frame.globals_dict(py).map_err(|e| tx.err(e))?;
    if let Some(obj) = globals.get_item(name).map_err(|e| tx.err(e))? {
        let source = match global_source(frame, name) {
            None => registry_source(&globals, &obj, name),
            some => some,
        };
        return tx.realize(&obj, source);
    }
    let builtins = tx.hooks.builtins.bind(py).clone();
    if let Some(obj) = builtins.get_item(name).map_err(|e| tx.err(e))? {
        // Resolved from builtins: a module global of the same name added later shadows it.
        let globals_dict = match &frame.globals_source {
            GlobalsAccess::Root => Some(Arc::new(Source::Globals)),
            GlobalsAccess::Via(g) => Some(g.clone()),
            GlobalsAccess::Unguarded => None,
        };
        if let Some(g) = globals_dict {
            tx.guard(&g, Guard::NotInDict(name.to_string()));
        }
        // `builtins.name = ...` replaces it for every module: guard the builtins dict too
        // (its version tag lets the check skip while the builtins are unchanged).
        let src = Arc::new(Source::Builtin {
            name: name.to_string(),
        });
        return tx.realize(&obj, Some(src));
    }
    Err(Exit::brk(format!("name '{name}' is not defined")))
}

/// `sys.modules[cls.__module__].__dict__[cls.__qualname__]` for a class defined at module
/// level (and still bound there): a source for a class the trace holds without one (the
/// class of a namedtuple made in the trace), so reads of its attributes can be guarded.
pub(crate) fn module_level_class_source(cls: &Bound<'_, PyAny>) -> SourceRef {
    let py = cls.py();
    let text = |name: &str| cls.getattr(name).ok()?.extract::<String>().ok();
    let module = text("__module__")?;
    let qualname = text("__qualname__")?;
    if qualname.contains('.') || qualname.contains('<') {
        return None;
    }
    let bound = py
        .import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .and_then(|m| m.get_item(&module))
        .and_then(|m| m.getattr("__dict__"))
        .and_then(|d| d.get_item(&qualname))
        .is_ok_and(|c| c.is(cls));
    bound.then(|| module_global_source(module, qualname))
}

/// `sys.modules[module].__dict__[name]`: a module global reached without the frame's globals.
fn module_global_source(module: String, name: String) -> Arc<Source> {
    Arc::new(Source::DictItem {
        base: Arc::new(Source::InstDict {
            base: Arc::new(Source::DictItem {
                base: Arc::new(Source::SysModules),
                key: DictKey::Str(module),
            }),
        }),
        key: DictKey::Str(name),
    })
}

/// A mutable container (dict, list, set) read from the globals of a function traced without
/// guards on its globals (torch's own code, a function without a source): a registry such
/// as pytree's `SUPPORTED_NODES` that may change after compiling. Its source goes through
/// `sys.modules[<module>].__dict__`, so its contents are guarded like any other global
/// (None: not a container, or the globals are not a registered module's).
fn registry_source(
    globals: &Bound<'_, pyo3::types::PyDict>,
    obj: &Bound<'_, PyAny>,
    name: &str,
) -> SourceRef {
    let py = obj.py();
    let mutable = obj.is_instance_of::<pyo3::types::PyDict>()
        || obj.is_instance_of::<pyo3::types::PyList>()
        || obj.is_instance_of::<pyo3::types::PySet>();
    if !mutable {
        return None;
    }
    let module = globals
        .get_item("__name__")
        .ok()??
        .extract::<String>()
        .ok()?;
    let registered = py
        .import("sys")
        .and_then(|sys| sys.getattr("modules"))
        .and_then(|m| m.get_item(&module))
        .and_then(|m| m.getattr("__dict__"))
        .is_ok_and(|d| d.is(globals));
    registered.then(|| module_global_source(module, name.to_string()))
}

/// The source of `type(obj)` for an object reached by a source, or of the class an object
/// made in the trace was created from (None: neither).
pub(crate) fn class_source(tx: &Tracer<'_>, o: &ObjVal) -> SourceRef {
    match &o.source {
        Some(base) => Some(Arc::new(Source::TypeOf { base: base.clone() })),
        None => tx
            .side_effects
            .new_object(crate::side_effects::store::ptr_of(&o.obj))
            .and_then(|n| n.cls_source.clone()),
    }
}

/// The source of `type(obj).name` for an object reached by a source or made in the trace
/// (its class is then the one the trace called).
pub(crate) fn class_member_source(tx: &Tracer<'_>, o: &ObjVal, name: &str) -> SourceRef {
    match &o.source {
        None => crate::side_effects::new_objects::class_attr_source(tx, o, name),
        Some(_) => attr_source(&o.source, AT_CLASS, name),
    }
}

fn attr_source(base: &SourceRef, at: i64, name: &str) -> SourceRef {
    let base = base.as_ref()?;
    let key = |k: &str| DictKey::Str(k.to_string());
    let inst = || Arc::new(Source::InstDict { base: base.clone() });
    Some(Arc::new(match at {
        AT_INSTANCE => Source::DictItem {
            base: inst(),
            key: key(name),
        },
        AT_PARAMETER | AT_BUFFER | AT_SUBMODULE => {
            let table = match at {
                AT_PARAMETER => "_parameters",
                AT_BUFFER => "_buffers",
                _ => "_modules",
            };
            Source::DictItem {
                base: Arc::new(Source::DictItem {
                    base: inst(),
                    key: key(table),
                }),
                key: key(name),
            }
        }
        AT_CLASS | AT_PROPERTY => Source::Attr {
            base: Arc::new(Source::TypeOf { base: base.clone() }),
            name: name.to_string(),
        },
        AT_UNGUARDED => return None,
        _ => Source::Attr {
            base: base.clone(),
            name: name.to_string(),
        },
    }))
}

/// `t.name` missing on an input tensor: its class has no such attribute and its instance
/// dict has no such key (guarded: the type, and the key's absence) — eager's catchable
/// AttributeError (`hasattr(t, "jax")` is False). None: it may exist; the caller breaks.
pub(crate) fn missing_input_tensor_attr(
    tx: &mut Tracer<'_>,
    obj: &Value,
    var: &Py<PyAny>,
    name: &str,
) -> Option<Exit> {
    let py = tx.py;
    let (real, src) = tx.input_object(var)?;
    let ty = real.get_type();
    // Plain tensors and parameters only (a subclass's metaclass could run code on lookup).
    let plain = ty
        .qualname()
        .is_ok_and(|q| q == "Tensor" || q == "Parameter")
        && ty
            .module()
            .is_ok_and(|m| m == "torch" || m == "torch.nn.parameter");
    if !plain || ty.hasattr(name).unwrap_or(true) {
        return None;
    }
    let dict = real.getattr("__dict__").ok()?;
    if dict.contains(name).unwrap_or(true) {
        return None;
    }
    tx.guard(&src, Guard::TypeMatch(ty.unbind()));
    let inst = Arc::new(Source::InstDict { base: src });
    tx.guard(&inst, Guard::NotInDict(name.to_string()));
    Some(super::exceptions::attribute_error(
        py,
        Some(obj),
        "Tensor",
        name,
    ))
}

/// Whether `o` is a user object with pending attribute stores whose class defines its own
/// `__getattribute__` (checked only then: without pending stores the order is moot).
pub(crate) fn custom_getattribute(tx: &Tracer<'_>, o: &ObjVal) -> bool {
    if o.kind != KIND_OBJECT
        || !tx
            .side_effects
            .has_pending(crate::side_effects::store::ptr_of(&o.obj))
    {
        return false;
    }
    let py = tx.py;
    o.obj
        .bind(py)
        .get_type()
        .getattr("__getattribute__")
        .is_ok_and(|f| {
            !f.is(tx.hooks.object_getattribute.bind(py))
                && f.get_type().name().is_ok_and(|n| n == "function")
        })
}

/// `object.__getattribute__(obj, name)` for a traced object: the generic lookup, even when
/// its class defines its own `__getattribute__` (called from inside that one, through
/// `super().__getattribute__(name)`).
pub fn generic_getattr(tx: &mut Tracer<'_>, obj: &Value, name: &str) -> TResult<Value> {
    if name == "__dict__" && super::inst_dict::wants_view(tx, obj) {
        return Ok(super::inst_dict::view(obj));
    }
    match obj {
        Value::Object(o) => match crate::side_effects::mutate::load_pending_attr(tx, o, name)? {
            Some(v) => Ok(v),
            None => object_attr(tx, obj, o, name, true),
        },
        _ => crate::interp::families::getattr(tx, obj, name),
    }
}

pub(crate) fn object_attr(
    tx: &mut Tracer<'_>,
    whole: &Value,
    o: &ObjVal,
    name: &str,
    generic: bool,
) -> TResult<Value> {
    let py = tx.py;
    if o.kind == KIND_UNSUPPORTED {
        let d = tx.describe(o.obj.bind(py));
        return Err(Exit::brk(format!(
            "attribute '{name}' of unsupported object {d}"
        )));
    }
    let r = tx
        .hooks
        .lookup_attr
        .bind(py)
        .call1((o.obj.bind(py), name, generic));
    let r = match r {
        Ok(r) => r,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
            if o.kind == KIND_OBJECT {
                // A plain object's miss: CPython's exact AttributeError, catchable.
                let ty = whole.type_name(py);
                return Err(super::exceptions::attribute_error(
                    py,
                    Some(whole),
                    &ty,
                    name,
                ));
            }
            if matches!(o.kind, KIND_PY_MODULE | KIND_CLASS) {
                if let Some(src) = &o.source {
                    // A module's or class's missing attribute: the same catchable
                    // AttributeError, valid while the name stays missing.
                    tx.guard(src, Guard::HasAttr(name.to_string(), false));
                    let msg = e.value(py).to_string();
                    return Err(super::exceptions::raise_builtin(py, "AttributeError", msg));
                }
            }
            return Err(Exit::brk(format!("{} (AttributeError)", e.value(py))));
        }
        Err(e) => return Err(tx.err(e)),
    };
    let (at, value): (i64, Bound<'_, PyAny>) = r.extract().map_err(|e| tx.err(e))?;
    let source = match (&o.source, at) {
        (None, AT_CLASS | AT_PROPERTY) => {
            crate::side_effects::new_objects::class_attr_source(tx, o, name)
        }
        _ => attr_source(&o.source, at, name),
    };
    match at {
        AT_CLASS => {
            // Found on the class: an instance attribute of that name, set later, would
            // shadow it (a method or class constant replaced on one object).
            if o.kind != KIND_CLASS {
                guard_not_shadowed(tx, o, name);
            }
            // A plain function found on the class binds to the instance; staticmethod and
            // classmethod resolve through the class's own getattr.
            let is_function = value
                .get_type()
                .name()
                .map(|n| n == "function")
                .unwrap_or(false);
            let reduce_ex = o.kind == KIND_OBJECT && value.is(tx.hooks.object_reduce_ex.bind(py));
            // object's own `__eq__`/`__ne__` called explicitly: identity, else NotImplemented
            // (calls.rs).
            let object_cmp = if o.kind != KIND_OBJECT || is_function {
                None
            } else if value.is(tx.hooks.object_eq.bind(py)) {
                Some("object.__eq__")
            } else if value.is(tx.hooks.object_ne.bind(py)) {
                Some("object.__ne__")
            } else {
                None
            };
            if let Some(qual) = object_cmp {
                return Ok(Value::BuiltinMethod(Rc::new((whole.clone(), qual.into()))));
            }
            let resolved = if is_function {
                value
            } else {
                o.obj
                    .bind(py)
                    .get_type()
                    .getattr(name)
                    .map_err(|e| tx.err(e))?
            };
            let v = tx.realize(&resolved, source)?;
            if reduce_ex {
                // `obj.__reduce_ex__` (copy.copy/deepcopy, pickle) of a user object whose
                // class keeps object's: traced through its Python equivalent.
                let pf = tx.hooks.reduce_ex_polyfill.clone_ref(py);
                let f = tx.realize(pf.bind(py), None)?;
                return Ok(Value::BoundMethod(Rc::new((whole.clone(), f))));
            }
            if is_function && o.kind != KIND_CLASS {
                Ok(Value::BoundMethod(Rc::new((whole.clone(), v))))
            } else {
                Ok(v)
            }
        }
        AT_DICT_READ => Ok(Value::BuiltinMethod(Rc::new((
            whole.clone(),
            name.to_string(),
        )))),
        AT_GETATTRIBUTE => {
            // type(obj).__getattribute__, guarded like a class attribute, called traced; an
            // AttributeError it raises falls back to the class's Python __getattr__.
            let f = tx.realize(&value, class_member_source(tx, o, "__getattribute__"))?;
            let key = Value::constant(py, name);
            match crate::interp::families::call(
                tx,
                &f,
                vec![whole.clone(), key.clone()],
                Vec::new(),
            ) {
                Err(Exit::Observed { exc, at }) => {
                    let is_attr_error =
                        exc.cls
                            .bind(py)
                            .cast::<pyo3::types::PyType>()
                            .is_ok_and(|t| {
                                t.is_subclass_of::<pyo3::exceptions::PyAttributeError>()
                                    .unwrap_or(false)
                            });
                    let getattr = o.obj.bind(py).get_type().getattr("__getattr__").ok();
                    match (is_attr_error, getattr) {
                        (true, Some(g)) => {
                            let g = tx.realize(&g, class_member_source(tx, o, "__getattr__"))?;
                            crate::interp::families::call(
                                tx,
                                &g,
                                vec![whole.clone(), key],
                                Vec::new(),
                            )
                        }
                        _ => Err(Exit::Observed { exc, at }),
                    }
                }
                r => r,
            }
        }
        AT_DESCRIPTOR => descriptor_get(tx, whole, o, name, &value),
        AT_GETATTR => {
            // Valid while the name stays absent from the instance dict and the class. An
            // object made in the trace keeps its attributes in the side-effect store (read
            // before this lookup): only its class needs the guard.
            if o.kind == KIND_CLASS {
                // A metaclass `__getattr__` (`C.name` for a class `C`): valid while the name
                // stays absent from the dicts of `C`'s MRO (the metaclass's is below).
                guard_absent_from_mro(tx, o, name)?;
            } else if o.source.is_some() {
                guard_not_shadowed(tx, o, name);
            }
            let cls = class_source(tx, o);
            let fsrc = class_member_source(tx, o, "__getattr__");
            let Some(cls) = cls else {
                return Err(Exit::brk(format!(
                    "attribute '{name}' resolved through __getattr__ of an unguarded class"
                )));
            };
            tx.guard(&cls, Guard::HasAttr(name.to_string(), false));
            let f = tx.realize(&value, fsrc)?;
            let key = Value::constant(py, name);
            crate::interp::families::call(tx, &f, vec![whole.clone(), key], Vec::new())
        }
        AT_PROPERTY => {
            let fsrc = source.map(|s| {
                Arc::new(Source::Attr {
                    base: s,
                    name: "fget".into(),
                })
            });
            let fget = tx.realize(&value, fsrc)?;
            crate::interp::families::call(tx, &fget, vec![whole.clone()], Vec::new())
        }
        _ => tx.realize(&value, source),
    }
}

/// `name` was found on `o`'s class: an instance attribute of that name, set later, would
/// shadow it, so guard its absence from the instance dict (objects that have one).
/// Guards that `name` is in no `__dict__` of the class `o`'s MRO (builtin classes, whose
/// dicts cannot change, are skipped): `C.__dict__`, `C.__mro__[i].__dict__`.
fn guard_absent_from_mro(tx: &mut Tracer<'_>, o: &ObjVal, name: &str) -> TResult<()> {
    let py = tx.py;
    let Some(src) = o.source.clone() else {
        return Err(Exit::brk(format!(
            "attribute '{name}' resolved through a metaclass __getattr__ of an unguarded class"
        )));
    };
    let mro = o
        .obj
        .bind(py)
        .getattr("__mro__")
        .and_then(|m| m.cast_into::<pyo3::types::PyTuple>().map_err(Into::into))
        .map_err(|e| tx.err(e))?;
    let mro_src = Arc::new(Source::Attr {
        base: src.clone(),
        name: "__mro__".into(),
    });
    for (i, klass) in mro.iter().enumerate() {
        // SAFETY: reads the flags of a live type object.
        let heap = unsafe {
            (*klass.as_ptr().cast::<ffi::PyTypeObject>()).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE != 0
        };
        if !heap {
            continue;
        }
        let base = if i == 0 {
            src.clone()
        } else {
            Arc::new(Source::Index {
                base: mro_src.clone(),
                index: i as isize,
            })
        };
        tx.guard(
            &Arc::new(Source::InstDict { base }),
            Guard::NotInDict(name.to_string()),
        );
    }
    Ok(())
}

fn guard_not_shadowed(tx: &mut Tracer<'_>, o: &ObjVal, name: &str) {
    if let Some(base) = &o.source {
        // SAFETY: reads the type slot of a live object.
        let has_dict = unsafe { (*ffi::Py_TYPE(o.obj.as_ptr())).tp_dictoffset != 0 };
        if has_dict {
            let inst = Arc::new(Source::InstDict { base: base.clone() });
            tx.guard(&inst, Guard::NotInDict(name.to_string()));
        }
    }
}

/// `obj.name` resolved to a descriptor whose type defines `__get__` in Python: a traced call
/// of `type(d).__get__(d, obj, type(obj))`, never run here. The descriptor is read from
/// `type(obj).__mro__[i].__dict__[name]` (a source that runs no descriptor).
fn descriptor_get(
    tx: &mut Tracer<'_>,
    whole: &Value,
    o: &ObjVal,
    name: &str,
    found: &Bound<'_, PyAny>,
) -> TResult<Value> {
    let py = tx.py;
    let (descr, idx): (Py<PyAny>, isize) = found.extract().map_err(|e| tx.err(e))?;
    let descr = descr.bind(py).clone();
    let ty_src = o
        .source
        .as_ref()
        .map(|b| Arc::new(Source::TypeOf { base: b.clone() }));
    let descr_src = ty_src.as_ref().map(|t| mro_dict_item(t, idx, name));
    guard_not_shadowed(tx, o, name);
    let get_src = descr_src.as_ref().map(|d| {
        Arc::new(Source::Attr {
            base: Arc::new(Source::TypeOf { base: d.clone() }),
            name: "__get__".into(),
        })
    });
    let get = descr.get_type().getattr("__get__").map_err(|e| tx.err(e))?;
    let d = tx.realize(&descr, descr_src)?;
    let f = tx.realize(&get, get_src)?;
    let ty = tx.realize(&o.obj.bind(py).get_type().into_any(), ty_src)?;
    crate::interp::families::call(tx, &f, vec![d, whole.clone(), ty], Vec::new())
}

/// `super().name`: found on the classes after `cls` in the receiver's MRO.
pub(crate) fn super_attr(
    tx: &mut Tracer<'_>,
    cls: &Py<PyAny>,
    this: &Value,
    name: &str,
) -> TResult<Value> {
    let py = tx.py;
    let (obj, src) = match this {
        Value::Object(o) => (o.obj.bind(py).clone(), o.source.clone()),
        Value::Exception(e) => return super::exceptions::super_attr(tx, cls, this, e, name),
        Value::Tensor(_) => return super::tensor_subclass::super_attr(tx, cls, this, name),
        other => {
            return Err(Exit::brk(format!(
                "super() with a '{}' receiver",
                other.type_name(py)
            )))
        }
    };
    let r = tx
        .hooks
        .super_lookup
        .bind(py)
        .call1((cls.bind(py), &obj, name));
    let (kind, raw, idx): (i64, Bound<'_, PyAny>, isize) = match r {
        Ok(r) => r.extract().map_err(|e| tx.err(e))?,
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => {
            return Err(Exit::brk(format!("{} (AttributeError)", e.value(py))))
        }
        Err(e) => return Err(tx.err(e)),
    };
    // In a classmethod the receiver is the class itself: its own MRO is searched, a plain
    // function stays unbound and a classmethod binds to it.
    let receiver_is_class = obj.is_instance_of::<pyo3::types::PyType>();
    // type(self).__mro__[idx].name (cls.__mro__[idx].name), guarded like any class
    // attribute.
    let source = src.map(|s| {
        let owner = if receiver_is_class {
            s
        } else {
            Arc::new(Source::TypeOf { base: s })
        };
        Arc::new(Source::Attr {
            base: Arc::new(Source::Index {
                base: Arc::new(Source::Attr {
                    base: owner,
                    name: "__mro__".into(),
                }),
                index: idx,
            }),
            name: name.to_string(),
        })
    });
    match kind {
        0 if receiver_is_class => tx.realize(&raw, source),
        0 => {
            let f = tx.realize(&raw, source)?;
            Ok(Value::BoundMethod(Rc::new((this.clone(), f))))
        }
        1 => tx.realize(&raw, None),
        2 => {
            let f = tx.realize(&raw, None)?;
            let ty = if receiver_is_class {
                this.clone()
            } else {
                tx.realize(&obj.get_type().into_any(), None)?
            };
            Ok(Value::BoundMethod(Rc::new((ty, f))))
        }
        4 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            "__getattribute__".to_string(),
        )))),
        5 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            name.to_string(),
        )))),
        6 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            "object.__init__".to_string(),
        )))),
        7 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            "object.__setattr__".to_string(),
        )))),
        8 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            "object.__delattr__".to_string(),
        )))),
        9 => Ok(Value::BuiltinMethod(Rc::new((
            this.clone(),
            "container.__init__".to_string(),
        )))),
        10 => {
            let shadow = match this {
                Value::Object(o) => super::containers::list_shadow(tx, o)?,
                _ => None,
            };
            match shadow {
                Some(l) => Ok(Value::BuiltinMethod(Rc::new((
                    Value::List(l),
                    name.to_string(),
                )))),
                None => Err(Exit::brk(format!(
                    "super().{name} on a list subclass whose contents are not modelled"
                ))),
            }
        }
        _ => tx.realize(&raw, source),
    }
}

/// An attribute of a function made in the trace: one set in the trace, or what CPython's
/// function object would answer from its code, globals and MAKE_FUNCTION operands.
pub(crate) fn new_function_attr(
    tx: &mut Tracer<'_>,
    f: &Rc<super::value::FuncVal>,
    name: &str,
) -> TResult<Value> {
    let py = tx.py;
    if let Some((_, v)) = f.attrs.borrow().iter().rev().find(|(k, _)| k == name) {
        return Ok(v.clone());
    }
    let code = f.spec.code.bind(py);
    let from_code = |attr: &str| -> TResult<Value> {
        let v = code.getattr(attr).map_err(|e| tx.err(e))?;
        Ok(Value::Const(v.unbind()))
    };
    match name {
        "__name__" => from_code("co_name"),
        "__qualname__" => from_code("co_qualname"),
        "__code__" => Ok(Value::Const(code.clone().unbind())),
        // 3.12: a function made without a type-parameter list has none.
        "__type_params__" if PyVersion::CURRENT != PyVersion::V3_11 => {
            Ok(Value::new_tuple(Vec::new()))
        }
        "__module__" => {
            let m = f
                .globals
                .bind(py)
                .get_item("__name__")
                .unwrap_or_else(|_| py.None().into_bound(py));
            Ok(Value::Const(m.unbind()))
        }
        "__doc__" => {
            // CPython: the first constant, when it is a string.
            let first = code
                .getattr("co_consts")
                .and_then(|c| c.get_item(0))
                .ok()
                .filter(|c| c.is_instance_of::<pyo3::types::PyString>());
            Ok(Value::Const(
                first.unwrap_or_else(|| py.None().into_bound(py)).unbind(),
            ))
        }
        "__defaults__" => Ok(match &f.defaults {
            Some(d) if !d.is_empty() => Value::new_tuple(d.clone()),
            _ => Value::none(py),
        }),
        "__kwdefaults__" => Ok(match &f.kwdefaults {
            Some(k) if !k.is_empty() => Value::new_dict_from(
                k.iter()
                    .map(|(n, v)| {
                        (
                            pyo3::types::PyString::new(py, n).into_any().unbind(),
                            v.clone(),
                        )
                    })
                    .collect(),
            ),
            _ => Value::none(py),
        }),
        "__annotations__" => {
            // MAKE_FUNCTION's flat (name, value, ...) tuple as a dict (a fresh one here).
            let flat = match &f.annotations {
                Some(a) => super::iter::unpack(tx, a)?,
                None => Vec::new(),
            };
            let mut items = Vec::new();
            for pair in flat.chunks(2) {
                if let [k, v] = pair {
                    let key = tx
                        .as_python_constant(k)
                        .ok_or_else(|| Exit::brk("annotations with a non-constant name"))?;
                    items.push((key.unbind(), v.clone()));
                }
            }
            let d = Value::new_dict_from(items);
            tx.add_orphan(&d);
            Ok(d)
        }
        "__dict__" => {
            // A snapshot of the attributes (read-only here: writing through it breaks).
            let mut items = Vec::new();
            for (k, v) in f.attrs.borrow().iter() {
                if !k.starts_with("__") || !k.ends_with("__") || k == "__wrapped__" {
                    let key = pyo3::types::PyString::new(py, k).into_any().unbind();
                    items.push((key, v.clone()));
                }
            }
            let d = Value::new_dict_from(items);
            tx.add_orphan(&d);
            Ok(d)
        }
        _ => Err(super::exceptions::raise_builtin(
            py,
            "AttributeError",
            format!("'function' object has no attribute '{name}'"),
        )),
    }
}

/// A class attribute stored in this trace, read through an instance or a subclass: the real
/// class does not have it yet, so the lookup below would find the old value: break.
pub(crate) fn inherited_pending_store(tx: &Tracer<'_>, o: &ObjVal, name: &str) -> TResult<()> {
    if !tx.side_effects.has_class_stores() {
        return Ok(());
    }
    let py = tx.py;
    let obj = o.obj.bind(py);
    let mro = if o.kind == KIND_CLASS {
        obj.getattr("__mro__")
    } else {
        obj.get_type().getattr("__mro__")
    };
    let Ok(mro) = mro else {
        return Ok(());
    };
    let Ok(it) = mro.try_iter() else {
        return Ok(());
    };
    for base in it.flatten() {
        if base.is(obj) {
            continue;
        }
        if tx
            .side_effects
            .pending_attr(
                crate::side_effects::store::ptr_of(&base.clone().unbind()),
                name,
            )
            .is_some()
        {
            return Err(Exit::brk(format!(
                "reading '{name}', a class attribute stored earlier in the trace, through a \
                 subclass or an instance"
            )));
        }
    }
    Ok(())
}

/// `(type(d).<hook>, d)` for the descriptor `d` that `type(o)` defines as `name`, found in
/// the class dicts along the MRO (never through `getattr`, which would run `d.__get__`),
/// each read through a guarded source: `type(o).__mro__[i].__dict__[name]`.
pub(crate) fn class_descriptor_hook(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    name: &str,
    hook: &str,
) -> TResult<(Value, Value)> {
    let py = tx.py;
    let Some(base) = &o.source else {
        return Err(Exit::brk(format!(
            "a descriptor '{name}' of an object made in the compiled region"
        )));
    };
    let ty = o.obj.bind(py).get_type();
    let mro = ty.mro();
    let found = mro.iter().enumerate().find_map(|(i, k)| {
        k.getattr("__dict__")
            .ok()
            .and_then(|d| d.get_item(name).ok())
            .map(|d| (i, d))
    });
    let Some((idx, descr)) = found else {
        return Err(Exit::brk(format!(
            "descriptor '{name}' not found on the class"
        )));
    };
    let descr_src = mro_dict_item(
        &Arc::new(Source::TypeOf { base: base.clone() }),
        idx as isize,
        name,
    );
    let hook_src = Arc::new(Source::Attr {
        base: Arc::new(Source::TypeOf {
            base: descr_src.clone(),
        }),
        name: hook.to_string(),
    });
    let f = descr.get_type().getattr(hook).map_err(|e| tx.err(e))?;
    let d = tx.realize(&descr, Some(descr_src))?;
    let f = tx.realize(&f, Some(hook_src))?;
    Ok((f, d))
}

/// `ty.__mro__[idx].__dict__[name]`: a class attribute read from the dict of the class that
/// defines it (no descriptor protocol, no user code).
pub(crate) fn mro_dict_item(ty: &Arc<Source>, idx: isize, name: &str) -> Arc<Source> {
    Arc::new(Source::DictItem {
        base: Arc::new(Source::InstDict {
            base: Arc::new(Source::Index {
                base: Arc::new(Source::Attr {
                    base: ty.clone(),
                    name: "__mro__".into(),
                }),
                index: idx,
            }),
        }),
        key: DictKey::Str(name.to_string()),
    })
}

/// Whether `type(o)` has a data descriptor (a `__set__` or `__delete__`) named `name`: it
/// takes precedence over the instance dict on reads.
pub fn class_data_descriptor(tx: &Tracer<'_>, o: &ObjVal, name: &str) -> bool {
    let cls = o.obj.bind(tx.py).get_type();
    super::calls::class_raw_attr(&cls, name).is_some_and(|attr| {
        let t = attr.get_type();
        t.hasattr("__set__").unwrap_or(true) || t.hasattr("__delete__").unwrap_or(true)
    })
}

/// The item index behind `cls.name` when it is a namedtuple field accessor
/// (`collections._tuplegetter`, whose `__reduce__` gives `(type, (index, doc))`).
pub(crate) fn tuple_getter_index(tx: &Tracer<'_>, cls: &Py<PyAny>, name: &str) -> Option<usize> {
    let py = tx.py;
    let cls = cls.bind(py).cast::<pyo3::types::PyType>().ok()?;
    let attr = super::calls::class_raw_attr(cls, name)?;
    let ty = attr.get_type();
    // The type's module reads `_collections` on 3.11, `collections` from 3.12.
    let module = ty.module().ok()?;
    if ty.name().ok()? != "_tuplegetter" || (module != "_collections" && module != "collections") {
        return None;
    }
    let reduced = attr.call_method0("__reduce__").ok()?;
    reduced.get_item(1).ok()?.get_item(0).ok()?.extract().ok()
}
