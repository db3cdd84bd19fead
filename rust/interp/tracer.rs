//! Per-trace state: the graph being built, the guards installed so far, values already
//! read from each source, and the graph's inputs. Turning a real Python object read from a
//! source into a symbolic value (`realize`) lives in `realize.rs`.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;

use super::exit::{from_pyerr, Exit, TResult};
use super::hooks::{hooks, Hooks};
use super::value::{ExternalCell, ListVal, NamedTupleVal, SourceRef, Value};
use crate::guards::{DictKey, Guard, Source};
use crate::side_effects::SideEffects;

pub struct Tracer<'py> {
    pub py: Python<'py>,
    pub hooks: &'py Hooks,
    pub gb: Bound<'py, PyAny>,
    pub guards: Vec<(Arc<Source>, Guard)>,
    guard_keys: HashSet<(Arc<Source>, u8, String)>,
    pub(super) memo: HashMap<Arc<Source>, Value>,
    /// Sources of the graph's placeholders, in order.
    pub inputs: Vec<Arc<Source>>,
    /// The compiled frame's globals dict (identity decides whether globals are guardable).
    pub root_globals: Py<PyAny>,
    pub depth: usize,
    pub max_depth: usize,
    /// Current depth of recursive value walks (see `nesting`).
    nest: Rc<std::cell::Cell<usize>>,
    /// Graph inputs by identity of the real tensor: (first source, its TensorVar).
    pub(super) tensor_inputs: HashMap<usize, (Arc<Source>, Py<PyAny>)>,
    /// Identity constraints between input sources: (a, b, same object?).
    pub identity: Vec<(Arc<Source>, Arc<Source>, bool)>,
    /// The root frame's state before the instruction that broke the graph, if any.
    pub break_snapshot: Option<super::breaks::Snapshot>,
    /// Calls into the graph builder that may add op nodes (bumped at each), and the graph
    /// position last read at that count: snapshots reuse it instead of asking Python.
    pub graph_calls: u64,
    pub graph_mark: Option<(u64, usize)>,
    /// Pending mutations of Python state (never applied while tracing).
    pub side_effects: SideEffects,
    /// The exception being handled (`sys.exc_info()`), set by PUSH_EXC_INFO.
    pub exc_info: Option<Value>,
    /// Class tags of dicts built by stdlib constructors (OrderedDict, defaultdict).
    pub stdlib: super::stdlib::StdState,
    /// torch's error_on_graph_break setting at the current instruction: a graph break
    /// while it is on raises like fullgraph=True (markers.rs).
    pub error_on_break: bool,
    /// The trace stopped at `torch._dynamo.step_unsupported()`.
    pub step_unsupported: bool,
    /// Pre-existing lists and dicts read without a source (through an unguarded path), by
    /// address: mutating one could not be replayed, so it breaks. `orphan_values` keeps
    /// them alive for the trace, so an address is never reused by a new container.
    orphans: HashSet<usize>,
    orphan_values: Vec<Value>,
    /// Generators created in the trace (see `generator_left_in_cleanup`).
    pub generators: Vec<Rc<super::value::GenVal>>,
    /// Pre-existing tuple/list iterators traced through a mirror, by address (see
    /// `iter::seq_iterator_mirror`), and the lists such iterators walk (mutating one
    /// breaks: the mirror holds its items).
    pub iter_mirrors: HashMap<usize, Value>,
    /// List-subclass objects from the inputs whose contents the trace reads or changes
    /// through list's own methods, by address: their contents as a list value
    /// (`containers::list_shadow`).
    pub seq_shadows: HashMap<usize, Rc<ListVal>>,
    /// Mirrors of set-subclass objects from the inputs (`set_objects::shadow`), by object.
    pub set_shadows: HashMap<usize, Value>,
    /// The same for dict-subclass objects changed with dict's own methods
    /// (`containers::sub_dict_read`).
    pub dict_shadows: HashMap<usize, Rc<super::value::DictVal>>,
    pub iterated_lists: HashSet<usize>,
    /// Tuples made in the trace that leave it through more than one reference (a return
    /// value, a split's stack and locals): rebuilt once, so `t is u` holds as in eager
    /// (`output::note_shared_tuples`).
    pub shared_tuples: HashSet<usize>,
    /// Tuples realized from sources: the real tuple's address -> its first source and
    /// value (one value however the object is reached), and each value's source by Rc
    /// address (for `is` between two of them).
    pub tuple_origin: HashMap<usize, (Arc<Source>, Value)>,
    pub tuple_sources: HashMap<usize, Arc<Source>>,
    /// Split points of the root frame passed so far (`Snapshot::ordinal`).
    pub root_split_points: u64,
    /// A re-trace that stops at this split point of the root frame, with this break, before
    /// running its instruction (set when a break inside a callee left side effects that
    /// cannot be rolled back: see `interp::trace_function`).
    pub forced_break: Option<(u64, String, super::exit::Location)>,
    /// Set by a trace that ended that way: the split point to stop at when re-tracing.
    pub retrace: Option<(u64, String, super::exit::Location)>,
    /// Split points of the root frame at an inlined comprehension's start (3.12): the
    /// instruction and the split point's ordinal, each time the trace passed one.
    pub comprehension_starts: Vec<(usize, u64)>,
    /// Forward hooks registered in the trace (`hook_handles.rs`).
    pub hook_registrations: Vec<Rc<super::hook_handles::Registration>>,
    /// Tensor-subclass instances in the trace, by `TensorVar` address (tensor_subclass.rs).
    pub subclass_vars: HashMap<usize, super::tensor_subclass::SubclassVar>,
    /// Open `DisableTorchFunctionSubclass` blocks (subclass dispatch off while > 0).
    pub tf_disabled: u32,
    /// Subclass dispatch was off where the trace started (read with the first subclass
    /// tensor; the global-state snapshot of the cache entry keeps it so).
    pub tf_off_at_start: bool,
    /// NumPy arrays in the trace, by `TensorVar` address (numpy_arrays.rs), and whether a
    /// NumPy node is being recorded (the one place they may reach a graph operation).
    pub ndarray_vars: HashMap<usize, super::numpy_arrays::NdarrayVar>,
    pub ndarray_ok: bool,
    /// `random.Random(seed)` generators made in the trace, by address (random_objects.rs).
    pub trace_randoms: HashMap<usize, Py<PyAny>>,
    /// Those already rebuilt for the world outside the trace (once each).
    pub randoms_rebuilt: HashSet<usize>,
}

impl<'py> Tracer<'py> {
    pub fn new(
        py: Python<'py>,
        root_globals: Py<PyAny>,
        max_depth: usize,
        dynamic: &super::DynamicShapes,
    ) -> PyResult<Tracer<'py>> {
        let hooks = hooks(py)?;
        let gb = hooks
            .graph_builder
            .bind(py)
            .call1((dynamic.state.bind(py), dynamic.compiler.bind(py)))?;
        Ok(Tracer {
            py,
            hooks,
            gb,
            guards: Vec::new(),
            guard_keys: HashSet::new(),
            memo: HashMap::new(),
            inputs: Vec::new(),
            root_globals,
            depth: 0,
            max_depth,
            nest: Rc::new(std::cell::Cell::new(0)),
            tensor_inputs: HashMap::new(),
            identity: Vec::new(),
            break_snapshot: None,
            graph_calls: 0,
            graph_mark: None,
            side_effects: SideEffects::default(),
            exc_info: None,
            stdlib: Default::default(),
            error_on_break: false,
            step_unsupported: false,
            orphans: HashSet::new(),
            orphan_values: Vec::new(),
            root_split_points: 0,
            forced_break: None,
            retrace: None,
            comprehension_starts: Vec::new(),
            hook_registrations: Vec::new(),
            subclass_vars: HashMap::new(),
            tf_disabled: 0,
            tf_off_at_start: false,
            ndarray_vars: HashMap::new(),
            ndarray_ok: false,
            trace_randoms: HashMap::new(),
            randoms_rebuilt: HashSet::new(),
            generators: Vec::new(),
            iter_mirrors: HashMap::new(),
            seq_shadows: HashMap::new(),
            set_shadows: HashMap::new(),
            dict_shadows: HashMap::new(),
            iterated_lists: HashSet::new(),
            shared_tuples: HashSet::new(),
            tuple_origin: HashMap::new(),
            tuple_sources: HashMap::new(),
        })
    }

    /// Map a Python error from ferrodyn's own Python code into an exit.
    /// A graph-builder operation that may record nodes (`call_function`, `call_method`,
    /// `tensor_attr`, `as_subclass`, ...). Counted: a break's rollback mark, cached per
    /// count, is read again after it (a stale mark would erase the nodes it recorded).
    pub fn record(
        &mut self,
        method: &str,
        args: impl pyo3::call::PyCallArgs<'py>,
    ) -> TResult<Bound<'py, PyAny>> {
        self.graph_calls += 1;
        self.gb.call_method1(method, args).map_err(|e| self.err(e))
    }

    pub fn err(&self, e: PyErr) -> Exit {
        from_pyerr(self.py, e, self.hooks.unsupported.bind(self.py))
    }

    pub fn guard(&mut self, source: &Arc<Source>, guard: Guard) {
        // Guards naming an attribute or key are distinct per name.
        let (tag, name) = match &guard {
            Guard::TypeMatch(_) => (0, ""),
            Guard::IdMatch(_) => (1, ""),
            Guard::Equals(_) => (2, ""),
            Guard::Len(_) => (3, ""),
            Guard::DictKeys(_) => (4, ""),
            Guard::SubDictKeys(_) => (8, ""),
            Guard::HasAttr(n, _) => (5, n.as_str()),
            Guard::Tensor(_) => (6, ""),
            Guard::NotInDict(n) => (7, n.as_str()),
        };
        if self
            .guard_keys
            .insert((source.clone(), tag, name.to_string()))
        {
            self.guards.push((source.clone(), guard));
        }
    }

    pub fn classify(&self, obj: &Bound<'py, PyAny>) -> TResult<i64> {
        self.hooks
            .classify
            .bind(self.py)
            .call1((obj,))
            .and_then(|k| k.extract::<i64>())
            .map_err(|e| self.err(e))
    }

    pub fn describe(&self, obj: &Bound<'py, PyAny>) -> String {
        self.hooks
            .describe
            .bind(self.py)
            .call1((obj,))
            .and_then(|s| s.extract::<String>())
            .unwrap_or_else(|_| "<object>".into())
    }

    /// Bound the recursion of value walks (nested or cyclic structures): past the limit
    /// the trace breaks, and the frame runs natively, where CPython decides.
    pub fn nesting(&self) -> TResult<NestGuard> {
        let depth = self.nest.get();
        if depth >= MAX_NESTING {
            return Err(Exit::brk(
                "a value nested too deeply (or a cyclic structure)",
            ));
        }
        self.nest.set(depth + 1);
        Ok(NestGuard(self.nest.clone()))
    }

    /// The real tensor behind a graph-input value and its source (None for intermediates).
    /// The tensor is alive for the whole trace (the traced frame's inputs hold it).
    pub fn input_object(&self, var: &Py<PyAny>) -> Option<(Bound<'py, PyAny>, Arc<Source>)> {
        let p = var.as_ptr();
        self.tensor_inputs
            .iter()
            .find(|(_, (_, v))| v.as_ptr() == p)
            // SAFETY: the key is the address of a live tensor the trace reached through
            // `source` (its frame keeps it alive until the trace ends).
            .map(|(k, (s, _))| unsafe {
                (
                    Bound::from_borrowed_ptr(self.py, *k as *mut pyo3::ffi::PyObject),
                    s.clone(),
                )
            })
    }

    /// The source of a graph-input tensor value (None for intermediates).
    pub fn input_source(&self, var: &Py<PyAny>) -> Option<Arc<Source>> {
        let p = var.as_ptr();
        self.tensor_inputs
            .values()
            .find(|(_, v)| v.as_ptr() == p)
            .map(|(s, _)| s.clone())
    }

    /// The contents of a closure cell that exists outside the trace, realized on first use.
    pub fn load_external_cell(&mut self, c: &ExternalCell) -> TResult<Option<Value>> {
        if let Some(v) = self.side_effects.pending_cell(c) {
            return Ok(Some(v));
        }
        if let Some(v) = c.realized.borrow().as_ref() {
            return Ok(Some(v.clone()));
        }
        let cell = c.cell.bind(self.py).clone();
        let Ok(contents) = cell.getattr("cell_contents") else {
            return Ok(None);
        };
        let v = self.realize(&contents, c.source.clone())?;
        *c.realized.borrow_mut() = Some(v.clone());
        Ok(Some(v))
    }

    /// A namedtuple/structseq value of class `cls` (error if `cls` is neither).
    pub fn named_tuple(&self, cls: &Bound<'py, PyAny>, items: Vec<Value>) -> TResult<Value> {
        let info = self
            .hooks
            .namedtuple_info
            .bind(self.py)
            .call1((cls,))
            .map_err(|e| self.err(e))?;
        if info.is_none() {
            return Err(Exit::internal("not a namedtuple class"));
        }
        let (fields, _defaults, structseq): (Vec<String>, Bound<'py, PyAny>, bool) =
            info.extract().map_err(|e| self.err(e))?;
        Ok(Value::NamedTuple(Rc::new(NamedTupleVal {
            cls: cls.clone().unbind(),
            fields,
            structseq,
            items: Rc::new(items),
            attrs: Default::default(),
        })))
    }

    /// A traced dict is about to change. The namespace of a pre-existing object or module
    /// (`obj.__dict__`, `globals()`) is not changed through the dict: attribute and global
    /// reads later in the trace would not see it, so that is a graph break.
    pub fn dict_mutating(&mut self, d: &Rc<super::value::DictVal>) -> TResult<()> {
        let ptr = Rc::as_ptr(d) as usize;
        if self.is_orphan(ptr) {
            return Err(Exit::brk(
                "mutating a pre-existing dict read through a path that is not guarded",
            ));
        }
        if let Some(s) = &d.source {
            let namespace = match &**s {
                Source::Attr { name, .. } => name == "__dict__",
                Source::InstDict { .. } | Source::Globals => true,
                _ => false,
            };
            if namespace {
                return Err(Exit::brk(format!(
                    "writing to the namespace dict {} directly",
                    s.render()
                )));
            }
        }
        self.side_effects.dict_mutated(d);
        Ok(())
    }

    /// A generator made in the trace that is suspended where an exception handler covers
    /// it (a `try`/`with` around the `yield`): its name.
    pub fn generator_left_in_cleanup(&self) -> Option<String> {
        self.generators.iter().find_map(|g| {
            let frame = g.frame.borrow();
            let f = frame.as_ref()?;
            let ins = f.spec.decoded.instructions.get(f.current)?;
            runs_on_close(self.py, &f.spec, ins.offset, 0).then(|| g.name.clone())
        })
    }

    pub(crate) fn add_orphan(&mut self, v: &Value) {
        let ptr = match v {
            Value::List(l) => Rc::as_ptr(l) as usize,
            Value::Dict(d) => Rc::as_ptr(d) as usize,
            _ => return,
        };
        self.orphans.insert(ptr);
        self.orphan_values.push(v.clone());
    }

    fn is_orphan(&self, ptr: usize) -> bool {
        self.orphans.contains(&ptr)
    }

    /// A traced list is about to change (see `dict_mutating`).
    pub fn list_mutating(&mut self, l: &Rc<ListVal>) -> TResult<()> {
        if !self.iterated_lists.is_empty() {
            let walked = self.side_effects.realized.iter().any(|(p, (_, v))| {
                matches!(v, Value::List(x) if Rc::ptr_eq(x, l)) && self.iterated_lists.contains(p)
            });
            if walked {
                return Err(Exit::brk(
                    "mutating a list that a pre-existing iterator is walking",
                ));
            }
        }
        if self.is_orphan(Rc::as_ptr(l) as usize) {
            return Err(Exit::brk(
                "mutating a pre-existing list read through a path that is not guarded",
            ));
        }
        self.side_effects.list_mutated(l);
        Ok(())
    }

    /// All values as Python constants, if every one is a constant.
    pub fn as_python_constant_all(&self, vs: &[Value]) -> Option<Vec<Bound<'py, PyAny>>> {
        vs.iter().map(|v| self.as_python_constant(v)).collect()
    }

    /// A constant Python object for a value made only of constants, if it is one.
    pub fn as_python_constant(&self, v: &Value) -> Option<Bound<'py, PyAny>> {
        super::families::as_constant(self, v)
    }
}

/// Whether instances of `obj`'s class keep state in a C base other than the immutable
/// builtins (an ndarray, an array.array, a dict or list subclass): their contents are
/// invisible to guards on the object's type and attributes.
pub(crate) fn opaque_c_state(obj: &Bound<'_, PyAny>) -> bool {
    use pyo3::ffi;
    // SAFETY: reads type objects of a live object (its type's MRO tuple is set once the
    // type is ready; every entry is a type).
    unsafe {
        let ty = ffi::Py_TYPE(obj.as_ptr());
        let mro = (*ty).tp_mro;
        if mro.is_null() || ffi::PyTuple_Check(mro) == 0 {
            return true;
        }
        let immutable = [
            std::ptr::addr_of_mut!(ffi::PyBaseObject_Type),
            std::ptr::addr_of_mut!(ffi::PyLong_Type),
            std::ptr::addr_of_mut!(ffi::PyFloat_Type),
            std::ptr::addr_of_mut!(ffi::PyComplex_Type),
            std::ptr::addr_of_mut!(ffi::PyBool_Type),
            std::ptr::addr_of_mut!(ffi::PyUnicode_Type),
            std::ptr::addr_of_mut!(ffi::PyBytes_Type),
            std::ptr::addr_of_mut!(ffi::PyTuple_Type),
            std::ptr::addr_of_mut!(ffi::PyFrozenSet_Type),
        ];
        (0..ffi::PyTuple_GET_SIZE(mro)).any(|i| {
            let base = ffi::PyTuple_GET_ITEM(mro, i).cast::<ffi::PyTypeObject>();
            (*base).tp_flags & ffi::Py_TPFLAGS_HEAPTYPE == 0 && !immutable.contains(&base)
        })
    }
}

pub fn dict_key(k: &Bound<'_, PyAny>) -> Option<DictKey> {
    if let Ok(s) = k.extract::<String>() {
        return Some(DictKey::Str(s));
    }
    if k.get_type().name().ok()? == "int" {
        return k.extract::<i64>().ok().map(DictKey::Int);
    }
    crate::guards::source::type_key(k)
}

pub fn external_cell(cell: Py<PyAny>, source: SourceRef) -> Value {
    Value::ExternalCell(Rc::new(ExternalCell {
        cell,
        source,
        realized: std::cell::RefCell::new(None),
    }))
}

const MAX_NESTING: usize = 200;

/// Leaves one level of `Tracer::nesting` when dropped.
pub struct NestGuard(Rc<std::cell::Cell<usize>>);

impl Drop for NestGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Whether closing a generator suspended at `offset` runs code: a handler covering it that
/// a `GeneratorExit` would enter (a `finally`, a `with`, a bare `except` or one naming
/// BaseException/GeneratorExit). `except` clauses naming an `Exception` subclass let it
/// pass to the next enclosing handler. Unknown shapes count as running code.
fn runs_on_close(
    py: Python<'_>,
    spec: &crate::spec_cache::CodeSpec,
    offset: u32,
    depth: usize,
) -> bool {
    use crate::bytecode::opcodes::Opcode as Op;
    let d = &spec.decoded;
    let Some(entry) = d.handler_for(offset) else {
        return false;
    };
    if depth > 8 {
        return true;
    }
    let Some(mut i) = d.index_at(entry.target) else {
        return true;
    };
    let at = |i: usize| d.instructions.get(i);
    // An exception-table cleanup entry (`COPY 3; POP_EXCEPT; RERAISE 1`): re-raises.
    if let Some(ins) = (0..3)
        .filter_map(|k| at(i + k))
        .find(|x| x.op == Op::RERAISE)
    {
        if at(i).is_some_and(|x| x.op == Op::COPY) {
            return runs_on_close(py, spec, ins.offset, depth + 1);
        }
    }
    // 3.12's handler around a generator's whole body (`CALL_INTRINSIC_1
    // STOPITERATION_ERROR; RERAISE`), and around a `yield from`'s yield (`CLEANUP_THROW`,
    // which re-raises all but StopIteration): a GeneratorExit passes through both.
    if let Some(a) = at(i) {
        if a.op == Op::CLEANUP_THROW {
            return runs_on_close(py, spec, a.offset, depth + 1);
        }
        if let Some(b) = at(i + 1).filter(|b| b.op == Op::RERAISE) {
            if a.op == Op::CALL_INTRINSIC_1 && a.arg == 3 {
                return runs_on_close(py, spec, b.offset, depth + 1);
            }
        }
    }
    if at(i).map(|x| x.op) != Some(Op::PUSH_EXC_INFO) {
        return true;
    }
    i += 1;
    for _ in 0..32 {
        let Some(ins) = at(i) else { return true };
        match ins.op {
            Op::RERAISE => return runs_on_close(py, spec, ins.offset, depth + 1),
            Op::LOAD_GLOBAL | Op::LOAD_NAME => {
                let idx = if ins.op == Op::LOAD_GLOBAL {
                    ins.arg >> 1
                } else {
                    ins.arg
                };
                let name = spec.names.get(idx as usize).map(String::as_str);
                let (Some(m), Some(j)) = (at(i + 1), at(i + 2)) else {
                    return true;
                };
                let jumps_if_false =
                    matches!(j.op, Op::POP_JUMP_FORWARD_IF_FALSE | Op::POP_JUMP_IF_FALSE);
                if m.op != Op::CHECK_EXC_MATCH || !jumps_if_false {
                    return true;
                }
                // A builtin Exception subclass (not BaseException): GeneratorExit passes.
                let passes = name.is_some_and(|n| {
                    py.import("builtins")
                        .and_then(|b| b.getattr(n))
                        .and_then(|c| {
                            let exc = py.get_type::<pyo3::exceptions::PyException>();
                            c.cast::<pyo3::types::PyType>()
                                .map_err(PyErr::from)
                                .and_then(|t| t.is_subclass(&exc))
                        })
                        .unwrap_or(false)
                });
                if !passes {
                    return true;
                }
                let Some(t) = j.target else { return true };
                i = t as usize;
            }
            _ => return true,
        }
    }
    true
}
