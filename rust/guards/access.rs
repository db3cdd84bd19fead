//! Accessors: how a guard-tree node gets its value from its parent's value (or, for
//! roots, from the frame, globals or builtins). The fast path never raises: any error
//! (missing attribute or key, wrong container type) is cleared and reported as `None`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

use super::source::{DictKey, Source};

#[derive(Debug)]
pub(crate) enum Access {
    /// Root: the frame's local slot.
    Local(usize),
    /// Root: the globals dict (children are `DictItem`s).
    Globals,
    /// Root: the builtins dict.
    Builtins,
    /// Root: `sys.modules`.
    SysModules,
    /// Root: the result of calling `_abc.get_cache_token` (held here).
    AbcCacheToken(Py<PyAny>),
    /// Root: the result of calling `_thread.get_ident` (held here).
    ThreadIdent(Py<PyAny>),
    /// Root: a class object (held here), for `Source::Class`.
    Class(Py<PyAny>),
    Attr(Py<PyString>),
    InstDict,
    DictItem(Py<PyAny>),
    /// An item of a dict subclass's own storage (no subclass code runs).
    SubDictItem(Py<PyAny>),
    /// `dict.get(key)` of an exact dict: the item or None.
    DictGet(Py<PyAny>),
    Index(isize),
    TypeOf,
    WeakrefDeref,
    /// `type.__subclasses__(parent)` (a C method: no user code).
    Subclasses,
    /// An item of a tuple/list iterator, `offset` past its position.
    IterItem(usize),
    /// The number of items a tuple/list iterator has left.
    IterRemaining,
    /// `tuple(s)` of an exact set or frozenset.
    SetOrder,
    /// `torch.as_tensor(ndarray)`.
    NumpyTensor,
}

/// Clears a pending Python error (if any) and returns `None`.
#[inline]
fn fail<T>() -> Option<T> {
    // SAFETY: called with the GIL held (all callers hold a Bound).
    unsafe {
        if !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear();
        }
    }
    None
}

impl Access {
    /// The accessor for `src`'s last step (`src` itself for roots).
    pub fn for_source(py: Python<'_>, src: &Source) -> Access {
        let key_obj = |k: &DictKey| -> Py<PyAny> { k.to_object(py) };
        match src {
            Source::Local { index, .. } => Access::Local(*index as usize),
            Source::Globals => Access::Globals,
            Source::SysModules => Access::SysModules,
            // `_abc` is CPython's C accelerator of `abc`; were it missing, calling None
            // fails and the guard fails with it (a recompile, never a stale answer).
            Source::AbcCacheToken => Access::AbcCacheToken(
                py.import("_abc")
                    .and_then(|m| m.getattr("get_cache_token"))
                    .map(|f| f.unbind())
                    .unwrap_or_else(|_| py.None()),
            ),
            Source::ThreadIdent => Access::ThreadIdent(
                py.import("_thread")
                    .and_then(|m| m.getattr("get_ident"))
                    .map(|f| f.unbind())
                    .unwrap_or_else(|_| py.None()),
            ),
            Source::Global { name } | Source::Builtin { name } => {
                Access::DictItem(PyString::intern(py, name).into_any().unbind())
            }
            Source::Attr { name, .. } => Access::Attr(PyString::intern(py, name).unbind()),
            Source::InstDict { .. } => Access::InstDict,
            Source::DictItem { key, .. } => Access::DictItem(key_obj(key)),
            Source::SubDictItem { key, .. } => Access::SubDictItem(key_obj(key)),
            Source::DictGet { key, .. } => Access::DictGet(key_obj(key)),
            Source::Index { index, .. } => Access::Index(*index),
            Source::TypeOf { .. } => Access::TypeOf,
            Source::WeakrefDeref { .. } => Access::WeakrefDeref,
            Source::Subclasses { .. } => Access::Subclasses,
            Source::IterItem { offset, .. } => Access::IterItem(*offset),
            Source::IterRemaining { .. } => Access::IterRemaining,
            Source::SetOrder { .. } => Access::SetOrder,
            Source::NumpyTensor { .. } => Access::NumpyTensor,
            // Made by `GuardTree::build`, which holds the class; a stray one fails.
            Source::Class { .. } => Access::Class(py.None()),
        }
    }

    pub fn is_dict_item(&self) -> bool {
        matches!(self, Access::DictItem(_))
    }

    /// The child value of `parent`; `None` on any failure (no exception left set).
    #[inline]
    pub fn child<'py>(&self, parent: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
        let py = parent.py();
        let p = parent.as_ptr();
        match self {
            Access::DictItem(key) => dict_item(parent, key, true),
            // A dict subclass's own storage (no subclass __getitem__/__missing__).
            Access::SubDictItem(key) => dict_item(parent, key, false),
            Access::DictGet(key) => {
                // SAFETY: exact-dict check first; PyDict_GetItemWithError returns a borrowed
                // reference or NULL (missing: no error; an error from a key's __eq__ is
                // cleared and counts as failure).
                unsafe {
                    if ffi::PyDict_CheckExact(parent.as_ptr()) == 0 {
                        return None;
                    }
                    let r = ffi::PyDict_GetItemWithError(parent.as_ptr(), key.as_ptr());
                    if r.is_null() {
                        if !ffi::PyErr_Occurred().is_null() {
                            return fail();
                        }
                        return Some(py.None().into_bound(py));
                    }
                    Some(Bound::from_borrowed_ptr(py, r))
                }
            }
            Access::Attr(name) => {
                // SAFETY: PyObject_GetAttr returns a new reference or NULL with an error.
                let r = unsafe { ffi::PyObject_GetAttr(p, name.as_ptr()) };
                if r.is_null() {
                    return fail();
                }
                // SAFETY: `r` is a new reference we own.
                Some(unsafe { Bound::from_owned_ptr(py, r) })
            }
            Access::InstDict => {
                // SAFETY: the generic __dict__ getter (no Python code): a new reference to
                // the instance dict (materialised if needed) or NULL with AttributeError.
                let r = unsafe { ffi::PyObject_GenericGetDict(p, std::ptr::null_mut()) };
                if r.is_null() {
                    return fail();
                }
                // SAFETY: `r` is a new reference we own.
                Some(unsafe { Bound::from_owned_ptr(py, r) })
            }
            Access::Index(i) => {
                // SAFETY: tuple / list (or a subclass: namedtuple, structseq, a list subclass
                // with the stock item access, whose items live in the base's storage) checks,
                // bounds-checked index, borrowed item turned into an owned reference at once.
                unsafe {
                    let (len, is_tuple) = if ffi::PyTuple_Check(p) != 0 {
                        (ffi::PyTuple_GET_SIZE(p), true)
                    } else if ffi::PyList_Check(p) != 0 {
                        (ffi::PyList_GET_SIZE(p), false)
                    } else {
                        return None;
                    };
                    let idx = if *i < 0 { *i + len } else { *i };
                    if idx < 0 || idx >= len {
                        return None;
                    }
                    let r = if is_tuple {
                        ffi::PyTuple_GET_ITEM(p, idx)
                    } else {
                        ffi::PyList_GET_ITEM(p, idx)
                    };
                    Some(Bound::from_borrowed_ptr(py, r))
                }
            }
            Access::TypeOf => Some(parent.get_type().into_any()),
            Access::Subclasses => {
                let ty = parent.cast::<pyo3::types::PyType>().ok()?;
                py.get_type::<pyo3::types::PyType>()
                    .getattr("__subclasses__")
                    .and_then(|f| f.call1((ty,)))
                    .ok()
                    .or_else(fail)
            }
            Access::IterItem(offset) => IterView::of(parent)?.item(*offset),
            Access::IterRemaining => {
                let left = IterView::of(parent)?.left()?;
                Some(pyo3::types::PyInt::new(py, left).into_any())
            }
            Access::SetOrder => {
                // The set type's C iterator: a subclass's own `__iter__` never runs.
                let items = crate::interp::stdlib_set::c_members(parent)?;
                pyo3::types::PyTuple::new(py, items)
                    .ok()
                    .map(|t| t.into_any())
                    .or_else(fail)
            }
            Access::NumpyTensor => {
                static AS_TENSOR: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
                let ndarray = parent.get_type();
                if !ndarray.name().is_ok_and(|n| n == "ndarray") {
                    return None;
                }
                let f = AS_TENSOR
                    .get_or_try_init(py, || {
                        py.import("torch")
                            .and_then(|t| t.getattr("as_tensor"))
                            .map(|f| f.unbind())
                    })
                    .ok()?;
                f.bind(py).call1((parent,)).ok().or_else(fail)
            }
            Access::WeakrefDeref => {
                // SAFETY: weakref type check first; PyWeakref_GetObject returns a borrowed
                // reference (None for a dead referent) that we take ownership of at once.
                unsafe {
                    if ffi::PyWeakref_Check(p) == 0 {
                        return None;
                    }
                    // Deprecated from 3.13, where this crate only builds for the bytecode
                    // layer's tests.
                    #[allow(deprecated)]
                    let r = ffi::PyWeakref_GetObject(p);
                    if r.is_null() {
                        return fail();
                    }
                    Some(Bound::from_borrowed_ptr(py, r))
                }
            }
            // Roots have no parent; the tree evaluates them directly.
            Access::Local(_)
            | Access::Globals
            | Access::Builtins
            | Access::SysModules
            | Access::AbcCacheToken(_)
            | Access::ThreadIdent(_)
            | Access::Class(_) => None,
        }
    }

    /// Why [`child`](Self::child) failed on `parent` (slow path, for messages).
    pub fn why_inaccessible(&self, parent: &Bound<'_, PyAny>) -> String {
        let ty = super::tensor_meta::type_name(&parent.get_type());
        match self {
            Access::DictItem(key) => {
                // SAFETY: reads the type of a live object.
                let exact = unsafe { ffi::PyDict_CheckExact(parent.as_ptr()) } != 0;
                if parent.cast::<pyo3::types::PyDict>().is_err() {
                    format!("not a dict ({ty})")
                } else if !exact {
                    format!("a dict subclass ({ty}), not an exact dict")
                } else {
                    let k = key.bind(parent.py());
                    format!(
                        "key {} missing",
                        k.repr().map(|r| r.to_string()).unwrap_or_default()
                    )
                }
            }
            Access::Attr(name) => match parent.getattr(name.bind(parent.py())) {
                Err(e) => format!("{e}"),
                Ok(_) => "attribute now accessible".into(),
            },
            Access::InstDict => format!("{ty} object has no __dict__"),
            Access::Index(i) => match super::leaf::container_len(parent) {
                Some(n) => format!("index {i} out of range for length {n}"),
                None => format!("not a tuple or list ({ty})"),
            },
            _ => "not accessible".into(),
        }
    }
}

/// `parent[key]` from the dict storage itself (an exact dict, or any dict when not
/// `exact`); `None` when absent or not a dict (no exception left set).
#[inline]
fn dict_item<'py>(
    parent: &Bound<'py, PyAny>,
    key: &Py<PyAny>,
    exact: bool,
) -> Option<Bound<'py, PyAny>> {
    let p = parent.as_ptr();
    // SAFETY: a dict type check, then a C-level lookup returning a borrowed reference that
    // we immediately turn into an owned one.
    unsafe {
        let is_dict = if exact {
            ffi::PyDict_CheckExact(p)
        } else {
            ffi::PyDict_Check(p)
        };
        if is_dict == 0 {
            return None;
        }
        let r = ffi::PyDict_GetItemWithError(p, key.as_ptr());
        if r.is_null() {
            return fail();
        }
        Some(Bound::from_borrowed_ptr(parent.py(), r))
    }
}

/// Exact builtin iterator types whose C `__reduce__` reports what is left without advancing
/// them: tuple/list iterators (the sequence and a position), and dict key/value/item
/// iterators, forward or reversed (a fresh list of the items left, at position 0; None
/// once the dict changed size, as the iterator itself would raise).
const SEQ_ITERATORS: [&str; 8] = [
    "tuple_iterator",
    "list_iterator",
    "dict_keyiterator",
    "dict_valueiterator",
    "dict_itemiterator",
    "dict_reversekeyiterator",
    "dict_reversevalueiterator",
    "dict_reverseitemiterator",
];

/// The sequence and position of one of [`SEQ_ITERATORS`]; an exhausted one as an empty
/// tuple at 0. None otherwise.
pub fn seq_iterator_state<'py>(it: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyAny>, usize)> {
    seq_iterator_parts(it).map(|(seq, index, _)| (seq, index))
}

/// `seq_iterator_state`, and whether the sequence is a copy of a dict's items.
fn seq_iterator_parts<'py>(it: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyAny>, usize, bool)> {
    let ty = it.get_type();
    let name = ty.name().ok()?;
    if !SEQ_ITERATORS.iter().any(|n| name == *n) || ty.module().ok()?.to_str().ok()? != "builtins" {
        return None;
    }
    let copied = name.to_str().ok()?.starts_with("dict_");
    let red = it.call_method0("__reduce__").ok()?;
    let seq = red.get_item(1).ok()?.get_item(0).ok()?;
    let index = match red.len().ok()? {
        3 => red.get_item(2).ok()?.extract::<usize>().ok()?,
        _ => 0,
    };
    Some((seq, index, copied))
}

/// One sequence a pre-existing iterator walks: the real tuple, list or range, or a fresh
/// list of a dict's items left, and the position in it.
pub struct IterPart<'py> {
    pub seq: Bound<'py, PyAny>,
    pub index: usize,
    /// `seq` is a copy of a dict's items.
    pub copied: bool,
}

/// What a pre-existing iterator the tracer reads without advancing it has left: one of
/// [`SEQ_ITERATORS`], a `zip` over several of them (non-strict), or an `enumerate` over
/// either (their C `__reduce__` gives the inner iterators and the count).
pub struct IterView<'py> {
    /// One part, or a `zip`'s parts in order (items are tuples of theirs).
    pub parts: Vec<IterPart<'py>>,
    pub zipped: bool,
    /// An `enumerate`'s next count: items are `(count + k, item)`.
    pub count: Option<i64>,
}

/// The parts of a tuple/list/dict iterator (one) or of a non-strict `zip` of them.
fn iter_parts<'py>(it: &Bound<'py, PyAny>) -> Option<(Vec<IterPart<'py>>, bool)> {
    if let Some((seq, index, copied)) = seq_iterator_parts(it) {
        return Some((vec![IterPart { seq, index, copied }], false));
    }
    let ty = it.get_type();
    if ty.name().ok()? != "zip" || ty.module().ok()?.to_str().ok()? != "builtins" {
        return None;
    }
    // `(zip, (it1, it2, ...))`, with a third element for `strict=True` (not modelled).
    let red = it.call_method0("__reduce__").ok()?;
    if red.len().ok()? != 2 {
        return None;
    }
    let mut parts = Vec::new();
    for inner in red.get_item(1).ok()?.try_iter().ok()? {
        let (seq, index, copied) = seq_iterator_parts(&inner.ok()?)?;
        parts.push(IterPart { seq, index, copied });
    }
    (!parts.is_empty()).then_some((parts, true))
}

impl<'py> IterView<'py> {
    pub fn of(it: &Bound<'py, PyAny>) -> Option<IterView<'py>> {
        // SAFETY: compares the type pointer of a live object with a static type object.
        let is_enumerate =
            unsafe { ffi::Py_TYPE(it.as_ptr()) == std::ptr::addr_of_mut!(ffi::PyEnum_Type) };
        if is_enumerate {
            let red = it.call_method0("__reduce__").ok()?;
            let args = red.get_item(1).ok()?;
            let (parts, zipped) = iter_parts(&args.get_item(0).ok()?)?;
            let count = args.get_item(1).ok()?.extract().ok()?;
            return Some(IterView {
                parts,
                zipped,
                count: Some(count),
            });
        }
        let (parts, zipped) = iter_parts(it)?;
        Some(IterView {
            parts,
            zipped,
            count: None,
        })
    }

    /// Whether a part is a copy of a dict's items.
    pub fn copied(&self) -> bool {
        self.parts.iter().any(|p| p.copied)
    }

    /// How many items are left (a `zip` stops at its shortest part).
    pub fn left(&self) -> Option<usize> {
        let mut left = usize::MAX;
        for p in &self.parts {
            left = left.min(p.seq.len().ok()?.saturating_sub(p.index));
        }
        Some(left)
    }

    /// The item `offset` places past the position (None past the end).
    pub fn item(&self, offset: usize) -> Option<Bound<'py, PyAny>> {
        if offset >= self.left()? {
            return None;
        }
        let at = |p: &IterPart<'py>| p.seq.get_item(p.index + offset).ok();
        let item = if self.zipped {
            let items = self.parts.iter().map(at).collect::<Option<Vec<_>>>()?;
            pyo3::types::PyTuple::new(items[0].py(), items)
                .ok()?
                .into_any()
        } else {
            at(self.parts.first()?)?
        };
        match self.count {
            None => Some(item),
            Some(c) => {
                let py = item.py();
                let n = (c + offset as i64).into_pyobject(py).ok()?.into_any();
                Some(pyo3::types::PyTuple::new(py, [n, item]).ok()?.into_any())
            }
        }
    }
}
