//! Leaf guards: the checks a guard tree runs on one value.

use crate::ImportCached;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

use super::source::py_str_repr;
use super::tensor_meta::{py_bool, type_name, TensorMeta};

/// A check on one value.
#[derive(Debug)]
pub enum Guard {
    /// `type(v) is T` (exact).
    TypeMatch(Py<PyType>),
    /// `v is obj` (the strong reference keeps `id(obj)` from being reused).
    IdMatch(Py<PyAny>),
    /// `type(v) is type(c) and v == c`, for constants: None, bool, int, float, str, bytes,
    /// dtype, device, torch.Size, tuples of constants. Tuples compare element types too.
    Equals(Py<PyAny>),
    /// `v` is an exact tuple, list or dict and `len(v) == n`. The kind of container is not
    /// recorded here; the tracer pins it with a `TypeMatch` on the same source.
    Len(usize),
    /// `v` is an exact dict whose keys equal these, in order.
    DictKeys(Vec<Py<PyAny>>),
    /// `v` is a dict (a subclass too: its own storage, read without Python code) whose
    /// keys equal these, in order.
    SubDictKeys(Vec<Py<PyAny>>),
    /// `hasattr(v, name) == expected` (may run Python code).
    HasAttr(String, bool),
    /// `v` is a dict without the str key `name` (an instance `__dict__`: the class
    /// attribute read through the instance is not shadowed by an instance attribute).
    NotInDict(String),
    /// Tensor metadata match.
    Tensor(TensorMeta),
}

impl Guard {
    pub fn clone_ref(&self, py: Python<'_>) -> Guard {
        match self {
            Guard::TypeMatch(t) => Guard::TypeMatch(t.clone_ref(py)),
            Guard::IdMatch(o) => Guard::IdMatch(o.clone_ref(py)),
            Guard::Equals(c) => Guard::Equals(c.clone_ref(py)),
            Guard::Len(n) => Guard::Len(*n),
            Guard::DictKeys(k) => Guard::DictKeys(k.iter().map(|k| k.clone_ref(py)).collect()),
            Guard::SubDictKeys(k) => {
                Guard::SubDictKeys(k.iter().map(|k| k.clone_ref(py)).collect())
            }
            Guard::HasAttr(n, e) => Guard::HasAttr(n.clone(), *e),
            Guard::NotInDict(n) => Guard::NotInDict(n.clone()),
            Guard::Tensor(m) => Guard::Tensor(m.clone_ref(py)),
        }
    }
}

/// When a passing leaf is known to still pass without re-running it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stability {
    /// Depends only on which object the value is (identity, or an immutable object's
    /// type/value): holds while the value is the same object.
    Identity,
    /// Depends on the state of the value, a dict: holds while its version tag is unchanged.
    DictState,
    /// Must always run (tensor metadata changes in place; hasattr runs Python).
    Never,
}

/// Precomputed data for [`Guard::Equals`] and [`Guard::HasAttr`].
#[derive(Debug)]
enum Fast {
    None,
    Int(i64),
    Str,
    Float(f64),
    Tuple,
    Generic,
    AttrName(Py<PyString>),
}

/// A guard prepared for evaluation.
#[derive(Debug)]
pub(crate) struct Leaf {
    pub guard: Guard,
    fast: Fast,
    pub stability: Stability,
    /// `describe()` line.
    pub desc: String,
}

/// Objects whose value can never change (so equality holds while identity holds).
fn deeply_immutable(c: &Bound<'_, PyAny>) -> bool {
    let py = c.py();
    if c.is_none() {
        return true;
    }
    let ty = c.get_type();
    // SAFETY: the Check* macros read the type of a live object.
    let builtin = unsafe {
        let p = c.as_ptr();
        ffi::PyBool_Check(p) != 0
            || ffi::PyLong_CheckExact(p) != 0
            || ffi::PyFloat_CheckExact(p) != 0
            || ffi::PyComplex_CheckExact(p) != 0
            || ffi::PyUnicode_CheckExact(p) != 0
            || ffi::PyBytes_CheckExact(p) != 0
    };
    if builtin {
        return true;
    }
    let name = type_name(&ty);
    if matches!(
        name.as_str(),
        "torch.dtype" | "torch.device" | "torch.layout" | "torch.memory_format"
    ) {
        return true;
    }
    if let Ok(t) = c.cast::<PyTuple>() {
        return (ty.is(py.get_type::<PyTuple>()) || name == "torch.Size")
            && t.iter().all(|e| deeply_immutable(&e));
    }
    false
}

fn repr(v: &Bound<'_, PyAny>) -> String {
    let s = v
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unreprable>".into());
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn key_list(py: Python<'_>, keys: &[Py<PyAny>]) -> String {
    let items: Vec<String> = keys.iter().map(|k| repr(k.bind(py))).collect();
    format!("[{}]", items.join(", "))
}

/// Exact type and equal value, recursively for tuples; errors count as "not equal".
fn strict_eq(v: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>) -> bool {
    if v.is(c) {
        return true;
    }
    if v.get_type_ptr() != c.get_type_ptr() {
        return false;
    }
    if let (Ok(tv), Ok(tc)) = (v.cast::<PyTuple>(), c.cast::<PyTuple>()) {
        return tv.len() == tc.len() && tv.iter().zip(tc.iter()).all(|(a, b)| strict_eq(&a, &b));
    }
    // SAFETY: type checks and value reads on live objects of the checked exact type.
    unsafe {
        let (pv, pc) = (v.as_ptr(), c.as_ptr());
        if ffi::PyFloat_CheckExact(pv) != 0 {
            // Bitwise: `-0.0` is not `0.0`, a NaN equals itself (see `Leaf::equals`).
            return ffi::PyFloat_AS_DOUBLE(pv).to_bits() == ffi::PyFloat_AS_DOUBLE(pc).to_bits();
        }
        if ffi::PyComplex_CheckExact(pv) != 0 {
            let bits = |p| {
                (
                    ffi::PyComplex_RealAsDouble(p).to_bits(),
                    ffi::PyComplex_ImagAsDouble(p).to_bits(),
                )
            };
            return bits(pv) == bits(pc);
        }
    }
    v.eq(c).unwrap_or(false)
}

pub(crate) fn container_len(v: &Bound<'_, PyAny>) -> Option<usize> {
    let p = v.as_ptr();
    // SAFETY: type checks then size reads on a live object of the checked type (subclasses
    // keep their items in the base's storage; their length guard reads it, as the stock
    // `__len__` a traced read required does).
    let n = unsafe {
        if ffi::PyTuple_Check(p) != 0 {
            ffi::PyTuple_GET_SIZE(p)
        } else if ffi::PyList_Check(p) != 0 {
            ffi::PyList_GET_SIZE(p)
        } else if ffi::PyDict_Check(p) != 0 {
            // Dict subclasses (OrderedDict: module hook tables) keep their size in the
            // dict part; PyDict_Size reads it without calling Python.
            ffi::PyDict_Size(p)
        } else {
            return None;
        }
    };
    usize::try_from(n).ok()
}

/// `collections.OrderedDict` and its C `keys` method (an OrderedDict keeps its own order,
/// which `move_to_end` makes differ from the dict storage's).
static ORDERED: pyo3::sync::PyOnceLock<(Py<PyAny>, Py<PyAny>)> = pyo3::sync::PyOnceLock::new();

/// The keys of a dict subclass in its iteration order, without running subclass code.
pub(crate) fn sub_dict_keys<'py>(v: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    let py = v.py();
    let (cls, keys) = ORDERED
        .get_or_try_init(py, || -> PyResult<_> {
            let c = py.import_cached("collections")?.getattr("OrderedDict")?;
            let k = c.getattr("keys")?;
            Ok((c.unbind(), k.unbind()))
        })
        .ok()?;
    if v.is_instance(cls.bind(py)).ok()? {
        let ks = keys.bind(py).call1((v,)).ok()?;
        return ks.try_iter().ok()?.collect::<PyResult<Vec<_>>>().ok();
    }
    Some(v.cast::<PyDict>().ok()?.keys().iter().collect())
}

fn dict_keys_match(v: &Bound<'_, PyAny>, keys: &[Py<PyAny>], exact: bool) -> bool {
    let Ok(d) = v.cast::<PyDict>() else {
        return false;
    };
    // SAFETY: PyDict_CheckExact reads the type of a live object.
    if !exact && unsafe { ffi::PyDict_CheckExact(v.as_ptr()) } == 0 {
        let py = v.py();
        return sub_dict_keys(v).is_some_and(|now| {
            now.len() == keys.len()
                && now
                    .iter()
                    .zip(keys)
                    .all(|(k, e)| k.is(e.bind(py)) || strict_eq(k, e.bind(py)))
        });
    }
    // SAFETY: PyDict_CheckExact reads the type of a live object.
    if (exact && unsafe { ffi::PyDict_CheckExact(v.as_ptr()) } == 0) || d.len() != keys.len() {
        return false;
    }
    let py = v.py();
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut val: *mut ffi::PyObject = std::ptr::null_mut();
    for expected in keys {
        // SAFETY: iterating a live exact dict; PyDict_Next returns borrowed pointers,
        // which we use only before any Python code can run (identity and strict_eq on the
        // expected constant keys, which are str/int in practice).
        if unsafe { ffi::PyDict_Next(v.as_ptr(), &mut pos, &mut key, &mut val) } == 0 {
            return false;
        }
        if key == expected.as_ptr() {
            continue;
        }
        // SAFETY: `key` is a live key of the dict; we take a new reference.
        let k = unsafe { Bound::from_borrowed_ptr(py, key) };
        if !strict_eq(&k, expected.bind(py)) {
            return false;
        }
    }
    true
}

impl Leaf {
    pub fn compile(py: Python<'_>, guard: Guard, src: &str) -> PyResult<Leaf> {
        let (fast, stability, desc) = match &guard {
            Guard::TypeMatch(t) => {
                let t = t.bind(py);
                let flags = t.getattr("__flags__")?.extract::<u64>()?;
                let immutable = flags & ffi::Py_TPFLAGS_IMMUTABLETYPE != 0
                    && !t.is_subclass(&py.get_type::<pyo3::types::PyModule>())?;
                let st = if immutable {
                    Stability::Identity
                } else {
                    Stability::Never
                };
                (Fast::None, st, format!("{src}: type is {}", type_name(t)))
            }
            Guard::IdMatch(o) => {
                let o = o.bind(py);
                let desc = format!("{src}: is {} (id {:#x})", repr(o), o.as_ptr() as usize);
                (Fast::None, Stability::Identity, desc)
            }
            Guard::Equals(c) => {
                let c = c.bind(py);
                let p = c.as_ptr();
                // SAFETY: type checks and value reads on a live object of that exact type.
                let fast = unsafe {
                    if ffi::PyLong_CheckExact(p) != 0 {
                        c.extract::<i64>().map(Fast::Int).unwrap_or(Fast::Generic)
                    } else if ffi::PyUnicode_CheckExact(p) != 0 {
                        Fast::Str
                    } else if ffi::PyFloat_CheckExact(p) != 0 {
                        Fast::Float(ffi::PyFloat_AS_DOUBLE(p))
                    } else if c.is_none() || ffi::PyBool_Check(p) != 0 {
                        Fast::None
                    } else if ffi::PyTuple_Check(p) != 0 {
                        Fast::Tuple
                    } else {
                        Fast::Generic
                    }
                };
                let st = if deeply_immutable(c) {
                    Stability::Identity
                } else {
                    Stability::Never
                };
                (fast, st, format!("{src}: == {}", repr(c)))
            }
            Guard::Len(n) => (
                Fast::None,
                Stability::DictState,
                format!("{src}: len == {n}"),
            ),
            Guard::DictKeys(keys) => {
                let desc = format!("{src}: keys == {}", key_list(py, keys));
                (Fast::None, Stability::DictState, desc)
            }
            Guard::SubDictKeys(keys) => {
                let desc = format!("{src}: dict keys == {}", key_list(py, keys));
                (Fast::None, Stability::Never, desc)
            }
            Guard::HasAttr(name, expected) => {
                let desc = format!(
                    "{src}: hasattr {} is {}",
                    py_str_repr(name),
                    py_bool(*expected)
                );
                let name = PyString::intern(py, name).unbind();
                (Fast::AttrName(name), Stability::Never, desc)
            }
            Guard::NotInDict(name) => {
                let desc = format!("{src}: has no key {}", py_str_repr(name));
                let name = PyString::intern(py, name).unbind();
                (Fast::AttrName(name), Stability::DictState, desc)
            }
            Guard::Tensor(m) => (
                Fast::None,
                Stability::Never,
                format!("{src}: {}", m.describe()),
            ),
        };
        Ok(Leaf {
            guard,
            fast,
            stability,
            desc,
        })
    }

    /// Evaluation order within a node: cheap pointer checks first, Python calls last.
    pub fn cost_rank(&self) -> u8 {
        match self.guard {
            Guard::TypeMatch(_) | Guard::IdMatch(_) => 0,
            Guard::Equals(_) | Guard::Len(_) => 1,
            Guard::DictKeys(_) | Guard::SubDictKeys(_) => 2,
            Guard::Tensor(_) => 3,
            Guard::HasAttr(..) => 4,
            Guard::NotInDict(_) => 2,
        }
    }

    /// Runs the check; never raises (errors count as failure and are cleared).
    #[inline]
    pub fn check(&self, v: &Bound<'_, PyAny>) -> bool {
        let py = v.py();
        match &self.guard {
            Guard::TypeMatch(t) => v.get_type_ptr() == t.as_ptr().cast(),
            Guard::IdMatch(o) => v.as_ptr() == o.as_ptr(),
            Guard::Equals(c) => self.equals(v, c.bind(py)),
            Guard::Len(n) => container_len(v) == Some(*n),
            Guard::DictKeys(keys) => dict_keys_match(v, keys, true),
            Guard::SubDictKeys(keys) => dict_keys_match(v, keys, false),
            Guard::HasAttr(_, expected) => {
                let Fast::AttrName(name) = &self.fast else {
                    return false;
                };
                // SAFETY: both are live objects; PyObject_HasAttr swallows exceptions.
                let has = unsafe { ffi::PyObject_HasAttr(v.as_ptr(), name.as_ptr()) } != 0;
                has == *expected
            }
            Guard::NotInDict(_) => {
                let Fast::AttrName(name) = &self.fast else {
                    return false;
                };
                // SAFETY: type check on a live object, then a lookup of an exact str key;
                // a colliding key with a Python `__eq__` may run code and raise: the error
                // is cleared and counts as failure, like every guard error.
                unsafe {
                    if ffi::PyDict_Check(v.as_ptr()) == 0 {
                        return false;
                    }
                    match ffi::PyDict_Contains(v.as_ptr(), name.as_ptr()) {
                        0 => true,
                        1 => false,
                        _ => {
                            ffi::PyErr_Clear();
                            false
                        }
                    }
                }
            }
            Guard::Tensor(m) => m.matches(v),
        }
    }

    #[inline]
    fn equals(&self, v: &Bound<'_, PyAny>, c: &Bound<'_, PyAny>) -> bool {
        if v.as_ptr() == c.as_ptr() {
            return true;
        }
        if v.get_type_ptr() != c.get_type_ptr() {
            return false;
        }
        let p = v.as_ptr();
        match self.fast {
            // None and bool are singletons: identity already decided.
            Fast::None | Fast::AttrName(_) => false,
            Fast::Int(i) => {
                let mut overflow: std::os::raw::c_int = 0;
                // SAFETY: `v` is an exact int (same type as the constant); with an exact
                // int the call cannot fail, it only reports overflow.
                let x = unsafe { ffi::PyLong_AsLongLongAndOverflow(p, &mut overflow) };
                overflow == 0 && x == i
            }
            // SAFETY: both are exact str, so the comparison cannot raise.
            Fast::Str => unsafe { ffi::PyUnicode_Compare(p, c.as_ptr()) == 0 },
            // Bitwise, as a constant-folded float must be the same float: `-0.0` is not `0.0`
            // (`copysign`, `str`, `1/x` tell them apart) and a NaN equals itself.
            // SAFETY: `v` is an exact float.
            Fast::Float(f) => unsafe { ffi::PyFloat_AS_DOUBLE(p) }.to_bits() == f.to_bits(),
            Fast::Tuple | Fast::Generic => strict_eq(v, c),
        }
    }

    /// `None` if the leaf passes on `v`, else a user-facing `old -> new` message.
    pub fn explain(&self, v: &Bound<'_, PyAny>, src: &str) -> Option<String> {
        if self.check(v) {
            return None;
        }
        let py = v.py();
        Some(match &self.guard {
            Guard::TypeMatch(t) => format!(
                "type({src}): {} -> {}",
                type_name(t.bind(py)),
                type_name(&v.get_type())
            ),
            Guard::IdMatch(o) => format!(
                "{src}: {} -> {} (a different object)",
                repr(o.bind(py)),
                repr(v)
            ),
            Guard::Equals(c) => format!("{src}: {} -> {}", repr(c.bind(py)), repr(v)),
            Guard::Len(n) => match container_len(v) {
                Some(m) => format!("len({src}): {n} -> {m}"),
                None => format!(
                    "type({src}): tuple/list/dict of length {n} -> {}",
                    type_name(&v.get_type())
                ),
            },
            Guard::DictKeys(keys) | Guard::SubDictKeys(keys) => {
                let now = match v.cast::<PyDict>() {
                    Ok(d) => {
                        let k: Vec<Py<PyAny>> = d.keys().iter().map(|k| k.unbind()).collect();
                        key_list(py, &k)
                    }
                    Err(_) => format!("not a dict ({})", type_name(&v.get_type())),
                };
                format!("{src}.keys(): {} -> {now}", key_list(py, keys))
            }
            Guard::HasAttr(name, expected) => format!(
                "hasattr({src}, {}): {} -> {}",
                py_str_repr(name),
                py_bool(*expected),
                py_bool(!*expected)
            ),
            Guard::NotInDict(name) => {
                // On a globals dict the key shadows a builtin; on an instance dict, a class
                // attribute.
                let what = if src == "G" || src.ends_with("__globals__") {
                    "a module global now shadows the builtin"
                } else {
                    "an instance attribute now shadows the class attribute"
                };
                format!("{} in {src}: False -> True ({what})", py_str_repr(name))
            }
            Guard::Tensor(m) => m.explain_mismatch(v, src),
        })
    }
}
