//! Native readers of torch global state, for the global-state snapshot
//! (`global_state.rs`). Each field of `ferrodyn/global_state.py` names one or more
//! `(library, symbol, kind)` candidates; the first that resolves and agrees with the Python
//! reading (now and after each validation flip) is used on every call.
//!
//! The cheapest readers are plain memory reads: a bit of a per-thread object (the autograd
//! TLS state, the thread's dispatch-key set) through a pointer cached per thread, or a byte
//! of `at::globalContext()` at an offset found by flipping the flag once at start-up.

use std::cell::Cell;
use std::ffi::c_void;

use super::module_memory::module_memory;
use libloading::os::unix::Library;
use pyo3::prelude::*;

type U8Fn = unsafe extern "C" fn() -> u8;
type I32Fn = unsafe extern "C" fn() -> i32;
type I64Fn = unsafe extern "C" fn() -> i64;
type PtrFn = unsafe extern "C" fn() -> *const u8;
type U8DevFn = unsafe extern "C" fn(i8) -> u8;
type CtxU8Fn = unsafe extern "C" fn(*const c_void) -> u8;
type CtxU8OptFn = unsafe extern "C" fn(*const c_void, u64) -> u8;

/// At most this many per-thread objects are read.
pub const MAX_TLS: usize = 8;
/// Bytes of `at::Context` searched for a flag's offset.
const CONTEXT_SCAN: usize = 2048;

/// How one field is read on each call.
pub enum Read {
    U8(U8Fn),
    I32(I32Fn),
    I64(I64Fn),
    /// A `bool` data symbol.
    DataU8(*const u8),
    /// Bit `bit` of byte `byte` of per-thread object `src`.
    TlsBit {
        src: usize,
        byte: usize,
        bit: u8,
    },
    /// The `i32` at byte `off` of per-thread object `src`.
    TlsI32 {
        src: usize,
        off: usize,
    },
    /// The length of the `std::vector` at byte `off` of per-thread object `src`
    /// (elements of `elem` bytes), plus one for each byte at `flags` offsets that is 1
    /// (e.g. the dispatch-mode stack: its vector and the set infra-mode slots).
    TlsVecLen {
        src: usize,
        off: usize,
        elem: usize,
        flags: Vec<usize>,
    },
    U8Dev(U8DevFn, i8),
    CtxU8(CtxU8Fn),
    /// The context flag stored at this byte offset of `at::Context`.
    CtxByte(usize),
    /// A const member of the context taking one `std::optional<enum>` argument, passed
    /// empty (a trivially copyable 8-byte value: in one integer register, 0 = nullopt).
    CtxU8NullOpt(CtxU8OptFn),
    Python(Py<PyAny>),
}

/// Where a per-thread object lives, for the calling thread.
pub enum TlsSource {
    /// `T& f()` returning the thread's object.
    Getter(PtrFn),
    /// A `thread_local` variable: `dlsym` gives the calling thread's instance.
    Symbol { lib: usize, name: String },
    /// The calling thread's TLS block of a library (`dl_iterate_phdr`), after calling
    /// `init` (a getter of one of its thread_locals) so that the block is allocated.
    ModuleTls { file: String, init: U8Fn },
}

/// What the readers need: the open libraries, the context, the per-thread sources.
pub struct Natives {
    pub libs: Vec<(String, Library)>,
    pub context: *const c_void,
    pub tls: Vec<TlsSource>,
}

thread_local! {
    /// This thread's per-thread object addresses (None until first needed).
    static TLS_BASES: Cell<Option<[*const u8; MAX_TLS]>> = const { Cell::new(None) };
}

impl Natives {
    /// The calling thread's per-thread object addresses (resolved once per thread).
    pub fn tls_bases(&self) -> [*const u8; MAX_TLS] {
        if self.tls.is_empty() {
            return [std::ptr::null(); MAX_TLS];
        }
        TLS_BASES.with(|c| match c.get() {
            Some(b) => b,
            None => {
                let b = self.resolve_tls();
                c.set(Some(b));
                b
            }
        })
    }

    fn resolve_tls(&self) -> [*const u8; MAX_TLS] {
        let mut out = [std::ptr::null(); MAX_TLS];
        for (slot, src) in out.iter_mut().zip(&self.tls) {
            *slot = match src {
                // SAFETY: a getter of this thread's object, validated at start-up.
                TlsSource::Getter(f) => unsafe { f() },
                // SAFETY: dlsym of a TLS symbol returns the calling thread's instance.
                TlsSource::Symbol { lib, name } => self
                    .libs
                    .get(*lib)
                    .and_then(|(_, l)| unsafe { l.get::<*const u8>(name.as_bytes()) }.ok())
                    .map(|s| *s)
                    .unwrap_or(std::ptr::null()),
                TlsSource::ModuleTls { file, init } => {
                    // SAFETY: a side-effect-free getter (validated at start-up).
                    unsafe { init() };
                    module_memory(file)
                        .and_then(|m| m.tls)
                        .map_or(std::ptr::null(), |(start, _)| start as *const u8)
                }
            };
        }
        out
    }

    fn tls_index(&mut self, src: TlsSource, same: impl Fn(&TlsSource) -> bool) -> Option<usize> {
        if let Some(i) = self.tls.iter().position(same) {
            return Some(i);
        }
        if self.tls.len() == MAX_TLS {
            return None;
        }
        self.tls.push(src);
        // Threads that resolved their bases before this source existed must resolve again.
        TLS_BASES.with(|c| c.set(None));
        Some(self.tls.len() - 1)
    }
}

/// The context byte at `off` (an offset located and validated at start-up).
#[inline]
pub fn ctx_byte(ctx: *const c_void, off: usize) -> i64 {
    // SAFETY: `ctx` is `at::globalContext()` (process lifetime) and `off` lies inside the
    // scanned range where the flag was found.
    i64::from(unsafe { (ctx as *const u8).add(off).read_volatile() })
}

/// This thread's per-thread object `src`.
#[inline]
fn tls_base(tls: &[*const u8; MAX_TLS], src: usize) -> PyResult<*const u8> {
    match tls.get(src) {
        Some(b) if !b.is_null() => Ok(*b),
        _ => Err(pyo3::exceptions::PyRuntimeError::new_err(
            "ferrodyn: per-thread torch state not found",
        )),
    }
}

/// Bit `bit` of byte `byte` of this thread's per-thread object `src`.
#[inline]
pub fn tls_bit(tls: &[*const u8; MAX_TLS], src: usize, byte: usize, bit: u8) -> PyResult<i64> {
    let base = tls[src];
    if base.is_null() {
        return Err(pyo3::exceptions::PyRuntimeError::new_err(
            "ferrodyn: per-thread torch state not found",
        ));
    }
    // SAFETY: `base` is this thread's object, `byte` inside it (validated at start-up).
    Ok(i64::from(
        (unsafe { base.add(byte).read_volatile() } >> bit) & 1,
    ))
}

impl Read {
    /// The field's value now. `tls`: the calling thread's bases ([`Natives::tls_bases`]).
    pub fn read(
        &self,
        py: Python<'_>,
        ctx: *const c_void,
        tls: &[*const u8; MAX_TLS],
    ) -> PyResult<i64> {
        // SAFETY (native arms): each symbol was resolved with the signature its kind names
        // and validated against the Python reading at start-up; all are side-effect-free
        // getters or reads of live objects: `ctx` is `at::globalContext()` (process
        // lifetime, offsets inside the scanned range), TLS bases belong to this thread.
        Ok(match self {
            Read::U8(f) => i64::from(unsafe { f() }),
            Read::I32(f) => i64::from(unsafe { f() }),
            Read::I64(f) => unsafe { f() },
            Read::DataU8(p) => i64::from(unsafe { p.read_volatile() }),
            Read::TlsBit { src, byte, bit } => tls_bit(tls, *src, *byte, *bit)?,
            Read::TlsI32 { src, off } => {
                let base = tls_base(tls, *src)?;
                // SAFETY: this thread's object; `off` inside it (validated at start-up).
                i64::from(unsafe { base.add(*off).cast::<i32>().read_unaligned() })
            }
            Read::TlsVecLen {
                src,
                off,
                elem,
                flags,
            } => {
                let base = tls_base(tls, *src)?;
                // SAFETY: this thread's object; a std::vector is (begin, end, capacity)
                // pointers at `off`, the flag bytes inside the object (validated at
                // start-up, including a non-empty vector).
                let (begin, end) = unsafe {
                    let v = base.add(*off).cast::<usize>();
                    (v.read_unaligned(), v.add(1).read_unaligned())
                };
                let set = flags
                    .iter()
                    .filter(|&&f| unsafe { base.add(f).read_volatile() } == 1)
                    .count();
                (end.wrapping_sub(begin) / (*elem).max(1) + set) as i64
            }
            Read::U8Dev(f, dev) => i64::from(unsafe { f(*dev) }),
            Read::CtxU8(f) => i64::from(unsafe { f(ctx) }),
            Read::CtxByte(off) => ctx_byte(ctx, *off),
            Read::CtxU8NullOpt(f) => i64::from(unsafe { f(ctx, 0) }),
            Read::Python(f) => f.bind(py).call0()?.extract()?,
        })
    }

    /// Whether this reads raw memory (located at start-up) rather than calling a getter.
    pub fn reads_memory(&self) -> bool {
        matches!(
            self,
            Read::TlsBit { .. } | Read::CtxByte(_) | Read::TlsI32 { .. } | Read::TlsVecLen { .. }
        )
    }

    pub fn is_native(&self) -> bool {
        !matches!(self, Read::Python(_))
    }

    /// What kind of reader this is, for diagnostics.
    pub fn kind(&self) -> &'static str {
        match self {
            Read::U8(_) | Read::I32(_) | Read::I64(_) | Read::U8Dev(..) => "native call",
            Read::CtxU8(_) | Read::CtxU8NullOpt(_) => "native context call",
            Read::DataU8(_) => "native variable",
            Read::TlsBit { .. } => "per-thread bit",
            Read::TlsI32 { .. } | Read::TlsVecLen { .. } => "per-thread memory",
            Read::CtxByte(_) => "context byte",
            Read::Python(_) => "python",
        }
    }
}

/// The first candidate of a field that resolves and validates, or None.
/// `native`: None, one `(lib, symbol, kind)` or a sequence of them.
/// `memory`: whether readers of raw memory (context bytes, per-thread bits) may be chosen.
pub fn choose(
    py: Python<'_>,
    n: &mut Natives,
    native: &Bound<'_, PyAny>,
    py_read: &Bound<'_, PyAny>,
    flips: &Bound<'_, PyAny>,
    memory: bool,
) -> Option<Read> {
    if native.is_none() {
        return None;
    }
    let candidates: Vec<(String, String, String)> = match native.extract() {
        Ok(one) => vec![one],
        Err(_) => native.extract().ok()?,
    };
    for (lib, symbol, kind) in candidates {
        let Some(read) = resolve(n, &lib, &symbol, &kind, py_read, flips, memory) else {
            continue;
        };
        if validate(py, n, &read, py_read, flips).unwrap_or(false) {
            return Some(read);
        }
    }
    None
}

/// Resolves one candidate; kinds that locate a value by flipping it do so here.
fn resolve(
    n: &mut Natives,
    lib: &str,
    symbol: &str,
    kind: &str,
    py_read: &Bound<'_, PyAny>,
    flips: &Bound<'_, PyAny>,
    memory: bool,
) -> Option<Read> {
    if !memory
        && (kind.starts_with("getter_")
            || kind.starts_with("tls_")
            || kind.starts_with("data_flip"))
    {
        return None;
    }
    let lib_index = n.libs.iter().position(|(name, _)| name == lib)?;
    let library = &n.libs[lib_index].1;
    // SAFETY: the type named by each kind is the symbol's C++ signature under the Itanium
    // ABI (bool and byte-sized enums come back in the low byte); validated before use.
    unsafe {
        let ptr = *library.get::<*const c_void>(symbol.as_bytes()).ok()?;
        if kind.starts_with("ctx_") && n.context.is_null() {
            return None;
        }
        Some(match kind {
            "u8" => Read::U8(std::mem::transmute::<*const c_void, U8Fn>(ptr)),
            "i32" => Read::I32(std::mem::transmute::<*const c_void, I32Fn>(ptr)),
            "i64" => Read::I64(std::mem::transmute::<*const c_void, I64Fn>(ptr)),
            // The symbol's address is the bool itself.
            "data_u8" => Read::DataU8(ptr as *const u8),
            // Prefer reading the value's byte directly when flipping it moves exactly one
            // bit of the context (validation then checks the whole byte is the value).
            // Memory only: the getter may throw a C++ exception, which must never unwind
            // into Rust.
            "ctx_byte" => {
                match memory.then(|| find_flip_bit(n.context as *const u8, CONTEXT_SCAN, flips)) {
                    Some(Some((byte, _))) => Read::CtxByte(byte),
                    _ => return None,
                }
            }
            "ctx_u8" | "ctx_u8_nullopt" => {
                match memory.then(|| find_flip_bit(n.context as *const u8, CONTEXT_SCAN, flips)) {
                    Some(Some((byte, _))) => Read::CtxByte(byte),
                    _ if kind == "ctx_u8" => {
                        Read::CtxU8(std::mem::transmute::<*const c_void, CtxU8Fn>(ptr))
                    }
                    _ => Read::CtxU8NullOpt(std::mem::transmute::<*const c_void, CtxU8OptFn>(ptr)),
                }
            }
            k if k.starts_with("getter_bit:") => {
                // "getter_bit:BYTE:BIT": a bit of the per-thread object `T& f()` returns.
                let (byte, bit) = k.strip_prefix("getter_bit:")?.split_once(':')?;
                let byte: usize = byte.parse().ok().filter(|o| *o < 256)?;
                let bit: u8 = bit.parse().ok().filter(|b| *b < 8)?;
                let f = std::mem::transmute::<*const c_void, PtrFn>(ptr);
                let src = n.tls_index(
                    TlsSource::Getter(f),
                    |s| matches!(s, TlsSource::Getter(g) if *g as usize == f as usize),
                )?;
                Read::TlsBit { src, byte, bit }
            }
            k if k.starts_with("getter_i32:") || k.starts_with("getter_veclen:") => {
                // "getter_i32:OFF" / "getter_veclen:OFF:ELEM[:F1,F2..]": memory of the
                // per-thread object `T& f()` returns.
                let f = std::mem::transmute::<*const c_void, PtrFn>(ptr);
                let src = n.tls_index(
                    TlsSource::Getter(f),
                    |s| matches!(s, TlsSource::Getter(g) if *g as usize == f as usize),
                )?;
                let small = |t: &str| t.parse::<usize>().ok().filter(|o| *o < 1024);
                if let Some(off) = k.strip_prefix("getter_i32:") {
                    Read::TlsI32 {
                        src,
                        off: small(off)?,
                    }
                } else {
                    let mut parts = k.strip_prefix("getter_veclen:")?.split(':');
                    let off = small(parts.next()?)?;
                    let elem = small(parts.next()?).filter(|e| *e > 0)?;
                    let flags = match parts.next() {
                        Some(list) => list.split(',').map(small).collect::<Option<Vec<_>>>()?,
                        None => Vec::new(),
                    };
                    Read::TlsVecLen {
                        src,
                        off,
                        elem,
                        flags,
                    }
                }
            }
            k if k.starts_with("tls_block_flip") => {
                // The bit of this library's thread_local block that the first flip
                // changes; the symbol is a getter of one of its thread_locals.
                let file = format!("lib{lib}.so");
                let init = std::mem::transmute::<*const c_void, U8Fn>(ptr);
                let src = n.tls_index(
                    TlsSource::ModuleTls {
                        file: file.clone(),
                        init,
                    },
                    |s| matches!(s, TlsSource::ModuleTls { file: f, .. } if *f == file),
                )?;
                let base = n.tls_bases()[src];
                let len = module_memory(&file)?.tls?.1;
                if base.is_null() {
                    return None;
                }
                let (byte, bit) = find_flip_bit(base, len, flips)?;
                Read::TlsBit { src, byte, bit }
            }
            "data_flip_byte" => {
                // The byte of this library's static data that holds the value: of the
                // bytes the first flip changes, the one byte equal to the Python reading
                // before and after it; read whole.
                let m = module_memory(&format!("lib{lib}.so"))?;
                Read::DataU8(find_value_byte(&m.writable, py_read, flips)? as *const u8)
            }
            k if k.starts_with("tls_flip_bit:") => {
                // "tls_flip_bit:SIZE": the bit of the thread_local variable (SIZE bytes)
                // that the field's first flip changes.
                let size: usize = k.strip_prefix("tls_flip_bit:")?.parse().ok()?;
                let name = symbol.to_string();
                let src = n.tls_index(
                    TlsSource::Symbol {
                        lib: lib_index,
                        name: name.clone(),
                    },
                    |s| matches!(s, TlsSource::Symbol { name: m, .. } if *m == name),
                )?;
                let base = n.tls_bases()[src];
                if base.is_null() {
                    return None;
                }
                let (byte, bit) = find_flip_bit(base, size, flips)?;
                Read::TlsBit { src, byte, bit }
            }
            k => {
                let dev: i8 = k.strip_prefix("u8_dev:")?.parse().ok()?;
                Read::U8Dev(std::mem::transmute::<*const c_void, U8DevFn>(ptr), dev)
            }
        })
    }
}

/// Applies the first flip that succeeds and returns the one bit of `len` bytes at `base`
/// it changed as (byte, bit); None unless exactly one bit changed.
fn find_flip_bit(base: *const u8, len: usize, flips: &Bound<'_, PyAny>) -> Option<(usize, u8)> {
    let start = base as usize;
    find_flip_bit_abs(&[(start, len)], flips).map(|(addr, bit)| (addr - start, bit))
}

/// Every byte of `ranges` ((start, length) of live, readable memory) with its address.
fn bytes_of(ranges: &[(usize, usize)]) -> Vec<(usize, u8)> {
    ranges
        .iter()
        .flat_map(|&(start, len)| {
            // SAFETY: each range is a live object or a loaded writable segment of a library
            // that stays loaded (the context is a large static; TLS within the block or
            // symbol size).
            (start..start + len).map(|a| (a, unsafe { (a as *const u8).read_volatile() }))
        })
        .collect()
}

/// Applies the first flip that succeeds and returns the one bit of the `ranges` it
/// changed, as (address, bit); None unless exactly one bit changed.
fn find_flip_bit_abs(ranges: &[(usize, usize)], flips: &Bound<'_, PyAny>) -> Option<(usize, u8)> {
    for flip in flips.try_iter().ok()? {
        let before = bytes_of(ranges);
        let Ok(undo) = flip.ok()?.call0() else {
            continue;
        };
        let after = bytes_of(ranges);
        let _ = undo.call0();
        let mut diffs = before
            .iter()
            .zip(&after)
            .filter(|((_, a), (_, b))| a != b)
            .map(|((addr, a), (_, b))| (*addr, a ^ b));
        return match (diffs.next(), diffs.next()) {
            (Some((addr, x)), None) if x.count_ones() == 1 => {
                Some((addr, x.trailing_zeros() as u8))
            }
            _ => None,
        };
    }
    None
}

/// Applies the first flip that succeeds; of the bytes in `ranges` it changed, the address
/// of the first one that equals `py_read()` before and after the flip.
fn find_value_byte(
    ranges: &[(usize, usize)],
    py_read: &Bound<'_, PyAny>,
    flips: &Bound<'_, PyAny>,
) -> Option<usize> {
    let value = || py_read.call0().ok()?.extract::<i64>().ok();
    for flip in flips.try_iter().ok()? {
        let (v0, before) = (value()?, bytes_of(ranges));
        let Ok(undo) = flip.ok()?.call0() else {
            continue;
        };
        let (v1, after) = (value(), bytes_of(ranges));
        let _ = undo.call0();
        let v1 = v1?;
        // Several bytes may hold the value (c10 keeps the default dtype twice): any of
        // them will do, the validation flips then check the one taken.
        return before
            .iter()
            .zip(&after)
            .find(|((_, a), (_, b))| a != b && i64::from(*a) == v0 && i64::from(*b) == v1)
            .map(|((addr, _), _)| *addr);
    }
    None
}

/// The native reading agrees with the Python one now and after each flip (a flip that
/// raises is skipped); every flip is undone.
fn validate(
    py: Python<'_>,
    n: &Natives,
    read: &Read,
    py_read: &Bound<'_, PyAny>,
    flips: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    if !read.is_native() {
        return Ok(false);
    }
    let agree = |py: Python<'_>| -> PyResult<bool> {
        let expected: i64 = py_read.call0()?.extract()?;
        Ok(read.read(py, n.context, &n.tls_bases())? == expected)
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
