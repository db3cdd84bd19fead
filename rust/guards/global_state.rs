//! The global-state guard: one snapshot of the torch global state a trace depended on (grad
//! and inference mode, autocast per device, default dtype, deterministic algorithms, backend
//! flags, torch-function/dispatch mode stacks), compared as a whole on every call before the
//! guard tree runs.
//!
//! The fields are defined once, in `ferrodyn/global_state.py` (name, Python reading, C++
//! symbol and calling kind, validation flips). Each field is read natively through its
//! symbol when, at start-up, the native reading agrees with the Python one in the current
//! state and after every flip (`global_state_native.rs`); otherwise that field is read
//! through Python on each call.

use crate::ImportCached;
use std::ffi::c_void;

use libloading::os::unix::{Library, RTLD_NOW};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::global_state_native::{choose, ctx_byte, tls_bit, Natives, Read};

type ContextFn = unsafe extern "C" fn() -> *const c_void;

/// At most this many fields (the table in `global_state.py` has about 35).
pub const MAX_FIELDS: usize = 48;

/// The values of every field, in table order.
#[derive(Clone, Copy, Debug)]
pub struct GlobalState {
    len: u8,
    vals: [i64; MAX_FIELDS],
}

impl PartialEq for GlobalState {
    /// The used fields only, as a plain loop (a `memcmp` of the whole array costs more).
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len
            && self
                .values()
                .iter()
                .zip(other.values())
                .all(|(a, b)| a == b)
    }
}

impl Eq for GlobalState {}

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
        let ctx = r.natives.context;
        let tls = r.natives.tls_bases();
        // Plain memory reads first, in tight loops (no per-field dispatch), then the rest.
        for &(i, off) in &r.plan.ctx_bytes {
            s.vals[i] = ctx_byte(ctx, off);
        }
        for &(i, src, byte, bit) in &r.plan.tls_bits {
            s.vals[i] = tls_bit(&tls, src, byte, bit)?;
        }
        for &(i, p) in &r.plan.data_bytes {
            // SAFETY: a `bool` data symbol of a loaded torch library (kept open for the
            // life of the process), validated at start-up.
            s.vals[i] = i64::from(unsafe { p.read_volatile() });
        }
        for &i in &r.plan.others {
            let f = &r.fields[i];
            s.vals[i] = match f.only_if {
                Some(j) if s.vals[j] == 0 => -1,
                _ => f.read.read(py, ctx, &tls)?,
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

struct Field {
    name: String,
    read: Read,
    /// Read only while the earlier field at this index is non-zero (else -1).
    only_if: Option<usize>,
}

struct Reader {
    fields: Vec<Field>,
    plan: Plan,
    natives: Natives,
    describe: Py<PyAny>,
}

/// The fields grouped by how they are read, so the memory reads run without dispatch.
#[derive(Default)]
struct Plan {
    /// (field, byte offset in the context).
    ctx_bytes: Vec<(usize, usize)>,
    /// (field, per-thread source, byte, bit).
    tls_bits: Vec<(usize, usize, usize, u8)>,
    /// (field, address of a `bool` data symbol).
    data_bytes: Vec<(usize, *const u8)>,
    /// Every other field, in table order (an `only_if` refers to an earlier field).
    others: Vec<usize>,
}

impl Plan {
    fn of(fields: &[Field]) -> Plan {
        let mut p = Plan::default();
        for (i, f) in fields.iter().enumerate() {
            match (&f.read, f.only_if) {
                (Read::CtxByte(off), None) => p.ctx_bytes.push((i, *off)),
                (Read::TlsBit { src, byte, bit }, None) => p.tls_bits.push((i, *src, *byte, *bit)),
                (Read::DataU8(ptr), None) => p.data_bytes.push((i, *ptr)),
                _ => p.others.push(i),
            }
        }
        p
    }
}

// SAFETY: the raw pointers in `natives` and in the fields' readers point at torch's
// process-wide `at::Context` and static bools of the loaded torch libraries (kept open in
// `natives.libs`), valid for the life of the process and only read; per-thread objects are
// resolved per thread. The rest is Send + Sync.
unsafe impl Send for Reader {}
unsafe impl Sync for Reader {}

static READER: PyOnceLock<Reader> = PyOnceLock::new();

fn reader(py: Python<'_>) -> PyResult<&'static Reader> {
    READER.get_or_try_init(py, || build(py))
}

/// Each field's name and how it is read (for diagnostics and tests).
pub fn global_state_readers(py: Python<'_>) -> PyResult<Vec<(String, &'static str)>> {
    let r = reader(py)?;
    Ok(r.fields
        .iter()
        .map(|f| (f.name.clone(), f.read.kind()))
        .collect())
}

fn open(dir: &str, name: &str) -> Option<Library> {
    let path = format!("{dir}/lib{name}.so");
    // SAFETY: RTLD_NOLOAD only returns a handle to a library `import torch` already loaded,
    // so no library initialisers run here.
    unsafe { Library::open(Some(&path), RTLD_NOW | super::tensor_native::RTLD_NOLOAD) }.ok()
}

fn build(py: Python<'_>) -> PyResult<Reader> {
    let m = py.import_cached("ferrodyn.global_state")?;
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
    let mut natives = Natives {
        libs,
        context,
        tls: Vec::new(),
    };
    let mut fields = Vec::new();
    for f in table.try_iter()? {
        let f = f?;
        let name: String = f.getattr("name")?.extract()?;
        let py_read = f.getattr("read")?;
        let read = choose(
            py,
            &mut natives,
            &f.getattr("native")?,
            &py_read,
            &f.getattr("flips")?,
            true,
        )
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
    cross_validate(py, &mut natives, &table, &mut fields)?;
    Ok(Reader {
        plan: Plan::of(&fields),
        fields,
        natives,
        describe,
    })
}

/// A memory reader located with its own field's flip may still miss a change made through
/// another field (two flags sharing storage, a flag mirrored elsewhere): under every
/// field's flips, every native reading must agree with Python; one that does not falls
/// back to its getter call (or Python).
fn cross_validate(
    py: Python<'_>,
    natives: &mut Natives,
    table: &Bound<'_, PyAny>,
    fields: &mut [Field],
) -> PyResult<()> {
    let entries: Vec<Bound<'_, PyAny>> = table.try_iter()?.collect::<PyResult<_>>()?;
    let py_reads: Vec<Bound<'_, PyAny>> = entries
        .iter()
        .map(|e| e.getattr("read"))
        .collect::<PyResult<_>>()?;
    let mut bad = vec![false; fields.len()];
    for e in &entries {
        for flip in e.getattr("flips")?.try_iter()? {
            let Ok(undo) = flip?.call0() else {
                continue;
            };
            let tls = natives.tls_bases();
            for (i, f) in fields.iter().enumerate() {
                if !f.read.reads_memory() || bad[i] {
                    continue;
                }
                let want: Option<i64> = py_reads[i].call0().and_then(|v| v.extract()).ok();
                let got = f.read.read(py, natives.context, &tls).ok();
                bad[i] = want.is_none() || got != want;
            }
            undo.call0()?;
        }
    }
    for (i, f) in fields.iter_mut().enumerate() {
        if bad[i] {
            let e = &entries[i];
            let (native, flips) = (e.getattr("native")?, e.getattr("flips")?);
            f.read = choose(py, natives, &native, &py_reads[i], &flips, false)
                .unwrap_or_else(|| Read::Python(py_reads[i].clone().unbind()));
        }
    }
    Ok(())
}
