//! `collections.deque` and `set` values created in the trace.
//!
//! A deque is a list of values with maxlen semantics. A set keeps its plain-constant
//! members in a private real Python set (so hashing, equality and iteration order are
//! CPython's own) and its other members, which must compare by identity (tensors,
//! functions, objects without `__eq__`/`__hash__`), in a list; iterating a set that holds
//! such members breaks the graph, since their order depends on addresses.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use pyo3::prelude::*;
use pyo3::types::PySet;

use super::exit::{Exit, TResult};
use super::iter::{iter_next, unpack};
use super::stdlib::{plain_const, StdVal};
use super::tracer::Tracer;
use super::value::Value;

pub struct DequeVal {
    pub items: RefCell<VecDeque<Value>>,
    pub maxlen: Option<usize>,
    pub version: Cell<u64>,
}

impl DequeVal {
    pub fn new(maxlen: Option<usize>) -> DequeVal {
        DequeVal {
            items: RefCell::new(VecDeque::new()),
            maxlen,
            version: Cell::new(0),
        }
    }

    fn bump(&self) {
        self.version.set(self.version.get() + 1);
    }

    fn push(&self, v: Value, left: bool) {
        self.bump();
        if self.maxlen == Some(0) {
            return;
        }
        let mut items = self.items.borrow_mut();
        if self.maxlen.is_some_and(|m| items.len() >= m) {
            if left {
                items.pop_back();
            } else {
                items.pop_front();
            }
        }
        if left {
            items.push_front(v);
        } else {
            items.push_back(v);
        }
    }
}

pub struct SetVal {
    real: Py<PySet>,
    objs: RefCell<Vec<(usize, Value)>>,
    pub version: Cell<u64>,
    /// A mirror of a pre-existing set (`realize_input_set`): read-only in the trace, and
    /// the real set wherever it leaves the trace.
    pinned: Option<std::sync::Arc<crate::guards::Source>>,
    /// A pinned set's change is logged for replay (`call_method`): it may change.
    logged: Cell<bool>,
    /// A pinned set's changes in order (`SetOp`): replayed on the real set one by one, as
    /// eager's methods make them, so that its iteration order afterwards is eager's.
    ops: RefCell<Vec<SetOp>>,
    /// A pinned set's members in the real set's iteration order (what iterating it
    /// yields while the trace has not changed it, under a guard on that order).
    order: Option<Py<pyo3::types::PyTuple>>,
}

enum Member<'py> {
    Const(Bound<'py, PyAny>),
    Ident(usize),
}

/// How a value takes part in set membership.
fn member<'py>(tx: &Tracer<'py>, v: &Value) -> TResult<Member<'py>> {
    let py = tx.py;
    if let Some(c) = plain_const(tx, v) {
        c.hash()
            .map_err(|e| Exit::brk(format!("TypeError: {}", e.value(py))))?;
        return Ok(Member::Const(c));
    }
    let id = match v {
        Value::Tensor(t) => t.as_ptr() as usize,
        Value::Function(f) => match &f.obj {
            Some(o) => o.as_ptr() as usize,
            None => Rc::as_ptr(f) as usize,
        },
        Value::Std(s) => Rc::as_ptr(s) as usize,
        Value::Object(o) => {
            let ty = o.obj.bind(py).get_type();
            let object = tx.hooks.object.bind(py);
            let same = |n: &str| match (ty.getattr(n), object.getattr(n)) {
                (Ok(a), Ok(b)) => a.is(&b),
                _ => false,
            };
            if !same("__eq__") || !same("__hash__") {
                return Err(Exit::brk(format!(
                    "a set member of type {} (it defines __eq__ or __hash__)",
                    tx.describe(&ty.into_any())
                )));
            }
            o.obj.as_ptr() as usize
        }
        other => {
            return Err(Exit::brk(format!(
                "a set member of type '{}'",
                other.type_name(py)
            )))
        }
    };
    Ok(Member::Ident(id))
}

/// One change of a set's storage, as CPython's set methods make them.
pub enum SetOp {
    Add(Py<PyAny>),
    Discard(Py<PyAny>),
    Clear,
}

impl SetOp {
    fn clone_ref(&self, py: Python<'_>) -> SetOp {
        match self {
            SetOp::Add(m) => SetOp::Add(m.clone_ref(py)),
            SetOp::Discard(m) => SetOp::Discard(m.clone_ref(py)),
            SetOp::Clear => SetOp::Clear,
        }
    }
}

impl SetVal {
    pub fn new(py: Python<'_>) -> PyResult<SetVal> {
        Ok(SetVal {
            real: PySet::empty(py)?.unbind(),
            objs: RefCell::new(Vec::new()),
            version: Cell::new(0),
            pinned: None,
            logged: Cell::new(false),
            ops: RefCell::new(Vec::new()),
            order: None,
        })
    }

    /// `sorted(self)` when it does not depend on the iteration order: the members are all
    /// exact ints or all exact strs (distinct, totally ordered). None otherwise.
    pub fn sorted_members(&self, py: Python<'_>, reverse: bool) -> Option<Vec<Py<PyAny>>> {
        if !self.objs.borrow().is_empty() {
            return None;
        }
        let members: Vec<Bound<'_, PyAny>> = self.real.bind(py).iter().collect();
        let ints = members
            .iter()
            .all(|m| m.is_exact_instance_of::<pyo3::types::PyInt>());
        let strs = members
            .iter()
            .all(|m| m.is_exact_instance_of::<pyo3::types::PyString>());
        if !(ints || strs) {
            return None;
        }
        let list = pyo3::types::PyList::new(py, members).ok()?;
        list.sort().ok()?;
        if reverse {
            list.reverse().ok()?;
        }
        Some(list.iter().map(|m| m.unbind()).collect())
    }

    /// What a changed mirror replays on the real set: its changes in order (constant
    /// members only).
    pub fn replay_ops(&self, py: Python<'_>) -> Option<Vec<SetOp>> {
        if !self.objs.borrow().is_empty() {
            return None;
        }
        Some(
            self.ops
                .borrow()
                .iter()
                .map(|op| op.clone_ref(py))
                .collect(),
        )
    }

    /// The source of the pre-existing set this mirrors, if any.
    pub fn source(&self) -> Option<&std::sync::Arc<crate::guards::Source>> {
        self.pinned.as_ref()
    }

    /// A mirror of a pre-existing set changes only through `call_method`, which logs the
    /// change for replay first; any other path would leave the real set behind: a break.
    fn mutable(&self) -> TResult<()> {
        if self.pinned.is_some() && !self.logged.get() {
            return Err(Exit::brk("mutating a set from the inputs"));
        }
        Ok(())
    }

    pub fn len(&self, py: Python<'_>) -> usize {
        self.real.bind(py).len() + self.objs.borrow().len()
    }

    fn contains(&self, tx: &Tracer<'_>, v: &Value) -> TResult<bool> {
        Ok(match member(tx, v)? {
            Member::Const(c) => self.real.bind(tx.py).contains(c).map_err(|e| tx.err(e))?,
            Member::Ident(id) => self.objs.borrow().iter().any(|(i, _)| *i == id),
        })
    }

    fn add(&self, tx: &Tracer<'_>, v: &Value) -> TResult<()> {
        self.mutable()?;
        match member(tx, v)? {
            Member::Const(c) => {
                let s = self.real.bind(tx.py);
                if !s.contains(&c).map_err(|e| tx.err(e))? {
                    self.version.set(self.version.get() + 1);
                    if self.pinned.is_some() {
                        self.ops.borrow_mut().push(SetOp::Add(c.clone().unbind()));
                    }
                    s.add(c).map_err(|e| tx.err(e))?;
                }
            }
            Member::Ident(id) => {
                let mut objs = self.objs.borrow_mut();
                if !objs.iter().any(|(i, _)| *i == id) {
                    self.version.set(self.version.get() + 1);
                    objs.push((id, v.clone()));
                }
            }
        }
        Ok(())
    }

    /// Remove `v`; whether it was there.
    fn discard(&self, tx: &Tracer<'_>, v: &Value) -> TResult<bool> {
        self.mutable()?;
        let found = match member(tx, v)? {
            Member::Const(c) => {
                let found = self.real.bind(tx.py).discard(&c).map_err(|e| tx.err(e))?;
                if found && self.pinned.is_some() {
                    self.ops.borrow_mut().push(SetOp::Discard(c.unbind()));
                }
                found
            }
            Member::Ident(id) => {
                let mut objs = self.objs.borrow_mut();
                let before = objs.len();
                objs.retain(|(i, _)| *i != id);
                objs.len() != before
            }
        };
        if found {
            self.version.set(self.version.get() + 1);
        }
        Ok(found)
    }

    /// Members in CPython's iteration order (constants only).
    pub fn iter_items(&self, tx: &mut Tracer<'_>) -> TResult<Vec<Value>> {
        if let (Some(src), Some(order), false, 0) = (
            &self.pinned,
            &self.order,
            self.logged.get(),
            self.version.get(),
        ) {
            // Not changed in the trace: the real set's own order, guarded (equal sets can
            // iterate in different orders, so the contents guard alone does not pin it).
            let order = order.bind(tx.py).clone();
            tx.guard(
                &std::sync::Arc::new(crate::guards::Source::SetOrder { base: src.clone() }),
                crate::guards::Guard::Equals(order.clone().into_any().unbind()),
            );
            let items: Vec<Bound<'_, PyAny>> = order.iter().collect();
            return items.iter().map(|c| tx.realize(c, None)).collect();
        }
        if self.pinned.is_some() {
            // Equal sets can iterate in different orders: the guard does not pin one.
            return Err(Exit::brk(
                "iterating a set from the inputs (its iteration order is not guarded)",
            ));
        }
        if !self.objs.borrow().is_empty() {
            return Err(Exit::brk(
                "iterating a set of tensors or objects (its order depends on addresses)",
            ));
        }
        self.const_items(tx)
    }

    fn const_items(&self, tx: &mut Tracer<'_>) -> TResult<Vec<Value>> {
        let consts: Vec<Bound<'_, PyAny>> = self.real.bind(tx.py).iter().collect();
        consts.iter().map(|c| tx.realize(c, None)).collect()
    }

    /// Every member, in no particular order (for rebuilding the set).
    pub fn all_items(&self, tx: &mut Tracer<'_>) -> TResult<Vec<Value>> {
        if self.pinned.is_some() {
            // What is built from them could iterate in another order than eager's.
            return Err(Exit::brk("the items of a set from the inputs"));
        }
        let mut items = self.const_items(tx)?;
        items.extend(self.objs.borrow().iter().map(|(_, v)| v.clone()));
        Ok(items)
    }

    pub fn as_python_constant<'py>(&self, tx: &Tracer<'py>) -> Option<Bound<'py, PyAny>> {
        let py = tx.py;
        if self.pinned.is_some() {
            return None;
        }
        let out = PySet::new(py, self.real.bind(py).iter()).ok()?;
        for (_, v) in self.objs.borrow().iter() {
            match v {
                Value::Object(_) => out.add(tx.as_python_constant(v)?).ok()?,
                _ => return None,
            }
        }
        Some(out.into_any())
    }
}

/// `dq.extend(it)` (or `extendleft`), item by item as CPython does; a deque extended by
/// itself iterates a copy.
pub fn extend(tx: &mut Tracer<'_>, s: &Rc<StdVal>, it: &Value, left: bool) -> TResult<()> {
    let StdVal::Deque(d) = &**s else {
        return Err(Exit::internal("extend of a non-deque"));
    };
    if matches!(it, Value::Std(o) if Rc::ptr_eq(o, s)) {
        for v in unpack(tx, it)? {
            d.push(v, left);
        }
        return Ok(());
    }
    let iter = crate::interp::families::iter(tx, it)?;
    while let Some(v) = iter_next(tx, &iter)? {
        d.push(v, left);
    }
    Ok(())
}

/// The members of a set or frozenset (or an instance of a subclass of either) in its
/// storage order, read by the set type's own C iterator: a subclass's `__iter__` never
/// runs. None for any other object, or if iteration fails.
pub fn c_members<'py>(obj: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    use pyo3::ffi;
    let py = obj.py();
    // SAFETY: the object is checked to be a set or frozenset (or a subclass instance), whose
    // storage the set type's C iterator (`tp_iter` of `set`, shared by `frozenset`) reads;
    // every pointer returned is a new reference we take ownership of at once, and a NULL
    // is an error we clear.
    unsafe {
        if ffi::PyAnySet_Check(obj.as_ptr()) == 0 {
            return None;
        }
        let tp_iter = (*std::ptr::addr_of_mut!(ffi::PySet_Type)).tp_iter?;
        let it = tp_iter(obj.as_ptr());
        if it.is_null() {
            let _ = PyErr::take(py);
            return None;
        }
        let it = Bound::from_owned_ptr(py, it);
        let mut out = Vec::new();
        loop {
            let next = ffi::PyIter_Next(it.as_ptr());
            if next.is_null() {
                if PyErr::take(py).is_some() {
                    return None;
                }
                return Some(out);
            }
            out.push(Bound::from_owned_ptr(py, next));
        }
    }
}

/// A pre-existing exact `set` of plain constants (ints, strs, floats, bools, None, bytes)
/// reached by a source: a read-only mirror, its contents guarded by equality. None for any
/// other object.
pub fn realize_input_set(
    tx: &mut Tracer<'_>,
    obj: &Bound<'_, PyAny>,
    source: &Option<std::sync::Arc<crate::guards::Source>>,
) -> TResult<Option<Value>> {
    match (source, obj.is_exact_instance_of::<PySet>()) {
        (Some(src), true) => pinned_mirror(tx, obj, src),
        _ => Ok(None),
    }
}

/// A mirror of the pre-existing set (or set-subclass object) `obj` of plain constants,
/// reached by `src`: its members read by C iteration (no method of a subclass runs),
/// guarded (an exact set by equality; a subclass object by its C iteration order, which
/// pins its contents without calling its `__eq__`). A change in the trace is replayed on
/// `obj`'s own storage. None when a member is not a plain constant.
pub fn pinned_mirror(
    tx: &mut Tracer<'_>,
    obj: &Bound<'_, PyAny>,
    src: &std::sync::Arc<crate::guards::Source>,
) -> TResult<Option<Value>> {
    let py = tx.py;
    if obj.cast::<PySet>().is_err() {
        return Ok(None);
    }
    let Some(members) = c_members(obj) else {
        return Ok(None);
    };
    let copy = PySet::empty(py).map_err(|e| tx.err(e))?;
    for item in &members {
        let plain = item.is_exact_instance_of::<pyo3::types::PyInt>()
            || item.is_exact_instance_of::<pyo3::types::PyString>()
            || item.is_exact_instance_of::<pyo3::types::PyFloat>()
            || item.is_exact_instance_of::<pyo3::types::PyBool>()
            || item.is_exact_instance_of::<pyo3::types::PyBytes>()
            || item.is_none();
        if !plain {
            return Ok(None);
        }
        copy.add(item).map_err(|e| tx.err(e))?;
    }
    let order = pyo3::types::PyTuple::new(py, &members).map_err(|e| tx.err(e))?;
    if obj.is_exact_instance_of::<PySet>() {
        tx.guard(
            src,
            crate::guards::Guard::Equals(copy.clone().into_any().unbind()),
        );
    } else {
        tx.guard(
            &std::sync::Arc::new(crate::guards::Source::SetOrder { base: src.clone() }),
            crate::guards::Guard::Equals(order.clone().into_any().unbind()),
        );
    }
    let real = PySet::empty(py).map_err(|e| tx.err(e))?;
    for item in copy.iter() {
        real.add(item).map_err(|e| tx.err(e))?;
    }
    Ok(Some(Value::Std(Rc::new(StdVal::Set(SetVal {
        real: real.unbind(),
        objs: RefCell::new(Vec::new()),
        version: Cell::new(0),
        pinned: Some(src.clone()),
        logged: Cell::new(false),
        ops: RefCell::new(Vec::new()),
        order: Some(order.unbind()),
    })))))
}

/// `s.update(it)`, item by item.
pub fn set_update(tx: &mut Tracer<'_>, s: &Rc<StdVal>, it: &Value) -> TResult<()> {
    let StdVal::Set(set) = &**s else {
        return Err(Exit::internal("update of a non-set"));
    };
    let items = if matches!(it, Value::Std(o) if Rc::ptr_eq(o, s)) {
        return Ok(());
    } else if let Value::Std(o) = it {
        match &**o {
            // Another set: membership does not depend on its order.
            StdVal::Set(other) => other.all_items(tx)?,
            _ => unpack(tx, it)?,
        }
    } else {
        let iter = crate::interp::families::iter(tx, it)?;
        while let Some(v) = iter_next(tx, &iter)? {
            set.add(tx, &v)?;
        }
        return Ok(());
    };
    for v in items {
        set.add(tx, &v)?;
    }
    Ok(())
}

fn const_index(tx: &Tracer<'_>, v: &Value, what: &str) -> TResult<i64> {
    v.as_const(tx.py)
        .filter(|c| c.get_type().name().map(|n| n == "int").unwrap_or(false))
        .and_then(|c| c.extract().ok())
        .ok_or_else(|| Exit::brk(format!("{what} with a non-constant int")))
}

/// Equality of a member with `x` (constants by value, everything else by identity).
fn item_eq(tx: &mut Tracer<'_>, a: &Value, b: &Value) -> TResult<bool> {
    match (plain_const(tx, a), plain_const(tx, b)) {
        (Some(x), Some(y)) => x
            .eq(y)
            .map_err(|e| Exit::brk(format!("== raised {}", e.value(tx.py)))),
        _ => match (member(tx, a), member(tx, b)) {
            (Ok(Member::Ident(x)), Ok(Member::Ident(y))) if x == y => Ok(true),
            // A constant never equals an object compared by identity; tensors compare
            // by value, which depends on their data.
            (Ok(_), Ok(_)) if !a.is_tensor() && !b.is_tensor() => Ok(false),
            _ => Err(Exit::brk("comparing non-constant deque items")),
        },
    }
}

/// The set methods that change it (modelled in `call_method`).
const SET_MUTATORS: [&str; 5] = ["add", "discard", "remove", "update", "clear"];

/// Methods of deques and sets.
pub fn call_method(
    tx: &mut Tracer<'_>,
    recv: &Value,
    s: &Rc<StdVal>,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    let none = Value::none(py);
    if let (StdVal::ModelOutput { .. }, true) = (&**s, kwargs.is_empty()) {
        return super::model_output::call_method(tx, s, name, &args);
    }
    if let (StdVal::HookHandle(reg), "remove", true, true) =
        (&**s, name, args.is_empty(), kwargs.is_empty())
    {
        reg.removed.set(true);
        return Ok(none);
    }
    if let (StdVal::InstDict { obj }, true) = (&**s, kwargs.is_empty()) {
        return super::inst_dict::call_method(tx, obj, name, &args);
    }
    if let (StdVal::SigParams { sig }, "keys", true) = (&**s, name, args.is_empty()) {
        // The parameter names, in order (a list stands for the keys view).
        return Ok(Value::new_list(super::signature::param_names(tx, sig)?));
    }
    if !kwargs.is_empty() {
        return Err(Exit::brk(format!(
            "keyword arguments to {}.{name}",
            s.type_name()
        )));
    }
    if !matches!(
        name,
        "copy"
            | "count"
            | "index"
            | "__len__"
            | "__contains__"
            | "union"
            | "intersection"
            | "difference"
            | "symmetric_difference"
            | "issubset"
            | "issuperset"
            | "isdisjoint"
    ) {
        tx.side_effects.note_mutation();
    }
    match &**s {
        StdVal::Deque(d) => match (name, args.as_slice()) {
            ("append" | "appendleft", [x]) => {
                d.push(x.clone(), name == "appendleft");
                Ok(none)
            }
            ("extend" | "extendleft", [x]) => {
                extend(tx, s, x, name == "extendleft")?;
                Ok(none)
            }
            ("pop" | "popleft", []) => {
                let v = if name == "pop" {
                    d.items.borrow_mut().pop_back()
                } else {
                    d.items.borrow_mut().pop_front()
                };
                d.bump();
                v.ok_or_else(|| Exit::brk("IndexError: pop from an empty deque"))
            }
            ("clear", []) => {
                d.items.borrow_mut().clear();
                d.bump();
                Ok(none)
            }
            ("reverse", []) => {
                d.items.borrow_mut().make_contiguous().reverse();
                d.bump();
                Ok(none)
            }
            ("rotate", rest) => {
                let n = match rest {
                    [] => 1,
                    [n] => const_index(tx, n, "deque.rotate")?,
                    _ => return Err(Exit::brk("deque.rotate arguments")),
                };
                let mut items = d.items.borrow_mut();
                let len = items.len() as i64;
                if len > 0 {
                    let k = n.rem_euclid(len) as usize;
                    items.rotate_right(k);
                }
                d.bump();
                Ok(none)
            }
            ("copy", []) => {
                let c = DequeVal::new(d.maxlen);
                *c.items.borrow_mut() = d.items.borrow().clone();
                Ok(Value::Std(Rc::new(StdVal::Deque(c))))
            }
            ("count", [x]) => {
                let items: Vec<Value> = d.items.borrow().iter().cloned().collect();
                let mut n = 0usize;
                for v in &items {
                    if item_eq(tx, v, x)? {
                        n += 1;
                    }
                }
                Ok(Value::constant(py, n))
            }
            _ => Err(Exit::brk(format!("deque.{name}"))),
        },
        StdVal::Set(set)
            if set.pinned.is_some() && !set.logged.get() && SET_MUTATORS.contains(&name) =>
        {
            // A pre-existing set: its change is replayed on the real set after the graph.
            tx.side_effects.set_mutated(s);
            set.logged.set(true);
            call_method(tx, recv, s, name, args, kwargs)
        }
        StdVal::Set(_) if set_algebra_name(name) => set_algebra_method(tx, recv, name, &args)?
            .ok_or_else(|| Exit::internal("set algebra method")),
        StdVal::Set(set) => match (name, args.as_slice()) {
            ("add", [x]) => {
                set.add(tx, x)?;
                Ok(none)
            }
            ("discard", [x]) => {
                set.discard(tx, x)?;
                Ok(none)
            }
            ("remove", [x]) => {
                if set.discard(tx, x)? {
                    Ok(none)
                } else {
                    Err(Exit::brk("KeyError in set.remove"))
                }
            }
            ("update", its) => {
                for it in its {
                    set_update(tx, s, it)?;
                }
                Ok(none)
            }
            ("clear", []) => {
                set.mutable()?;
                if set.pinned.is_some() {
                    set.ops.borrow_mut().push(SetOp::Clear);
                }
                set.real.bind(py).clear();
                set.objs.borrow_mut().clear();
                set.version.set(set.version.get() + 1);
                Ok(none)
            }
            ("copy", []) => {
                let c = Rc::new(StdVal::Set(SetVal::new(py).map_err(|e| tx.err(e))?));
                set_update(tx, &c, recv)?;
                Ok(Value::Std(c))
            }
            _ => Err(Exit::brk(format!("set.{name}"))),
        },
        other => Err(Exit::brk(format!(
            "method {name} of a {}",
            other.type_name()
        ))),
    }
}

fn set_algebra_name(name: &str) -> bool {
    matches!(
        name,
        "union"
            | "intersection"
            | "difference"
            | "symmetric_difference"
            | "intersection_update"
            | "difference_update"
            | "symmetric_difference_update"
    )
}

/// `x in v` for deques and sets.
pub fn contains(tx: &mut Tracer<'_>, s: &StdVal, x: &Value) -> TResult<bool> {
    match s {
        StdVal::InstDict { obj } => super::inst_dict::contains(tx, obj, x),
        StdVal::DictView { dict, kind } => super::dict_views::contains(tx, dict, *kind, x),
        StdVal::Set(set) => set.contains(tx, x),
        StdVal::Deque(d) => {
            let items: Vec<Value> = d.items.borrow().iter().cloned().collect();
            for v in &items {
                if item_eq(tx, v, x)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        other => Err(Exit::brk(format!("`in` on a '{}'", other.type_name()))),
    }
}

/// `dq[i]`.
pub fn subscr(tx: &mut Tracer<'_>, s: &StdVal, idx: &Value) -> TResult<Value> {
    if let StdVal::InstDict { obj } = s {
        return super::inst_dict::subscr(tx, obj, idx);
    }
    if let StdVal::ModelOutput { .. } = s {
        return super::model_output::subscr(tx, s, idx);
    }
    if let StdVal::ModuleSlice { items, .. } = s {
        let i = const_index(tx, idx, "ModuleList index")?;
        let n = items.len() as i64;
        let j = if i < 0 { i + n } else { i };
        return items
            .get(usize::try_from(j).unwrap_or(usize::MAX))
            .cloned()
            .ok_or_else(|| Exit::brk("IndexError: ModuleList index out of range"));
    }
    let StdVal::Deque(d) = s else {
        return Err(Exit::brk(format!(
            "'{}' object is not subscriptable",
            s.type_name()
        )));
    };
    let i = const_index(tx, idx, "deque index")?;
    let items = d.items.borrow();
    let n = items.len() as i64;
    let j = if i < 0 { i + n } else { i };
    items
        .get(usize::try_from(j).unwrap_or(usize::MAX))
        .cloned()
        .ok_or_else(|| Exit::brk("IndexError: deque index out of range"))
}

/// The set algebra: `a | b`, `a & b`, `a - b`, `a ^ b` (`op` one of "or", "and", "sub",
/// "xor"), in place on `a` when `inplace` (`|=`, ...: `a` must be a set made or changed in
/// the trace). The constant members go through CPython's own set operators on the real
/// sets (so the result and its order are CPython's); tensors and other identity-compared
/// members by identity. None when an operand is not a traced set (the caller decides).
pub fn set_algebra(
    tx: &mut Tracer<'_>,
    op: &str,
    a: &Value,
    b: &Value,
    inplace: bool,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let (Value::Std(sa), Value::Std(sb)) = (a, b) else {
        return Ok(None);
    };
    let (StdVal::Set(x), StdVal::Set(y)) = (&**sa, &**sb) else {
        return Ok(None);
    };
    if x.pinned.is_some() || y.pinned.is_some() {
        return Err(Exit::brk(
            "set algebra on a set from the inputs (its iteration order is not guarded)",
        ));
    }
    let pyop = match (op, inplace) {
        ("or", false) => "or_",
        ("or", true) => "ior",
        ("and", false) => "and_",
        ("and", true) => "iand",
        ("sub", false) => "sub",
        ("sub", true) => "isub",
        ("xor", false) => "xor",
        ("xor", true) => "ixor",
        _ => return Ok(None),
    };
    let ys: Vec<(usize, Value)> = y.objs.borrow().clone();
    let xs: Vec<(usize, Value)> = x.objs.borrow().clone();
    let in_y = |id: &usize| ys.iter().any(|(i, _)| i == id);
    let in_x = |id: &usize| xs.iter().any(|(i, _)| i == id);
    let objs: Vec<(usize, Value)> = match op {
        "or" => xs
            .iter()
            .cloned()
            .chain(ys.iter().filter(|(i, _)| !in_x(i)).cloned())
            .collect(),
        "and" => xs.iter().filter(|(i, _)| in_y(i)).cloned().collect(),
        "sub" => xs.iter().filter(|(i, _)| !in_y(i)).cloned().collect(),
        _ => xs
            .iter()
            .filter(|(i, _)| !in_y(i))
            .cloned()
            .chain(ys.iter().filter(|(i, _)| !in_x(i)).cloned())
            .collect(),
    };
    let f = tx
        .hooks
        .operator
        .bind(py)
        .getattr(pyop)
        .map_err(|e| tx.err(e))?;
    if inplace {
        x.mutable()?;
        f.call1((x.real.bind(py), y.real.bind(py)))
            .map_err(|e| tx.err(e))?;
        *x.objs.borrow_mut() = objs;
        x.version.set(x.version.get() + 1);
        return Ok(Some(a.clone()));
    }
    let real = f
        .call1((x.real.bind(py), y.real.bind(py)))
        .and_then(|r| r.cast_into::<PySet>().map_err(PyErr::from))
        .map_err(|e| tx.err(e))?;
    Ok(Some(Value::Std(Rc::new(StdVal::Set(SetVal {
        real: real.unbind(),
        objs: RefCell::new(objs),
        version: Cell::new(0),
        pinned: None,
        logged: Cell::new(false),
        ops: RefCell::new(Vec::new()),
        order: None,
    })))))
}

/// `s.union(*others)` and the other algebra methods (`*_update`: in place), each argument
/// any iterable (made a set first, as CPython does).
fn set_algebra_method(
    tx: &mut Tracer<'_>,
    recv: &Value,
    name: &str,
    args: &[Value],
) -> TResult<Option<Value>> {
    let py = tx.py;
    let (op, inplace) = match name {
        "union" => ("or", false),
        "intersection" => ("and", false),
        "difference" => ("sub", false),
        "symmetric_difference" => ("xor", false),
        "intersection_update" => ("and", true),
        "difference_update" => ("sub", true),
        "symmetric_difference_update" => ("xor", true),
        _ => return Ok(None),
    };
    if name.starts_with("symmetric_difference") && args.len() != 1 {
        return Err(Exit::brk(format!("set.{name} takes one argument")));
    }
    let mut acc = if inplace {
        recv.clone()
    } else {
        // A copy: the receiver itself is not changed.
        let c = Rc::new(StdVal::Set(SetVal::new(py).map_err(|e| tx.err(e))?));
        set_update(tx, &c, recv)?;
        Value::Std(c)
    };
    for other in args {
        let as_set = match other {
            Value::Std(s) if matches!(&**s, StdVal::Set(_)) => other.clone(),
            _ => {
                let c = Rc::new(StdVal::Set(SetVal::new(py).map_err(|e| tx.err(e))?));
                set_update(tx, &c, other)?;
                Value::Std(c)
            }
        };
        acc = set_algebra(tx, op, &acc, &as_set, true)?
            .ok_or_else(|| Exit::internal("set algebra on a non-set"))?;
    }
    Ok(Some(if inplace { Value::none(py) } else { acc }))
}
