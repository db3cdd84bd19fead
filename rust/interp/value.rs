//! Values on the symbolic stack. Most are plain Rust data; tensors are handles to the
//! Python `TensorVar` (FX node + fake tensor); other Python objects carry their kind and
//! the source they were read from (so that using them can install guards).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use crate::guards::Source;
use crate::spec_cache::CodeSpec;

pub type SourceRef = Option<Arc<Source>>;

/// How a frame's globals can be reached by guards.
#[derive(Clone)]
pub enum GlobalsAccess {
    /// The compiled function's own globals: `Source::Global`.
    Root,
    /// Another module's globals, through `fn.__globals__` of a sourced function.
    Via(Arc<Source>),
    /// Not guarded (torch-internal code; trusted not to be monkeypatched).
    Unguarded,
}

#[derive(Clone)]
pub enum Value {
    /// The NULL that PUSH_NULL / LOAD_GLOBAL / LOAD_METHOD push before a callable.
    Null,
    /// An immutable Python constant (None, bool, int, float, str, dtype, torch.Size, ...).
    Const(Py<PyAny>),
    /// A tensor in the graph: a Python `ferrodyn.graph.TensorVar`.
    Tensor(Py<PyAny>),
    Tuple(Rc<Vec<Value>>),
    /// A namedtuple or torch.return_types structseq: a tuple with a class and field names.
    NamedTuple(Rc<NamedTupleVal>),
    List(Rc<ListVal>),
    Dict(Rc<DictVal>),
    Slice(Rc<[Value; 3]>),
    /// A user Python function (inlined when called).
    Function(Rc<FuncVal>),
    /// `obj.method` bound to a receiver: (self, function).
    BoundMethod(Rc<(Value, Value)>),
    /// `receiver.name` for a builtin method of a tensor or container value, not yet called.
    BuiltinMethod(Rc<(Value, String)>),
    /// Any other Python object, with its kind (see kinds.rs) and where it came from.
    Object(Rc<ObjVal>),
    Iter(Rc<RefCell<IterVal>>),
    Cell(Rc<RefCell<Option<Value>>>),
    /// A closure cell of a function that exists outside the trace: its contents are read
    /// (and guarded) only when the traced code loads them. Read-only for now.
    ExternalCell(Rc<ExternalCell>),
    /// `super()` inside a method: (the class whose method is running, the receiver).
    Super(Rc<(Py<PyAny>, Value)>),
    /// A grad-mode context manager (`torch.no_grad()`, ...): the mode it sets.
    GradMode(bool),
    /// A generator created in the trace: a suspended frame resumed by `next`.
    Generator(Rc<GenVal>),
    /// An exception object created in the trace (exceptions.rs).
    Exception(Rc<crate::interp::exceptions::ExcVal>),
    /// A modelled stdlib object (functools.partial, deque, set, map, ...): see stdlib.rs.
    Std(Rc<crate::interp::stdlib::StdVal>),
    /// An entry of a dict from the inputs not read yet: realized (and guarded) when the
    /// trace reads it (`Tracer::dict_entry`). Lives only inside a `DictVal`.
    Lazy(Rc<LazyVal>),
}

pub struct LazyVal {
    pub obj: Py<PyAny>,
    pub source: Arc<crate::guards::Source>,
}

pub struct GenVal {
    /// None once the generator has finished.
    pub frame: RefCell<Option<Box<crate::interp::frame::Frame>>>,
    pub name: String,
    /// What it had left to yield, run to its end in the trace because it is returned from
    /// the compiled region (it leaves as an iterator over these: see `drain_returned`).
    pub drained: RefCell<Option<Vec<Value>>>,
}

pub struct ExternalCell {
    pub cell: Py<PyAny>,
    pub source: SourceRef,
    pub realized: RefCell<Option<Value>>,
}

pub struct NamedTupleVal {
    pub cls: Py<PyAny>,
    pub fields: Vec<String>,
    pub structseq: bool,
    pub items: Rc<Vec<Value>>,
    /// Attributes stored in the trace on an instance of a subclass without `__slots__`
    /// (its instance dict, in store order).
    pub attrs: RefCell<Vec<(String, Value)>>,
}

impl NamedTupleVal {
    pub fn as_tuple(&self) -> Value {
        Value::Tuple(self.items.clone())
    }
}

pub struct ListVal {
    pub items: RefCell<Vec<Value>>,
    /// Set when the list mirrors a pre-existing Python list: mutating it is not supported
    /// until the side-effect store lands, so it breaks the graph.
    pub source: SourceRef,
}

pub struct DictVal {
    /// Insertion-ordered (key, value); keys are hashable Python constants. A value may be
    /// `Value::Lazy` (an unread entry of a dict from the inputs): read values through
    /// `Tracer::dict_entry` / `Tracer::dict_values`, never from here directly, except for
    /// the keys, the length, and copying entries into another dict.
    pub entries: RefCell<Vec<(Py<PyAny>, Value)>>,
    pub source: SourceRef,
}

pub struct FuncVal {
    pub obj: Option<Py<PyAny>>,
    pub spec: Arc<CodeSpec>,
    pub globals: Py<PyAny>,
    /// Known defaults (functions made during the trace); None: read `__defaults__` /
    /// `__kwdefaults__` from `obj` at call time, guarding only the ones used.
    pub defaults: Option<Vec<Value>>,
    pub kwdefaults: Option<Vec<(String, Value)>>,
    pub closure: Vec<Value>,
    pub source: SourceRef,
    /// How guards reach this function's globals dict.
    pub globals_source: GlobalsAccess,
    /// MAKE_FUNCTION's annotations tuple (`('y', int, 'return', int)`), kept for a
    /// function made in the trace that escapes.
    pub annotations: Option<Value>,
    /// Attributes set in the trace on a function made in it (`__name__`, `__wrapped__`,
    /// `functools.wraps` metadata, user attributes), applied when it is rebuilt.
    pub attrs: RefCell<Vec<(String, Value)>>,
}

impl DictVal {
    /// The index of the constant key `key` (compared as dict keys compare), if present.
    pub fn position(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> Option<usize> {
        self.entries
            .borrow()
            .iter()
            .position(|(k, _)| crate::interp::dispatch::same_dict_key(k.bind(py), key))
    }

    /// A copy of the (key, value) pairs as stored (unread entries of a dict from the inputs
    /// stay `Value::Lazy`): for copying them into another dict, or rebuilding the dict.
    /// Reading the values is `Tracer::dict_items`.
    pub fn snapshot(&self, py: Python<'_>) -> Vec<(Py<PyAny>, Value)> {
        self.entries
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone_ref(py), v.clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }

    /// The keys, in order.
    pub fn keys(&self, py: Python<'_>) -> Vec<Py<PyAny>> {
        self.entries
            .borrow()
            .iter()
            .map(|(k, _)| k.clone_ref(py))
            .collect()
    }

    /// Whether an entry has not been read yet.
    pub fn has_lazy(&self) -> bool {
        self.entries
            .borrow()
            .iter()
            .any(|(_, v)| matches!(v, Value::Lazy(_)))
    }
}

pub struct ObjVal {
    pub obj: Py<PyAny>,
    pub kind: i64,
    pub source: SourceRef,
}

pub enum IterVal {
    Range {
        next: i64,
        stop: i64,
        step: i64,
    },
    Items {
        items: Vec<Value>,
        pos: usize,
    },
    Enumerate {
        inner: Value,
        count: i64,
    },
    Zip {
        inners: Vec<Value>,
        strict: bool,
    },
    /// A user iterator object: `next` inlines its type's `__next__`; an observed
    /// StopIteration ends it.
    Dunder(Value),
    /// A pre-existing tuple/list iterator (`obj`, a `Value::Object` with a source): items
    /// are read `consumed` places past its real position (see `iter::seq_iterator_mirror`).
    Real {
        obj: Value,
        consumed: usize,
    },
}

thread_local! {
    /// Iterators created since the root frame's last graph-break snapshot (by address).
    static FRESH_ITERS: RefCell<std::collections::HashSet<usize>> = RefCell::default();
}

thread_local! {
    /// Iterators whose position the last snapshot recorded (by address): a split rewinds
    /// them, so advancing them is not a mutation the split must refuse.
    static MARKED_ITERS: RefCell<std::collections::HashSet<usize>> = RefCell::default();
}

thread_local! {
    /// Lists and dicts built since the root frame's last graph-break snapshot (by address):
    /// mutating one changes nothing the snapshot can see.
    static FRESH_CONTAINERS: RefCell<std::collections::HashSet<usize>> = RefCell::default();
}

/// A list or dict was just built by the trace.
pub fn note_fresh_container(ptr: usize) {
    FRESH_CONTAINERS.with(|f| f.borrow_mut().insert(ptr));
}

/// Whether the list or dict was built after the last snapshot (a call that breaks after
/// mutating only such containers can still be split: re-run natively, it builds them anew).
pub fn container_is_fresh(ptr: usize) -> bool {
    FRESH_CONTAINERS.with(|f| f.borrow().contains(&ptr))
}

/// A root-frame graph-break snapshot was taken: every existing iterator is now older, and
/// `marked` are the ones it can rewind.
pub fn iters_snapshot_taken(marked: &[(Rc<RefCell<IterVal>>, IterMark)]) {
    FRESH_ITERS.with(|f| f.borrow_mut().clear());
    FRESH_CONTAINERS.with(|f| f.borrow_mut().clear());
    MARKED_ITERS.with(|m| {
        let mut m = m.borrow_mut();
        m.clear();
        m.extend(marked.iter().map(|(it, _)| Rc::as_ptr(it) as usize));
    });
}

/// Whether the iterator was created after the last snapshot (advancing it then mutates
/// nothing the snapshot can see), or the snapshot can rewind it.
pub fn iter_is_fresh(it: &Rc<RefCell<IterVal>>) -> bool {
    let p = Rc::as_ptr(it) as usize;
    FRESH_ITERS.with(|f| f.borrow().contains(&p)) || MARKED_ITERS.with(|m| m.borrow().contains(&p))
}

/// Where a traced iterator stands (its position only: items are never removed), so that a
/// graph break can rewind it to the snapshot before rebuilding it for the glue.
#[derive(Clone, Debug)]
pub enum IterMark {
    Range(i64),
    Items(usize),
    Enumerate(i64, Option<Box<IterMark>>),
    Zip(Vec<Option<IterMark>>),
}

impl IterMark {
    /// The position of `v` if it is a traced iterator that can be rewound (None otherwise).
    pub fn of(v: &Value) -> Option<IterMark> {
        let Value::Iter(it) = v else {
            return None;
        };
        let st = it.try_borrow().ok()?;
        Some(match &*st {
            IterVal::Range { next, .. } => IterMark::Range(*next),
            IterVal::Items { pos, .. } | IterVal::Real { consumed: pos, .. } => {
                IterMark::Items(*pos)
            }
            IterVal::Enumerate { inner, count } => {
                IterMark::Enumerate(*count, IterMark::of(inner).map(Box::new))
            }
            IterVal::Zip { inners, .. } => IterMark::Zip(inners.iter().map(IterMark::of).collect()),
            IterVal::Dunder(_) => return None,
        })
    }

    /// Puts `it` back where this mark says.
    pub fn restore(&self, it: &Rc<RefCell<IterVal>>) {
        let Ok(mut st) = it.try_borrow_mut() else {
            return;
        };
        match (&mut *st, self) {
            (IterVal::Range { next, .. }, IterMark::Range(n)) => *next = *n,
            (IterVal::Items { pos, .. }, IterMark::Items(p))
            | (IterVal::Real { consumed: pos, .. }, IterMark::Items(p)) => *pos = *p,
            (IterVal::Enumerate { inner, count }, IterMark::Enumerate(c, m)) => {
                *count = *c;
                if let (Value::Iter(i), Some(m)) = (&*inner, m) {
                    m.restore(i);
                }
            }
            (IterVal::Zip { inners, .. }, IterMark::Zip(ms)) => {
                for (i, m) in inners.iter().zip(ms) {
                    if let (Value::Iter(i), Some(m)) = (i, m) {
                        m.restore(i);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Value {
    /// A new traced iterator.
    pub fn new_iter(state: IterVal) -> Value {
        let it = Rc::new(RefCell::new(state));
        FRESH_ITERS.with(|f| f.borrow_mut().insert(Rc::as_ptr(&it) as usize));
        Value::Iter(it)
    }

    pub fn type_name(&self, py: Python<'_>) -> String {
        match self {
            Value::Null => "NULL".into(),
            Value::Const(o) => o
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Value::Tensor(_) => "Tensor".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::NamedTuple(n) => n
                .cls
                .bind(py)
                .getattr("__name__")
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::Slice(_) => "slice".into(),
            Value::Function(_) => "function".into(),
            Value::BoundMethod(_) => "method".into(),
            Value::BuiltinMethod(_) => "builtin method".into(),
            Value::Object(o) => o
                .obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Value::Iter(_) => "iterator".into(),
            Value::Cell(_) | Value::ExternalCell(_) => "cell".into(),
            Value::Generator(_) => "generator".into(),
            Value::Std(s) => s.type_name().into(),
            Value::Lazy(l) => l
                .obj
                .bind(py)
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Value::GradMode(_) => "grad mode context manager".into(),
            Value::Super(_) => "super".into(),
            Value::Exception(e) => e
                .cls
                .bind(py)
                .getattr("__name__")
                .map(|n| n.to_string())
                .unwrap_or_default(),
        }
    }

    pub fn is_tensor(&self) -> bool {
        matches!(self, Value::Tensor(_))
    }

    pub fn as_const<'py>(&self, py: Python<'py>) -> Option<&Bound<'py, PyAny>> {
        match self {
            Value::Const(o) => Some(o.bind(py)),
            _ => None,
        }
    }

    /// Keyword arguments as a dict value (str keys, in order).
    pub fn kwargs_dict(py: Python<'_>, kwargs: Vec<(String, Value)>) -> Value {
        Value::new_dict_from(
            kwargs
                .into_iter()
                .map(|(k, v)| (pyo3::types::PyString::new(py, &k).into_any().unbind(), v))
                .collect(),
        )
    }

    pub fn new_list(items: Vec<Value>) -> Value {
        let l = Rc::new(ListVal {
            items: RefCell::new(items),
            source: None,
        });
        note_fresh_container(Rc::as_ptr(&l) as usize);
        Value::List(l)
    }

    /// A new, empty dict built by the trace.
    pub fn new_dict_val() -> Rc<DictVal> {
        let d = Rc::new(DictVal {
            entries: RefCell::new(Vec::new()),
            source: None,
        });
        note_fresh_container(Rc::as_ptr(&d) as usize);
        d
    }

    /// A new dict built by the trace, with these items (keys distinct, in order).
    pub fn new_dict_from(items: Vec<(Py<PyAny>, Value)>) -> Value {
        let d = Value::new_dict_val();
        *d.entries.borrow_mut() = items;
        Value::Dict(d)
    }

    pub fn new_tuple(items: Vec<Value>) -> Value {
        Value::Tuple(Rc::new(items))
    }

    pub fn none(py: Python<'_>) -> Value {
        Value::Const(py.None())
    }

    pub fn constant<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Value {
        match v.into_bound_py_any(py) {
            Ok(b) => Value::Const(b.unbind()),
            Err(_) => Value::Const(py.None()),
        }
    }
}
