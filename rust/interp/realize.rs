//! Realization: a real Python object read from a source becomes a symbolic value, with
//! exactly the guards that keep the trace valid for later calls (by kind: constants by
//! value, tensors by metadata, containers by length and items, functions by code and
//! closure, objects by type), memoized per source; one value per real mutable object or
//! tuple however it is reached (identity guards between the sources).

use crate::ImportCached;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::exit::{Exit, TResult};
use super::kinds::*;
use super::tracer::{dict_key, external_cell, Tracer};
use super::value::{DictVal, FuncVal, GlobalsAccess, ListVal, ObjVal, SourceRef, Value};
use crate::guards::{Guard, Source};
use crate::side_effects::store::ptr_of;
use crate::spec_cache::SPEC_CACHE;

impl<'py> Tracer<'py> {
    /// The value of entry `i` of `d`, realized (with its guards) if it had not been read.
    pub fn dict_entry_at(&mut self, d: &DictVal, i: usize) -> TResult<Value> {
        let entry = d.entries.borrow().get(i).map(|(_, v)| v.clone());
        match entry {
            Some(Value::Lazy(l)) => {
                let obj = l.obj.bind(self.py).clone();
                let v = self.realize(&obj, Some(l.source.clone()))?;
                if let Some(slot) = d.entries.borrow_mut().get_mut(i) {
                    if matches!(&slot.1, Value::Lazy(m) if Rc::ptr_eq(m, &l)) {
                        slot.1 = v.clone();
                    }
                }
                Ok(v)
            }
            Some(v) => Ok(v),
            None => Err(Exit::internal("dict entry index out of range")),
        }
    }

    /// `d[key]` for a constant key, if present (realized if it had not been read).
    pub fn dict_get(&mut self, d: &DictVal, key: &Bound<'_, PyAny>) -> TResult<Option<Value>> {
        match d.position(self.py, key) {
            Some(i) => self.dict_entry_at(d, i).map(Some),
            None => Ok(None),
        }
    }

    /// Every entry realized: the (key, value) pairs in order.
    pub fn dict_items(&mut self, d: &DictVal) -> TResult<Vec<(Py<PyAny>, Value)>> {
        let n = d.len();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let v = self.dict_entry_at(d, i)?;
            let k = d.entries.borrow().get(i).map(|(k, _)| k.clone_ref(self.py));
            match k {
                Some(k) => out.push((k, v)),
                None => return Err(Exit::internal("dict changed while its entries were read")),
            }
        }
        Ok(out)
    }

    /// Realize every entry of `d` not read yet.
    pub fn force_dict(&mut self, d: &DictVal) -> TResult<()> {
        if d.has_lazy() {
            self.dict_items(d)?;
        }
        Ok(())
    }

    /// A symbolic value for a real object read from `source` (None: not guardable, e.g.
    /// a torch-internal global). Memoized per source.
    pub fn realize(&mut self, obj: &Bound<'py, PyAny>, source: SourceRef) -> TResult<Value> {
        let _depth = self.nesting()?;
        stacker::maybe_grow(64 * 1024, 4 * 1024 * 1024, || {
            self.realize_inner(obj, source)
        })
    }

    fn realize_inner(&mut self, obj: &Bound<'py, PyAny>, source: SourceRef) -> TResult<Value> {
        if let Some(s) = &source {
            if let Some(v) = self.memo.get(s) {
                return Ok(v.clone());
            }
        }
        let kind = self.classify(obj)?;
        if let (Some(s), KIND_TUPLE) = (&source, kind) {
            // The same tuple reached through two sources is one value (`t is u` holds),
            // on the condition, checked every call, that both still give one object.
            if let Some((first_src, first)) = self.tuple_origin.get(&(obj.as_ptr() as usize)) {
                let (first_src, first) = (first_src.clone(), first.clone());
                if first_src != *s {
                    self.identity.push((first_src, s.clone(), true));
                }
                self.memo.insert(s.clone(), first.clone());
                return Ok(first);
            }
        }
        let mut v = self.realize_kind(obj, kind, &source)?;
        if let (Some(s), KIND_TUPLE, Value::Tuple(t)) = (&source, kind, &v) {
            self.tuple_origin
                .insert(obj.as_ptr() as usize, (s.clone(), v.clone()));
            self.tuple_sources
                .insert(Rc::as_ptr(t) as *const u8 as usize, s.clone());
        }
        if let (Some(s), KIND_LIST | KIND_DICT | KIND_OBJECT | KIND_NN_MODULE) = (&source, kind) {
            // One mirror per real mutable object, however it is reached (a write through
            // one name is seen through the others); the guards above still cover `s`.
            let p = ptr_of(&obj.clone().unbind());
            match self.side_effects.realized.get(&p) {
                Some((first_src, first)) => {
                    // The same object through two sources: later calls must give one
                    // object through both too (identity, `is` and id() were folded).
                    if first_src != s {
                        self.identity.push((first_src.clone(), s.clone(), true));
                    }
                    v = first.clone()
                }
                None => {
                    self.side_effects.realized.insert(p, (s.clone(), v.clone()));
                }
            }
            self.side_effects.realized_sources.push((s.clone(), p));
        }
        if let Some(s) = source {
            self.memo.insert(s, v.clone());
        }
        Ok(v)
    }

    fn realize_kind(
        &mut self,
        obj: &Bound<'py, PyAny>,
        kind: i64,
        source: &SourceRef,
    ) -> TResult<Value> {
        let py = self.py;
        if kind == KIND_OBJECT {
            if let Some(v) = super::stdlib_set::realize_input_set(self, obj, source)? {
                return Ok(v);
            }
        }
        match kind {
            KIND_CONST => {
                if let Some(s) = source {
                    if let Some(v) = self.dynamic_int_input(obj, s)? {
                        return Ok(v);
                    }
                    if obj.is_exact_instance_of::<pyo3::types::PyFrozenSet>() {
                        // Equal frozensets can iterate in different orders: the order (by
                        // C iteration) pins both the contents and what iterating yields.
                        let order = super::stdlib_set::c_members(obj)
                            .ok_or_else(|| Exit::internal("frozenset members"))?;
                        let order =
                            pyo3::types::PyTuple::new(self.py, order).map_err(|e| self.err(e))?;
                        let at = Arc::new(Source::SetOrder { base: s.clone() });
                        self.guard(&at, Guard::Equals(order.into_any().unbind()));
                    } else {
                        self.guard(s, Guard::Equals(obj.clone().unbind()));
                    }
                }
                Ok(Value::Const(obj.clone().unbind()))
            }
            KIND_TENSOR => {
                let Some(s) = source else {
                    return Err(Exit::brk(
                        "a tensor that is not reachable from the function's arguments or globals \
                         (tensor constants are not supported yet)",
                    ));
                };
                // The same tensor reached through two sources (`attn(x, x, x)`, a module
                // attribute and a weak reference to it) is one graph input, on the condition,
                // checked every call, that both sources still give one object.
                let key = obj.as_ptr() as usize;
                if let Some((first_src, var)) = self.tensor_inputs.get(&key).cloned() {
                    self.identity.push((first_src, s.clone(), true));
                    return Ok(Value::Tensor(var));
                }
                let meta = super::tensor_subclass::input_meta(self, obj)?;
                let var = self.graph_input(obj, s, meta)?;
                let type_source = Some(Arc::new(Source::TypeOf { base: s.clone() }));
                super::tensor_subclass::register(
                    self,
                    &var,
                    &obj.get_type().into_any(),
                    type_source,
                )?;
                super::tensor_subclass::set_input(self, &var, s, obj);
                self.tensor_inputs
                    .insert(key, (s.clone(), var.clone().unbind()));
                Ok(Value::Tensor(var.unbind()))
            }
            KIND_TUPLE | KIND_LIST => {
                let items = self.realize_items(obj, source)?;
                if let Some(s) = source {
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                    self.guard(s, Guard::Len(items.len()));
                }
                if kind == KIND_TUPLE {
                    Ok(Value::Tuple(Rc::new(items)))
                } else {
                    let v = Value::List(Rc::new(ListVal {
                        items: items.into(),
                        source: source.clone(),
                    }));
                    if source.is_none() {
                        self.add_orphan(&v);
                    }
                    Ok(v)
                }
            }
            KIND_NAMEDTUPLE => {
                let items = self.realize_items(obj, source)?;
                if let Some(s) = source {
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                }
                self.named_tuple(&obj.get_type().into_any(), items)
            }
            KIND_DICT => {
                let d = obj.cast::<PyDict>().map_err(|e| self.err(e.into()))?;
                let keys: Vec<Py<PyAny>> = d.keys().iter().map(|k| k.unbind()).collect();
                if let Some(s) = source {
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                    self.guard(
                        s,
                        Guard::DictKeys(keys.iter().map(|k| k.clone_ref(py)).collect()),
                    );
                }
                let mut items = Vec::with_capacity(keys.len());
                for (k, v) in d.iter() {
                    let sub = match source {
                        Some(s) => dict_key(&k).map(|key| {
                            Arc::new(Source::DictItem {
                                base: s.clone(),
                                key,
                            })
                        }),
                        None => None,
                    };
                    if source.is_some() && sub.is_none() {
                        return Err(Exit::brk(
                            "a dict argument with keys that are not str or int",
                        ));
                    }
                    // Entries are read (realized and guarded) only when the trace uses them.
                    let val = match sub {
                        Some(s) => Value::Lazy(Rc::new(super::value::LazyVal {
                            obj: v.unbind(),
                            source: s,
                        })),
                        None => self.realize(&v, None)?,
                    };
                    items.push((k.unbind(), val));
                }
                let v = Value::Dict(Rc::new(DictVal {
                    entries: items.into(),
                    source: source.clone(),
                }));
                if source.is_none() {
                    self.add_orphan(&v);
                }
                Ok(v)
            }
            KIND_NDARRAY => {
                if let Some(s) = source {
                    if let Some(v) = super::numpy_arrays::input(self, obj, s)? {
                        return Ok(v);
                    }
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                }
                // NumPy tracing off (or an array no tensor can hold): an opaque object.
                Ok(Value::Object(Rc::new(ObjVal {
                    obj: obj.clone().unbind(),
                    kind: KIND_OBJECT,
                    source: source.clone(),
                })))
            }
            KIND_FUNCTION => {
                if let Some(s) = source {
                    self.function_identity_guards(obj, s)?;
                    // A function object keeps its identity when `f.__code__` is replaced.
                    let code = obj.getattr("__code__").map_err(|e| self.err(e))?;
                    let code_src = Arc::new(Source::Attr {
                        base: s.clone(),
                        name: "__code__".into(),
                    });
                    self.guard(&code_src, Guard::IdMatch(code.unbind()));
                }
                self.function_value(obj, source.clone())
            }
            KIND_METHOD => {
                let this = obj.getattr("__self__").map_err(|e| self.err(e))?;
                let func = obj.getattr("__func__").map_err(|e| self.err(e))?;
                let self_src = source.as_ref().map(|s| {
                    Arc::new(Source::Attr {
                        base: s.clone(),
                        name: "__self__".into(),
                    })
                });
                let func_src = source.as_ref().map(|s| {
                    Arc::new(Source::Attr {
                        base: s.clone(),
                        name: "__func__".into(),
                    })
                });
                let this_v = self.realize(&this, self_src)?;
                let func_v = self.realize(&func, func_src)?;
                Ok(Value::BoundMethod(Rc::new((this_v, func_v))))
            }
            KIND_UNSUPPORTED if is_builtin_method_of_value(obj) => {
                // `lst.append`, `d.get`, `t.add_` held as a value: a method of the modelled
                // receiver, read through `__self__` (so it needs no identity guard).
                let this = obj.getattr("__self__").map_err(|e| self.err(e))?;
                let name: String = obj
                    .getattr("__name__")
                    .and_then(|n| n.extract())
                    .map_err(|e| self.err(e))?;
                let self_src = source.as_ref().map(|s| {
                    Arc::new(Source::Attr {
                        base: s.clone(),
                        name: "__self__".into(),
                    })
                });
                if let Some(s) = source {
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                }
                let recv = self.realize(&this, self_src)?;
                Ok(Value::BuiltinMethod(Rc::new((recv, name))))
            }
            KIND_UNSUPPORTED if is_c_classmethod(obj) => {
                // `OrderedDict.fromkeys`, `dict.fromkeys`: a fresh bound method on each
                // access, so guard what it is (the class and the name), not its identity.
                if let Some(s) = source {
                    self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
                    for (attr, g) in [
                        (
                            "__self__",
                            Guard::IdMatch(
                                obj.getattr("__self__").map_err(|e| self.err(e))?.unbind(),
                            ),
                        ),
                        (
                            "__name__",
                            Guard::Equals(
                                obj.getattr("__name__").map_err(|e| self.err(e))?.unbind(),
                            ),
                        ),
                    ] {
                        let sub = Arc::new(Source::Attr {
                            base: s.clone(),
                            name: attr.into(),
                        });
                        self.guard(&sub, g);
                    }
                }
                Ok(Value::Object(Rc::new(ObjVal {
                    obj: obj.clone().unbind(),
                    kind,
                    source: source.clone(),
                })))
            }
            _ => {
                if let Some(s) = source {
                    // User objects and modules are matched by class, as torch.compile
                    // does (its modules are unspecialized): what the trace reads of them is
                    // guarded where it is read, so one graph serves every instance alike
                    // (the layers of a model, a block compiled once and called per layer).
                    let g = if kind == KIND_OBJECT || kind == KIND_NN_MODULE {
                        Guard::TypeMatch(obj.get_type().unbind())
                    } else if is_bound_c_method(obj) {
                        // `obj.__reduce_ex__` is a new object at each access: equal (same
                        // receiver, same C function) is what stays true.
                        Guard::Equals(obj.clone().unbind())
                    } else {
                        Guard::IdMatch(obj.clone().unbind())
                    };
                    self.guard(s, g);
                }
                Ok(Value::Object(Rc::new(ObjVal {
                    obj: obj.clone().unbind(),
                    kind,
                    source: source.clone(),
                })))
            }
        }
    }

    /// A tensor read from `s` as a graph input, guarded by its metadata (`meta`; the sizes
    /// dynamic shapes made symbolic are left to the shape guard).
    pub(super) fn graph_input(
        &mut self,
        tensor: &Bound<'py, PyAny>,
        s: &Arc<Source>,
        mut meta: crate::guards::TensorMeta,
    ) -> TResult<Bound<'py, PyAny>> {
        let var = self
            .gb
            .call_method1("add_input", (tensor, s.render()))
            .map_err(|e| self.err(e))?;
        let dynamic = self
            .gb
            .call_method1("dynamic_dims", (&var,))
            .map_err(|e| self.err(e))?;
        if !dynamic.is_none() {
            let (sizes, strides): (Vec<usize>, Vec<usize>) =
                dynamic.extract().map_err(|e| self.err(e))?;
            meta.relax(&sizes, &strides);
        }
        self.guard(s, Guard::Tensor(meta));
        self.inputs.push(s.clone());
        Ok(var)
    }

    /// Realize the items of a sequence read from `source`, each through `source[i]`.
    fn realize_items(
        &mut self,
        obj: &Bound<'py, PyAny>,
        source: &SourceRef,
    ) -> TResult<Vec<Value>> {
        let seq: Vec<Bound<'py, PyAny>> = obj
            .try_iter()
            .and_then(|it| it.collect::<PyResult<_>>())
            .map_err(|e| self.err(e))?;
        let mut items = Vec::with_capacity(seq.len());
        for (i, item) in seq.iter().enumerate() {
            let sub = source.as_ref().map(|s| {
                Arc::new(Source::Index {
                    base: s.clone(),
                    index: i as isize,
                })
            });
            items.push(self.realize(item, sub)?);
        }
        Ok(items)
    }

    /// Guards for a function object reached from `s` (besides its `__code__`, guarded by
    /// the caller). A closure (a function with `__closure__`) is usually created anew on
    /// every call of its outer function, so, as torch.compile does, it is matched by code,
    /// not identity: its cells, defaults and globals are guarded where the trace reads
    /// them, and the shape of its defaults here. Other functions are matched by identity.
    fn function_identity_guards(
        &mut self,
        obj: &Bound<'py, PyAny>,
        s: &Arc<Source>,
    ) -> TResult<()> {
        let closure = obj.getattr("__closure__").map_err(|e| self.err(e))?;
        if closure.is_none() {
            self.guard(s, Guard::IdMatch(obj.clone().unbind()));
            return Ok(());
        }
        self.guard(s, Guard::TypeMatch(obj.get_type().unbind()));
        for attr in ["__defaults__", "__kwdefaults__"] {
            let v = obj.getattr(attr).map_err(|e| self.err(e))?;
            let src = Arc::new(Source::Attr {
                base: s.clone(),
                name: attr.into(),
            });
            if v.is_none() {
                self.guard(&src, Guard::IdMatch(v.unbind()));
                continue;
            }
            self.guard(&src, Guard::TypeMatch(v.get_type().unbind()));
            if let Ok(d) = v.cast::<PyDict>() {
                self.guard(
                    &src,
                    Guard::DictKeys(d.keys().iter().map(Bound::unbind).collect()),
                );
            } else {
                let n = v.len().map_err(|e| self.err(e))?;
                self.guard(&src, Guard::Len(n));
            }
        }
        Ok(())
    }

    /// A user function value. Defaults are read lazily at call time (see calls.rs).
    pub fn function_value(&mut self, obj: &Bound<'py, PyAny>, source: SourceRef) -> TResult<Value> {
        let spec_of = |code: &Bound<'py, PyAny>| {
            SPEC_CACHE.get(code).map_err(|e| Exit::Skip {
                reason: format!("cannot decode code object: {e}"),
            })
        };
        let code = obj.getattr("__code__").map_err(|e| self.err(e))?;
        let mut spec = spec_of(&code)?;
        // Once torch._dynamo is imported, `nn.Module.__init__` is its wrapper that tags each
        // module for Dynamo's own bookkeeping: the original it wraps is traced (as
        // torch.compile does); guards still see the wrapper at its source.
        let unpatched = if spec.name == "patched_init" {
            dynamo_unpatched_init(obj)
        } else {
            None
        };
        let target = unpatched.as_ref().unwrap_or(obj);
        if unpatched.is_some() {
            spec = spec_of(&target.getattr("__code__").map_err(|e| self.err(e))?)?;
        }
        let globals = target.getattr("__globals__").map_err(|e| self.err(e))?;
        let mut closure = Vec::new();
        let cells = target.getattr("__closure__").map_err(|e| self.err(e))?;
        let source_cells = if unpatched.is_some() {
            None
        } else {
            source.clone()
        };
        if !cells.is_none() {
            for (i, cell) in cells.try_iter().map_err(|e| self.err(e))?.enumerate() {
                let cell = cell.map_err(|e| self.err(e))?;
                let src = source_cells.as_ref().map(|s| {
                    Arc::new(Source::Attr {
                        base: Arc::new(Source::Index {
                            base: Arc::new(Source::Attr {
                                base: s.clone(),
                                name: "__closure__".into(),
                            }),
                            index: i as isize,
                        }),
                        name: "cell_contents".into(),
                    })
                });
                closure.push(external_cell(cell.unbind(), src));
            }
        }
        let globals_source = if globals.is(self.root_globals.bind(self.py)) {
            GlobalsAccess::Root
        } else if is_torch_internal(target) {
            GlobalsAccess::Unguarded
        } else {
            match &source {
                Some(s) => GlobalsAccess::Via(Arc::new(Source::Attr {
                    base: s.clone(),
                    name: "__globals__".into(),
                })),
                None => GlobalsAccess::Unguarded,
            }
        };
        Ok(Value::Function(Rc::new(FuncVal {
            obj: Some(obj.clone().unbind()),
            spec,
            globals: globals.unbind(),
            defaults: None,
            kwdefaults: None,
            closure,
            source,
            globals_source,
            annotations: None,
            attrs: Default::default(),
        })))
    }
}

/// `obj` (a function whose code is named `patched_init`) when it is
/// `torch._dynamo.mutation_guard`'s wrapper of `nn.Module.__init__` (installed when
/// torch._dynamo is imported): the original `__init__` it wraps. The module is only read
/// when already loaded.
fn dynamo_unpatched_init<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = obj.py();
    let guard = py
        .import_cached("sys")
        .ok()?
        .getattr("modules")
        .ok()?
        .get_item("torch._dynamo.mutation_guard")
        .ok()?;
    let module = py.import_cached("torch.nn").ok()?.getattr("Module").ok()?;
    if !module.getattr("__init__").ok()?.is(obj) {
        return None;
    }
    guard.getattr("unpatched_nn_module_init").ok()
}

/// Code from torch's own modules: its globals are trusted not to be monkeypatched, so
/// reads of them install no guards (this keeps module-heavy guard trees small).
fn is_torch_internal(func: &Bound<'_, PyAny>) -> bool {
    func.getattr("__module__")
        .ok()
        .and_then(|m| m.extract::<String>().ok())
        .is_some_and(|m| m == "torch" || m.starts_with("torch."))
}

/// A C method bound to an instance (`obj.__reduce_ex__`, `lst.append`): made anew at each
/// attribute access, compared by receiver and function.
fn is_bound_c_method(obj: &Bound<'_, PyAny>) -> bool {
    let ty = obj.get_type();
    let Ok(name) = ty.name() else {
        return false;
    };
    if name != "builtin_function_or_method" && name != "method-wrapper" {
        return false;
    }
    obj.getattr("__self__")
        .is_ok_and(|s| !s.is_none() && !s.is_instance_of::<pyo3::types::PyModule>())
}

/// A C method bound to a class (`OrderedDict.fromkeys`).
fn is_c_classmethod(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    obj.get_type().is(py.get_type::<pyo3::types::PyCFunction>())
        && obj
            .getattr("__self__")
            .is_ok_and(|s| s.is_instance_of::<pyo3::types::PyType>())
}

/// A builtin method bound to a list, dict or tensor (whose methods the interpreter models).
fn is_builtin_method_of_value(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    if !obj.get_type().is(py.get_type::<pyo3::types::PyCFunction>()) {
        return false;
    }
    let Ok(this) = obj.getattr("__self__") else {
        return false;
    };
    let t = this.get_type();
    t.is(py.get_type::<PyList>())
        || t.is(py.get_type::<PyDict>())
        || this.is_instance_of::<pyo3::types::PyAny>() && {
            let torch_tensor = py
                .import_cached("torch")
                .and_then(|m| m.getattr("Tensor"))
                .ok();
            torch_tensor.is_some_and(|tt| this.is_instance(&tt).unwrap_or(false))
        }
}
