//! Sources: access paths from a frame's arguments, globals or builtins to a value the
//! trace used. They are plain data (no Python objects), so the tracer can memoize by
//! source and share them across threads.

use std::fmt::Write as _;
use std::sync::Arc;

/// A constant dict key a [`Source::DictItem`] looks up.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DictKey {
    Str(String),
    Int(i64),
    Bytes(Vec<u8>),
    /// A class or other object hashed and compared by identity: its address and name (a
    /// class's qualified name, else its repr). Kept alive by [`type_key`], so the address is
    /// never reused.
    Type(usize, String),
}

/// Classes used as dict keys in sources, kept alive for the process (a handful: the
/// dispatch tables of `copy`, `copyreg`, `functools.singledispatch`, ...).
static TYPE_KEYS: std::sync::Mutex<Vec<pyo3::Py<pyo3::PyAny>>> = std::sync::Mutex::new(Vec::new());

/// The dict key for an object hashed and compared by identity: a class whose metaclass does
/// not override `__hash__`/`__eq__`, or a `typing` special form (`typing.Union`) or bare
/// `object()` sentinel keeping `object`'s; or None. The object is kept alive for the
/// process, so its address is never reused by another key.
pub fn type_key(k: &pyo3::Bound<'_, pyo3::PyAny>) -> Option<DictKey> {
    use pyo3::types::{PyAnyMethods, PyTypeMethods};
    let py = k.py();
    let meta = k.get_type();
    let (base, name) = match k.cast::<pyo3::types::PyType>() {
        Ok(ty) => (
            py.get_type::<pyo3::types::PyType>(),
            ty.qualname().ok()?.to_string(),
        ),
        Err(_) => {
            // Only objects that live as long as their module (typing's special forms, bare
            // `object()` sentinels): any other object would be kept alive here for good.
            let module = meta.module().ok()?.to_string();
            let bare = meta.is(py.get_type::<pyo3::types::PyAny>());
            if !bare
                && module != "typing"
                && module != "typing_extensions"
                && !module_level_function(k)
            {
                return None;
            }
            let repr = k.repr().ok()?.to_string();
            let name = if repr.len() <= 60 && !repr.contains('\n') {
                repr
            } else {
                format!(
                    "<{} object at {:#x}>",
                    meta.qualname().ok()?,
                    k.as_ptr() as usize
                )
            };
            (py.get_type::<pyo3::types::PyAny>(), name)
        }
    };
    let plain = |slot: &str| {
        meta.getattr(slot)
            .ok()
            .zip(base.getattr(slot).ok())
            .is_some_and(|(a, b)| a.is(&b))
    };
    if !plain("__hash__") || !plain("__eq__") {
        return None;
    }
    let ptr = k.as_ptr() as usize;
    let mut keys = TYPE_KEYS.lock().ok()?;
    if !keys.iter().any(|p| p.as_ptr() as usize == ptr) {
        keys.push(k.clone().unbind());
    }
    Some(DictKey::Type(ptr, name))
}

/// A plain Python function defined at a module's top level (`collections.namedtuple`, a key
/// of pytree's `SUPPORTED_NODES`): it lives as long as its module.
fn module_level_function(k: &pyo3::Bound<'_, pyo3::PyAny>) -> bool {
    use pyo3::types::{PyAnyMethods, PyStringMethods};
    k.is_instance_of::<pyo3::types::PyFunction>()
        && k.getattr(pyo3::intern!(k.py(), "__qualname__"))
            .ok()
            .and_then(|q| q.cast_into::<pyo3::types::PyString>().ok())
            .is_some_and(|q| q.to_str().is_ok_and(|q| !q.contains('<')))
}

impl DictKey {
    /// The key object (for a `Type` key, the class kept alive by [`type_key`]).
    pub fn to_object(&self, py: pyo3::Python<'_>) -> pyo3::Py<pyo3::PyAny> {
        use pyo3::types::{PyBytes, PyInt, PyString};
        match self {
            DictKey::Str(s) => PyString::intern(py, s).into_any().unbind(),
            DictKey::Int(i) => PyInt::new(py, *i).into_any().unbind(),
            DictKey::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
            DictKey::Type(ptr, _) => TYPE_KEYS
                .lock()
                .ok()
                .and_then(|keys| {
                    keys.iter()
                        .find(|p| p.as_ptr() as usize == *ptr)
                        .map(|p| p.clone_ref(py))
                })
                .unwrap_or_else(|| py.None()),
        }
    }
}

impl DictKey {
    /// As a Python literal: `'name'` or `3`.
    pub fn render(&self) -> String {
        match self {
            DictKey::Str(k) => py_str_repr(k),
            DictKey::Int(i) => i.to_string(),
            DictKey::Bytes(b) => format!("b{}", py_str_repr(&String::from_utf8_lossy(b))),
            DictKey::Type(_, name) => name.clone(),
        }
    }
}

/// Where a guarded (or fetched) value comes from, relative to the frame at entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The compiled frame's argument/local slot `index` at entry.
    Local { index: u32, name: String },
    /// `f.__globals__[name]` (the root is the globals dict).
    Global { name: String },
    /// The globals dict itself (for guards on which names it holds).
    Globals,
    /// `builtins_dict[name]`.
    Builtin { name: String },
    /// `getattr(base, name)`; generic, may run Python code.
    Attr { base: Arc<Source>, name: String },
    /// `base.__dict__`, the instance dict.
    InstDict { base: Arc<Source> },
    /// `base[key]` where `base` is an exact dict.
    DictItem { base: Arc<Source>, key: DictKey },
    /// `dict.__getitem__(base, key)`: an item of a dict subclass's own storage, read
    /// without running the subclass's code.
    SubDictItem { base: Arc<Source>, key: DictKey },
    /// `dict.get(base, key)` of a plain dict: the item, or None when the key is missing
    /// (one source guards both presence and value).
    DictGet { base: Arc<Source>, key: DictKey },
    /// `base[index]` where `base` is an exact tuple or list.
    Index { base: Arc<Source>, index: isize },
    /// `type(base)`.
    TypeOf { base: Arc<Source> },
    /// `base()` where `base` is a weak reference: its referent (None once dead).
    WeakrefDeref { base: Arc<Source> },
    /// `type.__subclasses__(base)` for a class `base`: a new list, read again every call.
    Subclasses { base: Arc<Source> },
    /// `sys.modules` (a root: imported modules are its items).
    SysModules,
    /// The item `offset` places past the current position of the tuple or list iterator
    /// `base` (read through its C `__reduce__`, no user code); missing past the end.
    IterItem { base: Arc<Source>, offset: usize },
    /// How many items the tuple or list iterator `base` has left.
    IterRemaining { base: Arc<Source> },
    /// The members of the exact set or frozenset `base`, as a tuple in its iteration order
    /// (C iteration, no user code: the members are plain constants, guarded first).
    SetOrder { base: Arc<Source> },
    /// `torch.as_tensor(base)` of an `np.ndarray` (the graph input standing for it).
    NumpyTensor { base: Arc<Source> },
    /// `abc.get_cache_token()` (a root): the counter every `ABCMeta.register` call bumps, so
    /// an `isinstance` answered against an ABC is re-checked after a registration.
    AbcCacheToken,
    /// `_thread.get_ident()` (a root): the calling thread, for a trace that read it.
    ThreadIdent,
    /// A class, as a root: `type(x)` for an `x` whose exact type another guard pins
    /// (`GuardTree::build` re-roots such paths, so every instance of one class shares
    /// the guards on the class). `ptr` identifies the class; `name` is its qualified name.
    Class { ptr: usize, name: String },
}

/// nn.Module's attribute dicts: `m.__dict__['_modules']['l1']` reads as `m.l1`.
const MODULE_DICTS: [&str; 3] = ["_modules", "_parameters", "_buffers"];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

impl Source {
    /// The source one step up the access path (`None` for roots).
    pub fn base(&self) -> Option<&Arc<Source>> {
        match self {
            Source::Local { .. }
            | Source::Global { .. }
            | Source::Globals
            | Source::SysModules
            | Source::AbcCacheToken
            | Source::ThreadIdent
            | Source::Class { .. }
            | Source::Builtin { .. } => None,
            Source::Attr { base, .. }
            | Source::InstDict { base }
            | Source::DictItem { base, .. }
            | Source::SubDictItem { base, .. }
            | Source::DictGet { base, .. }
            | Source::Index { base, .. }
            | Source::TypeOf { base }
            | Source::WeakrefDeref { base }
            | Source::Subclasses { base }
            | Source::IterItem { base, .. }
            | Source::IterRemaining { base }
            | Source::SetOrder { base }
            | Source::NumpyTensor { base } => Some(base),
        }
    }

    /// This source with `base` in place of its base (roots are returned as they are).
    pub fn with_base(&self, base: Arc<Source>) -> Source {
        match self {
            Source::Local { .. }
            | Source::Global { .. }
            | Source::Globals
            | Source::SysModules
            | Source::AbcCacheToken
            | Source::ThreadIdent
            | Source::Class { .. }
            | Source::Builtin { .. } => self.clone(),
            Source::Attr { name, .. } => Source::Attr {
                base,
                name: name.clone(),
            },
            Source::InstDict { .. } => Source::InstDict { base },
            Source::DictItem { key, .. } => Source::DictItem {
                base,
                key: key.clone(),
            },
            Source::SubDictItem { key, .. } => Source::SubDictItem {
                base,
                key: key.clone(),
            },
            Source::DictGet { key, .. } => Source::DictGet {
                base,
                key: key.clone(),
            },
            Source::Index { index, .. } => Source::Index {
                base,
                index: *index,
            },
            Source::TypeOf { .. } => Source::TypeOf { base },
            Source::WeakrefDeref { .. } => Source::WeakrefDeref { base },
            Source::Subclasses { .. } => Source::Subclasses { base },
            Source::IterItem { offset, .. } => Source::IterItem {
                base,
                offset: *offset,
            },
            Source::IterRemaining { .. } => Source::IterRemaining { base },
            Source::SetOrder { .. } => Source::SetOrder { base },
            Source::NumpyTensor { .. } => Source::NumpyTensor { base },
        }
    }

    /// User-facing rendering: `x`, `self.l1.weight`, `G['CONFIG']`, `x[0]`, `type(x)`.
    /// Instance-dict and nn.Module-dict paths render as attribute access when the key is
    /// an identifier.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_into(&mut s);
        s
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Source::Local { name, .. } => out.push_str(name),
            Source::Global { name } => {
                let _ = write!(out, "G[{}]", py_str_repr(name));
            }
            Source::Globals => out.push('G'),
            Source::SysModules => out.push_str("sys.modules"),
            Source::AbcCacheToken => out.push_str("abc.get_cache_token()"),
            Source::ThreadIdent => out.push_str("threading.get_ident()"),
            Source::Class { name, .. } => out.push_str(name),
            Source::Builtin { name } => {
                let _ = write!(out, "__builtins__[{}]", py_str_repr(name));
            }
            Source::Attr { base, name } => {
                base.render_into(out);
                out.push('.');
                out.push_str(name);
            }
            Source::InstDict { base } => {
                base.render_into(out);
                out.push_str(".__dict__");
            }
            Source::DictItem { base, key } => {
                if let (Some(owner), DictKey::Str(k)) = (attribute_owner(base), key) {
                    if is_identifier(k) {
                        owner.render_into(out);
                        out.push('.');
                        out.push_str(k);
                        return;
                    }
                    // Sequential/ModuleList children live under "0", "1", ...: `m.layers[0]`.
                    if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) {
                        owner.render_into(out);
                        let _ = write!(out, "[{k}]");
                        return;
                    }
                }
                base.render_into(out);
                let _ = write!(out, "[{}]", key.render());
            }
            Source::SubDictItem { base, key } => {
                out.push_str("dict.__getitem__(");
                base.render_into(out);
                let _ = write!(out, ", {})", key.render());
            }
            Source::DictGet { base, key } => {
                out.push_str("dict.get(");
                base.render_into(out);
                let _ = write!(out, ", {})", key.render());
            }
            Source::Index { base, index } => {
                base.render_into(out);
                let _ = write!(out, "[{index}]");
            }
            Source::TypeOf { base } => {
                out.push_str("type(");
                base.render_into(out);
                out.push(')');
            }
            Source::WeakrefDeref { base } => {
                base.render_into(out);
                out.push_str("()");
            }
            Source::Subclasses { base } => {
                base.render_into(out);
                out.push_str(".__subclasses__()");
            }
            Source::IterItem { base, offset } => {
                let _ = write!(out, "<item +{offset} of ");
                base.render_into(out);
                out.push('>');
            }
            Source::IterRemaining { base } => {
                out.push_str("<items left in ");
                base.render_into(out);
                out.push('>');
            }
            Source::NumpyTensor { base } => {
                out.push_str("torch.as_tensor(");
                base.render_into(out);
                out.push(')');
            }
            Source::SetOrder { base } => {
                out.push_str("tuple(");
                base.render_into(out);
                out.push(')');
            }
        }
    }
}

/// If `dict_source` is an instance dict (`m.__dict__`) or one of an nn.Module's attribute
/// dicts (`m.__dict__['_modules']`), the object whose attributes its items are.
fn attribute_owner(dict_source: &Source) -> Option<&Source> {
    match dict_source {
        Source::InstDict { base } => Some(base),
        Source::DictItem {
            base,
            key: DictKey::Str(k),
        } if MODULE_DICTS.contains(&k.as_str()) => match &**base {
            Source::InstDict { base } => Some(base),
            _ => None,
        },
        _ => None,
    }
}

/// A Python-looking string literal: `'name'` when that is unambiguous, else Rust's
/// double-quoted escaped form (still a valid Python literal for printable text).
pub(crate) fn py_str_repr(s: &str) -> String {
    if s.chars().any(|c| c == '\'' || c == '\\' || c.is_control()) {
        format!("{s:?}")
    } else {
        format!("'{s}'")
    }
}
