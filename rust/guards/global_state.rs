//! The global-state guard: one snapshot of the torch global state a trace depended on (grad
//! and inference mode, autocast per device, default dtype, deterministic algorithms, backend
//! flags, torch-function/dispatch mode stacks), compared as a whole on every call before the
//! guard tree runs.
//!
//! The fields are defined once, in `ferrodyn/global_state.py` (name, Python reading, C++
//! symbol and calling kind, validation flips). Each field is read natively through its
//! symbol when, at start-up, the native reading agrees with the Python one in the current
//! state and after every flip; otherwise that field is read through Python on each call.

use std::ffi::c_void;

use libloading::os::unix::{Library, RTLD_NOW};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// At most this many fields (the table in `global_state.py` has about 35).
pub const MAX_FIELDS: usize = 48;

/// The values of every field, in table order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GlobalState {
    len: u8,
    vals: [i64; MAX_FIELDS],
}

impl GlobalState {
    /// A snapshot that matches nothing real (for tests and entries without a trace).
    pub fn empty() -> Self {
        GlobalState {
            len: 0,
            vals: [0; MAX_FIELDS],
        }
    }

    pub fn values(&self) -> &[i64] {
        &self.vals[..self.len as usize]
    }

    /// The state of the calling thread now.
    pub fn current(py: Python<'_>) -> PyResult<GlobalState> {
        let r = reader(py)?;
        let mut s = GlobalState::empty();
        s.len = r.fields.len() as u8;
        for (i, f) in r.fields.iter().enumerate() {
            s.vals[i] = match f.only_if {
                Some(j) if s.vals[j] == 0 => -1,
                _ => f.read(py, r.context)?,
            };
        }
        Ok(s)
    }

    /// Why `now` does not match this (the entry's) snapshot: the first differing field,
    /// "autocast enabled (cpu): False -> True"; None when they match.
    pub fn explain_mismatch(&self, py: Python<'_>, now: &GlobalState) -> Option<String> {
        let i = self
            .values()
            .iter()
            .zip(now.values())
            .position(|(a, b)| a != b)?;
        let r = reader(py).ok();
        let name = r
            .and_then(|r| r.fields.get(i))
            .map(|f| f.name.clone())
            .unwrap_or_else(|| format!("field {i}"));
        let show = |code: i64| -> String {
            r.and_then(|r| {
                r.describe
                    .bind(py)
                    .call1((i, code))
                    .and_then(|s| s.extract::<String>())
                    .ok()
            })
            .unwrap_or_else(|| code.to_string())
        };
        Some(format!(
            "global state {name}: {} -> {}",
            show(self.vals[i]),
            show(now.vals[i])
        ))
    }

    /// A snapshot with these values (tests).
    #[cfg(test)]
    pub fn from_values(values: &[i64]) -> Self {
        let mut s = GlobalState::empty();
        s.len = values.len() as u8;
        s.vals[..values.len()].copy_from_slice(values);
        s
    }
}

type U8Fn = unsafe extern "C" fn() -> u8;
type I32Fn = unsafe extern "C" fn() -> i32;
type PtrFn = unsafe extern "C" fn() -> *const u8;
type I64Fn = unsafe extern "C" fn() -> i64;
type U8DevFn = unsafe extern "C" fn(i8) -> u8;
type CtxU8Fn = unsafe extern "C" fn(*const c_void) -> u8;
type CtxU8OptFn = unsafe extern "C" fn(*const c_void, u64) -> u8;
type ContextFn = unsafe extern "C" fn() -> *const c_void;

/// How one field is read on each call.
enum Read {
    U8(U8Fn),
    I32(I32Fn),
    I64(I64Fn),
    /// A `bool` data symbol.
    DataU8(*const u8),
    /// Bit `k` of the byte at offset `o` of the object a getter returns a reference to.
    DerefBit(PtrFn, usize, u8),
    U8Dev(U8DevFn, i8),
    CtxU8(CtxU8Fn),
    /// A const member of the context taking one `std::optional<enum>` argument, passed
    /// empty (a trivially copyable 8-byte value: in one integer register, 0 = nullopt).
    CtxU8NullOpt(CtxU8OptFn),
    Python(Py<PyAny>),
}

struct Field {
    name: String,
    read: Read,
    /// Read only while the earlier field at this index is non-zero (else -1).
    only_if: Option<usize>,
}

impl Field {
    fn read(&self, py: Python<'_>, ctx: *const c_void) -> PyResult<i64> {
        // SAFETY (native arms): each symbol was resolved with the signature its calling kind
        // names and validated against the Python reading at start-up; all are getters with
        // no side effects; `ctx` is `at::globalContext()`, a process-lifetime singleton.
        Ok(match &self.read {
            Read::U8(f) => i64::from(unsafe { f() }),
            Read::I32(f) => i64::from(unsafe { f() }),
            Read::I64(f) => unsafe { f() },
            Read::DataU8(p) => i64::from(unsafe { p.read_volatile() }),
            Read::DerefBit(f, off, bit) => i64::from((unsafe { f().add(*off).read() } >> bit) & 1),
            Read::U8Dev(f, dev) => i64::from(unsafe { f(*dev) }),
            Read::CtxU8(f) => i64::from(unsafe { f(ctx) }),
            Read::CtxU8NullOpt(f) => i64::from(unsafe { f(ctx, 0) }),
            Read::Python(f) => f.bind(py).call0()?.extract()?,
        })
    }

    fn is_native(&self) -> bool {
        !matches!(self.read, Read::Python(_))
    }
}

struct Reader {
    fields: Vec<Field>,
    context: *const c_void,
    describe: Py<PyAny>,
    _libs: Vec<Library>,
}

// SAFETY: `context` points at torch's process-wide `at::Context` singleton, and `DataU8`
// pointers at static bools of the loaded torch libraries (kept open in `_libs`): valid for
// the life of the process and only read; the rest is Send + Sync.
unsafe impl Send for Reader {}
unsafe impl Sync for Reader {}

static READER: PyOnceLock<Reader> = PyOnceLock::new();

fn reader(py: Python<'_>) -> PyResult<&'static Reader> {
    READER.get_or_try_init(py, || build(py))
}

/// How many fields are read natively, and how many in all (for diagnostics and tests).
pub fn global_state_native_fields(py: Python<'_>) -> PyResult<(usize, usize)> {
    let r = reader(py)?;
    Ok((
        r.fields.iter().filter(|f| f.is_native()).count(),
        r.fields.len(),
    ))
}

fn open(dir: &str, name: &str) -> Option<Library> {
    let path = format!("{dir}/lib{name}.so");
    // SAFETY: RTLD_NOLOAD only returns a handle to a library `import torch` already loaded,
    // so no library initialisers run here.
    unsafe { Library::open(Some(&path), RTLD_NOW | super::tensor_native::RTLD_NOLOAD) }.ok()
}

fn build(py: Python<'_>) -> PyResult<Reader> {
    let m = py.import("ferrodyn.global_state")?;
    let table = m.getattr("FIELDS")?;
    let describe = m.getattr("describe")?.unbind();
    let dir = super::tensor_native::torch_lib_dir(py)?;
    let mut libs: Vec<(String, Library)> = Vec::new();
    for name in ["c10", "torch_cpu"] {
        if let Some(lib) = open(&dir, name) {
            libs.push((name.to_string(), lib));
        }
    }
    let context: *const c_void = libs
        .iter()
        .find(|(n, _)| n == "torch_cpu")
        // SAFETY: `at::Context& at::globalContext()`, no arguments; a reference is returned
        // as a pointer under the Itanium ABI.
        .and_then(|(_, lib)| unsafe { lib.get::<ContextFn>(b"_ZN2at13globalContextEv") }.ok())
        .map(|f| unsafe { f() })
        .unwrap_or(std::ptr::null());
    let mut fields = Vec::new();
    for f in table.try_iter()? {
        let f = f?;
        let name: String = f.getattr("name")?.extract()?;
        let py_read = f.getattr("read")?;
        let native = f.getattr("native")?;
        let flips = f.getattr("flips")?;
        let read = native_read(&libs, context, &native)
            .filter(|r| validate(py, r, context, &py_read, &flips).unwrap_or(false))
            .unwrap_or_else(|| Read::Python(py_read.clone().unbind()));
        let only_if = match f.getattr("only_if")?.extract::<Option<String>>()? {
            None => None,
            Some(dep) => Some(
                fields
                    .iter()
                    .position(|g: &Field| g.name == dep)
                    .ok_or_else(|| {
                        pyo3::exceptions::PyValueError::new_err(format!(
                            "global_state field {name:?}: only_if={dep:?} names no earlier field"
                        ))
                    })?,
            ),
        };
        fields.push(Field {
            name,
            read,
            only_if,
        });
        if fields.len() == MAX_FIELDS {
            break;
        }
    }
    Ok(Reader {
        fields,
        context,
        describe,
        _libs: libs.into_iter().map(|(_, l)| l).collect(),
    })
}

/// Resolves a field's `(library, symbol, kind)`; None when absent or of an unknown kind.
fn native_read(
    libs: &[(String, Library)],
    context: *const c_void,
    native: &Bound<'_, PyAny>,
) -> Option<Read> {
    if native.is_none() {
        return None;
    }
    let (lib, symbol, kind): (String, String, String) = native.extract().ok()?;
    let lib = &libs.iter().find(|(n, _)| *n == lib)?.1;
    // SAFETY: the type named by each kind is the symbol's C++ signature under the Itanium
    // ABI (bool and byte-sized enums come back in the low byte); validated before use.
    unsafe {
        let get = |t: &str| lib.get::<*const c_void>(t.as_bytes()).ok().map(|s| *s);
        let ptr = get(&symbol)?;
        let needs_ctx = kind.starts_with("ctx_");
        if needs_ctx && context.is_null() {
            return None;
        }
        Some(match kind.as_str() {
            "u8" => Read::U8(std::mem::transmute::<*const c_void, U8Fn>(ptr)),
            "i32" => Read::I32(std::mem::transmute::<*const c_void, I32Fn>(ptr)),
            "i64" => Read::I64(std::mem::transmute::<*const c_void, I64Fn>(ptr)),
            // The symbol's address is the bool itself.
            "data_u8" => Read::DataU8(ptr as *const u8),
            "ctx_u8" => Read::CtxU8(std::mem::transmute::<*const c_void, CtxU8Fn>(ptr)),
            "ctx_u8_nullopt" => {
                Read::CtxU8NullOpt(std::mem::transmute::<*const c_void, CtxU8OptFn>(ptr))
            }
            k if k.starts_with("deref_bit:") => {
                let (off, bit) = k.strip_prefix("deref_bit:")?.split_once(':')?;
                let off: usize = off.parse().ok().filter(|o| *o < 256)?;
                let bit: u8 = bit.parse().ok().filter(|b| *b < 8)?;
                Read::DerefBit(std::mem::transmute::<*const c_void, PtrFn>(ptr), off, bit)
            }
            k => {
                let dev: i8 = k.strip_prefix("u8_dev:")?.parse().ok()?;
                Read::U8Dev(std::mem::transmute::<*const c_void, U8DevFn>(ptr), dev)
            }
        })
    }
}

/// The native reading agrees with the Python one now and after each flip (a flip that
/// raises is skipped); every flip is undone.
fn validate(
    py: Python<'_>,
    read: &Read,
    ctx: *const c_void,
    py_read: &Bound<'_, PyAny>,
    flips: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let probe = Field {
        name: String::new(),
        only_if: None,
        read: match read {
            Read::U8(f) => Read::U8(*f),
            Read::I32(f) => Read::I32(*f),
            Read::I64(f) => Read::I64(*f),
            Read::DataU8(p) => Read::DataU8(*p),
            Read::DerefBit(f, o, b) => Read::DerefBit(*f, *o, *b),
            Read::U8Dev(f, d) => Read::U8Dev(*f, *d),
            Read::CtxU8(f) => Read::CtxU8(*f),
            Read::CtxU8NullOpt(f) => Read::CtxU8NullOpt(*f),
            Read::Python(_) => return Ok(false),
        },
    };
    let agree = |py: Python<'_>| -> PyResult<bool> {
        let expected: i64 = py_read.call0()?.extract()?;
        Ok(probe.read(py, ctx)? == expected)
    };
    if !agree(py)? {
        return Ok(false);
    }
    for flip in flips.try_iter()? {
        let Ok(undo) = flip?.call0() else {
            continue;
        };
        let ok = agree(py);
        undo.call0()?;
        if !ok? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Names of the fields read through Python (not natively), for diagnostics.
pub fn global_state_python_fields(py: Python<'_>) -> PyResult<Vec<String>> {
    let r = reader(py)?;
    Ok(r.fields
        .iter()
        .filter(|f| !f.is_native())
        .map(|f| f.name.clone())
        .collect())
}
