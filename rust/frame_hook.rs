//! The PEP 523 frame hook: no frame is lost to a frame that runs eagerly.
//!
//! While a compiled callable runs user code natively — the whole frame (a frame ferrodyn
//! gave up on, or over the recompile limit) or the breaking step of a split — every Python
//! frame that starts on that thread is offered to the tracer, as Dynamo's eval-frame
//! callback does: the frame's function is called through its compiled wrapper (shared per
//! code object and backend, `_glue.compiled_callee`), with the arguments CPython already
//! bound in the frame, and the frame itself is discarded unevaluated (its caller clears it).
//!
//! The hook is installed in the interpreter (`_PyInterpreterState_SetEvalFrameFunc`) only
//! while such a *window* is open on some thread, and each thread offers frames only inside
//! its own window, so the cache-hit path (a graph and no native step) never sees it and
//! plain Python code outside compiled calls runs with CPython's inlined calls.
//! `CompiledCode.__call__` suspends the window for its own duration: the compiled callable
//! manages the frames it runs (graphs, tracing, backend code are never offered).
//!
//! Which frames are offered is decided once per code object and kept in the code's extra
//! slot (`_PyCode_SetExtra`): generators, class and module bodies and code from skipped
//! files (torch, the standard library, ferrodyn itself, a few numeric libraries, see
//! `ferrodyn/skipfiles.py`) run as they are; `torch._dynamo.disable`'s wrapper closes the
//! window for its whole call (recursive) or skips only the wrapped function's frame
//! (`recursive=False`).

use crate::ImportCached;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::spec_cache::{
    CO_ASYNC_GENERATOR, CO_COROUTINE, CO_GENERATOR, CO_ITERABLE_COROUTINE, CO_VARARGS,
    CO_VARKEYWORDS, SPEC_CACHE,
};

/// Whether this build can install the hook: `InterpreterFrame` mirrors the frame layout of
/// 3.11, 3.12 and 3.13 (3.13 keeps 3.12's layout, with `f_code` renamed `f_executable` and
/// `prev_instr` `instr_ptr`). A build against a later interpreter must not install it.
pub const SUPPORTED: bool = cfg!(not(Py_3_14));

/// CPython 3.11's `_PyInterpreterFrame` (Include/internal/pycore_frame.h), the fields read.
#[cfg(not(Py_3_12))]
#[repr(C)]
pub struct InterpreterFrame {
    f_func: *mut ffi::PyObject,
    f_globals: *mut ffi::PyObject,
    f_builtins: *mut ffi::PyObject,
    f_locals: *mut ffi::PyObject,
    f_code: *mut ffi::PyObject,
    frame_obj: *mut ffi::PyObject,
    previous: *mut c_void,
    prev_instr: *mut u16,
    stacktop: c_int,
    is_entry: bool,
    owner: i8,
    localsplus: [*mut ffi::PyObject; 0],
}

/// CPython 3.12's `_PyInterpreterFrame`: the code first, the function renamed `f_funcobj`
/// (read here as `f_func`), `return_offset` instead of `is_entry`. 3.13's has the same
/// fields at the same offsets; only `f_code` (`f_executable`, a code object for every
/// frame the hook sees, checked before use) and `prev_instr` (`instr_ptr`) are renamed.
#[cfg(Py_3_12)]
#[repr(C)]
pub struct InterpreterFrame {
    f_code: *mut ffi::PyObject,
    previous: *mut c_void,
    f_func: *mut ffi::PyObject,
    f_globals: *mut ffi::PyObject,
    f_builtins: *mut ffi::PyObject,
    f_locals: *mut ffi::PyObject,
    frame_obj: *mut ffi::PyObject,
    prev_instr: *mut u16,
    stacktop: c_int,
    return_offset: u16,
    owner: i8,
    localsplus: [*mut ffi::PyObject; 0],
}

/// The frame's result once the tracer ran its function: on 3.11 the caller clears an
/// evaluated frame. 3.12's evaluator clears and pops the frames it runs itself, so the frame
/// is handed to it with an exception thrown in: a frame that has not started has no handler
/// and no traceback entry, so the evaluator only unwinds it, exactly as on any error. The
/// thrown exception is dropped and the tracer's result (or its exception) kept.
#[cfg(not(Py_3_12))]
unsafe fn finish_offered(
    _tstate: *mut ffi::PyThreadState,
    _frame: *mut InterpreterFrame,
    result: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    result
}

#[cfg(Py_3_12)]
unsafe fn finish_offered(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    result: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let raised = ffi::PyErr_GetRaisedException();
    ffi::PyErr_SetNone(ffi::PyExc_SystemError);
    let r = _PyEval_EvalFrameDefault(tstate, frame, 1);
    if !r.is_null() {
        ffi::Py_DECREF(r); // not reached: the frame has no handler for the exception
    }
    ffi::PyErr_Clear();
    if !raised.is_null() {
        ffi::PyErr_SetRaisedException(raised);
    }
    result
}

type EvalFrame = unsafe extern "C" fn(
    *mut ffi::PyThreadState,
    *mut InterpreterFrame,
    c_int,
) -> *mut ffi::PyObject;

extern "C" {
    fn _PyEval_EvalFrameDefault(
        tstate: *mut ffi::PyThreadState,
        frame: *mut InterpreterFrame,
        throwflag: c_int,
    ) -> *mut ffi::PyObject;
    #[link_name = "_PyInterpreterState_GetEvalFrameFunc"]
    fn get_eval_frame(interp: *mut ffi::PyInterpreterState) -> EvalFrame;
    #[link_name = "_PyInterpreterState_SetEvalFrameFunc"]
    fn set_eval_frame(interp: *mut ffi::PyInterpreterState, f: EvalFrame);
}

const CO_OPTIMIZED: u32 = 0x01;
const CO_NEWLOCALS: u32 = 0x02;

/// The decision for a code object, stored in its extra slot (0: not decided yet).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(usize)]
pub enum Rule {
    /// Run as it is; frames it calls are still offered.
    Skip = 1,
    /// Offer the frame to the tracer.
    Trace = 2,
    /// Run as it is with the window closed (nothing below it is offered).
    Quiet = 3,
    /// `torch._dynamo.disable(fn, recursive=False)`'s wrapper: run it, skip the frame of
    /// the function it wraps (its first free variable), offer what that calls.
    SkipWrapped = 4,
}

impl Rule {
    /// The rule stored as `generation << 3 | rule` (a rule from before the last
    /// `ferrodyn.reset()` reads as undecided; generation 0 is permanent).
    fn from_code(v: usize) -> Option<Rule> {
        let g = v >> 3;
        if g != 0 && g != GENERATION.load(Ordering::Relaxed) {
            return None;
        }
        Rule::from_number(v & 7)
    }

    /// A rule number as `skipfiles.classify` returns it.
    fn from_number(v: usize) -> Option<Rule> {
        match v {
            1 => Some(Rule::Skip),
            2 => Some(Rule::Trace),
            3 => Some(Rule::Quiet),
            4 => Some(Rule::SkipWrapped),
            _ => None,
        }
    }
}

/// What frames started inside a window are compiled with.
pub struct Window {
    compiler: *mut ffi::PyObject,
    limit: usize,
}

thread_local! {
    /// This thread's open window (null: frames are not offered).
    static ACTIVE: Cell<*const Window> = const { Cell::new(std::ptr::null()) };
    /// A code whose next frame runs unoffered (the function a compiled callable runs
    /// eagerly must not be offered to itself).
    static SKIP_NEXT: Cell<*mut ffi::PyObject> = const { Cell::new(std::ptr::null_mut()) };
    /// Offered frames running on this thread, nested.
    static OFFERED: Cell<usize> = const { Cell::new(0) };
    /// Windows open on this thread, nested (all of `WINDOWS` when no other thread has one).
    static MY_WINDOWS: Cell<usize> = const { Cell::new(0) };
    /// The frame this thread is handing to the previous eval function (see [`forward`]).
    static FORWARDING: Cell<*mut InterpreterFrame> = const { Cell::new(std::ptr::null_mut()) };
}

/// Offered frames nest at most this deep: each costs a few more levels of the
/// interpreter's recursion limit than the plain call it replaces, so deeper recursion runs
/// natively (and reaches the same depth as eager before a RecursionError).
const MAX_OFFERED: usize = 16;

/// Bumped by `ferrodyn.reset()`: every per-code rule decided before is decided again.
static GENERATION: AtomicUsize = AtomicUsize::new(1);

/// Forget every per-code decision (`ferrodyn.reset()`).
pub fn reset() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Windows open on all threads (the hook is installed while this is non-zero).
static WINDOWS: AtomicUsize = AtomicUsize::new(0);
/// `ferrodyn.config.frame_hook`.
static ENABLED: AtomicBool = AtomicBool::new(true);
/// The code-extra index holding each code's [`Rule`] (-1: not requested yet).
static EXTRA_INDEX: AtomicIsize = AtomicIsize::new(-1);
/// The interpreter's eval function before the hook was installed, as an address (0: the
/// default); frames not offered run through it, so another PEP 523 user keeps working. Read
/// for every frame started while the hook is installed: an atomic, not a lock.
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);

/// Turn the hook on or off (`ferrodyn.config.frame_hook`).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn previous() -> EvalFrame {
    match PREVIOUS.load(Ordering::Relaxed) {
        0 => _PyEval_EvalFrameDefault,
        // SAFETY: only ever stored from a value of type `EvalFrame` (in `install`).
        p => unsafe { std::mem::transmute::<usize, EvalFrame>(p) },
    }
}

/// Run `f` (native user code of the compiled callable with this backend and limit) with
/// the frames it starts offered to the tracer; `skip_first`: a code whose first frame runs
/// unoffered (the function run eagerly itself, or the glue).
pub fn native<R>(
    compiler: &Bound<'_, PyAny>,
    limit: usize,
    skip_first: *mut ffi::PyObject,
    f: impl FnOnce() -> R,
) -> R {
    if !SUPPORTED || !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let window = Window {
        compiler: compiler.as_ptr(),
        limit,
    };
    let _open = Open::new(&window, skip_first);
    f()
}

/// An open window; closing it restores the thread's previous window.
struct Open {
    prev_active: *const Window,
    prev_skip: *mut ffi::PyObject,
}

impl Open {
    fn new(w: &Window, skip_first: *mut ffi::PyObject) -> Open {
        let prev_active = ACTIVE.with(|a| a.replace(w));
        let prev_skip = SKIP_NEXT.with(|s| s.replace(skip_first));
        MY_WINDOWS.with(|m| m.set(m.get() + 1));
        // (3.12: the hook may be out for a deep native run on another thread, see
        // `run_past_nesting_bound`; `install` does nothing when it is in.)
        if WINDOWS.fetch_add(1, Ordering::Relaxed) == 0 || cfg!(Py_3_12) {
            install();
        }
        Open {
            prev_active,
            prev_skip,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.prev_active));
        SKIP_NEXT.with(|s| s.set(self.prev_skip));
        MY_WINDOWS.with(|m| m.set(m.get().saturating_sub(1)));
        if WINDOWS.fetch_sub(1, Ordering::Relaxed) == 1 {
            uninstall();
        }
    }
}

fn install() {
    if !SUPPORTED {
        return;
    }
    // SAFETY: called with the GIL held (windows open inside Python calls); the interpreter
    // state is the current one.
    unsafe {
        let interp = ffi::PyInterpreterState_Get();
        let cur = get_eval_frame(interp);
        if cur as usize != eval_hook as EvalFrame as usize {
            PREVIOUS.store(cur as usize, Ordering::Relaxed);
            set_eval_frame(interp, eval_hook);
        }
    }
}

fn uninstall() {
    // SAFETY: as in `install`. Only our own hook is removed (if another PEP 523 user
    // replaced it meanwhile, theirs stays).
    unsafe {
        let interp = ffi::PyInterpreterState_Get();
        if get_eval_frame(interp) as usize == eval_hook as EvalFrame as usize {
            set_eval_frame(interp, previous());
        }
    }
}

/// Frames are not offered while this lives (a compiled callable's own call).
pub struct Suspended(Option<*const Window>);

/// Close this thread's window for the duration of a compiled call (no thread-local access
/// when no window is open anywhere, the common case).
#[inline]
pub fn suspend() -> Suspended {
    if WINDOWS.load(Ordering::Relaxed) == 0 {
        return Suspended(None);
    }
    Suspended(Some(ACTIVE.with(|a| a.replace(std::ptr::null()))))
}

impl Drop for Suspended {
    #[inline]
    fn drop(&mut self) {
        if let Some(w) = self.0 {
            ACTIVE.with(|a| a.set(w));
        }
    }
}

unsafe extern "C" fn no_free(_: *mut c_void) {}

fn extra_index() -> isize {
    let i = EXTRA_INDEX.load(Ordering::Relaxed);
    if i >= 0 {
        return i;
    }
    // SAFETY: GIL held; the free function ignores the stored integers.
    let i = unsafe { ffi::PyUnstable_Eval_RequestCodeExtraIndex(no_free) };
    EXTRA_INDEX.store(i, Ordering::Relaxed);
    i
}

fn stored_rule(code: *mut ffi::PyObject) -> Option<Rule> {
    let idx = extra_index();
    if idx < 0 {
        return None;
    }
    let mut v: *mut c_void = std::ptr::null_mut();
    // SAFETY: `code` is a live code object (the frame's); the extra holds a small integer.
    if unsafe { ffi::PyUnstable_Code_GetExtra(code, idx, &mut v) } != 0 {
        // SAFETY: GIL held; clear the lookup's error.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    Rule::from_code(v as usize)
}

fn store_rule(code: *mut ffi::PyObject, rule: Rule) {
    store_rule_in(code, rule, GENERATION.load(Ordering::Relaxed));
}

fn store_rule_in(code: *mut ffi::PyObject, rule: Rule, generation: usize) {
    let idx = extra_index();
    // SAFETY: as in `stored_rule`; the value is an integer, not a pointer.
    let v = (generation << 3) | rule as usize;
    if idx >= 0 && unsafe { ffi::PyUnstable_Code_SetExtra(code, idx, v as *mut c_void) } != 0 {
        // SAFETY: GIL held.
        unsafe { ffi::PyErr_Clear() };
    }
}

/// Never offer frames of this code (glue's eager continuations: the rest of a frame that
/// could not be split runs natively, and what it calls is offered).
pub fn mark_skip(code: &Bound<'_, PyAny>) {
    store_rule_in(code.as_ptr(), Rule::Skip, 0);
}

/// The rule of a code object now (for tests and diagnostics).
pub fn rule_of(code: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let r = match stored_rule(code.as_ptr()) {
        Some(r) => r,
        None => decide(code.py(), code.as_ptr())?,
    };
    Ok(match r {
        Rule::Skip => "skip",
        Rule::Trace => "trace",
        Rule::Quiet => "quiet",
        Rule::SkipWrapped => "skip-wrapped",
    })
}

fn decide(py: Python<'_>, code: *mut ffi::PyObject) -> PyResult<Rule> {
    // SAFETY: `code` is a live code object.
    let code_b = unsafe { Bound::from_borrowed_ptr(py, code) };
    let flags: u32 = code_b.getattr("co_flags")?.extract()?;
    let rule = if flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)
        != 0
        || flags & (CO_OPTIMIZED | CO_NEWLOCALS) != (CO_OPTIMIZED | CO_NEWLOCALS)
    {
        Rule::Skip
    } else {
        let v: usize = py
            .import_cached("ferrodyn.skipfiles")?
            .call_method1("classify", (code_b,))?
            .extract()?;
        Rule::from_number(v).unwrap_or(Rule::Skip)
    };
    store_rule(code, rule);
    Ok(rule)
}

/// The eval-frame function installed while a window is open.
unsafe extern "C" fn eval_hook(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    // Another PEP 523 user that installed itself while the hook was in holds the hook as
    // *its* previous function, while the hook holds it (torch.compile does this when
    // `torch.cond` compiles inside a compiled region after its own shim was left in): a
    // frame the hook is already forwarding comes back here. It runs in CPython's own
    // evaluator, ending the cycle (which would otherwise spin forever in tail calls).
    if PREVIOUS.load(Ordering::Relaxed) != 0 && FORWARDING.with(|f| f.get()) == frame {
        return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    }
    let prev: EvalFrame = forward;
    let w = ACTIVE.with(|a| a.get());
    if w.is_null() || throwflag != 0 {
        return prev(tstate, frame, throwflag);
    }
    let code = (*frame).f_code;
    let skip = SKIP_NEXT.with(|s| {
        if s.get() == code {
            s.set(std::ptr::null_mut());
            true
        } else {
            false
        }
    });
    if skip || !(*frame).f_locals.is_null() || ffi::PyCode_Check(code) == 0 {
        return prev(tstate, frame, throwflag);
    }
    // SAFETY: the eval-frame function is called with the GIL held.
    let py = Python::assume_attached();
    let rule = match stored_rule(code) {
        Some(r) => r,
        None => {
            let _quiet = Quiet::new();
            decide(py, code).unwrap_or_else(|e| {
                drop(e);
                Rule::Skip
            })
        }
    };
    match rule {
        Rule::Skip => prev(tstate, frame, throwflag),
        Rule::Quiet => {
            let _quiet = Quiet::new();
            prev(tstate, frame, throwflag)
        }
        Rule::SkipWrapped => {
            let inner = wrapped_code((*frame).f_func);
            if !inner.is_null() {
                SKIP_NEXT.with(|s| s.set(inner));
            }
            prev(tstate, frame, throwflag)
        }
        Rule::Trace if OFFERED.with(|d| d.get()) >= MAX_OFFERED => {
            run_past_nesting_bound(tstate, frame, throwflag, prev)
        }
        Rule::Trace => match offer(py, frame, &*w) {
            Some(r) => finish_offered(tstate, frame, r),
            None => prev(tstate, frame, throwflag),
        },
    }
}

/// Runs `frame` through the eval function that was in place before the hook (another PEP 523
/// user's, or CPython's), noting it as forwarded so that, should that function hand it back
/// to the hook, the hook runs it in CPython's evaluator instead of forwarding it again.
unsafe extern "C" fn forward(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
) -> *mut ffi::PyObject {
    let p = PREVIOUS.load(Ordering::Relaxed);
    // No previous function, or the hook was called *as* that function's previous one (it is
    // the interpreter's eval function now): CPython's evaluator.
    if p == 0 || get_eval_frame(ffi::PyInterpreterState_Get()) as usize == p {
        return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    }
    let saved = FORWARDING.with(|f| f.replace(frame));
    let r = previous()(tstate, frame, throwflag);
    FORWARDING.with(|f| f.set(saved));
    r
}

/// Runs a frame past the nesting bound natively. 3.12 counts every frame its evaluator is
/// entered for from C against the C recursion limit, and while an eval-frame function is
/// installed every call enters it from C, so recursion eager survives would raise; nothing
/// below this frame can be offered on this thread, so while no other thread has a window
/// open (`MY_WINDOWS` holds all of `WINDOWS`) the hook is taken out for the frame's run
/// (its calls are inlined again, as in eager) and put back after.
unsafe fn run_past_nesting_bound(
    tstate: *mut ffi::PyThreadState,
    frame: *mut InterpreterFrame,
    throwflag: c_int,
    prev: EvalFrame,
) -> *mut ffi::PyObject {
    if !cfg!(Py_3_12) || WINDOWS.load(Ordering::Relaxed) != MY_WINDOWS.with(|m| m.get()) {
        return prev(tstate, frame, throwflag);
    }
    uninstall();
    let r = prev(tstate, frame, throwflag);
    if WINDOWS.load(Ordering::Relaxed) > 0 {
        install();
    }
    r
}

/// Closes the window while it lives (ferrodyn's own Python work inside the hook).
struct Quiet(*const Window);

impl Quiet {
    fn new() -> Quiet {
        Quiet(ACTIVE.with(|a| a.replace(std::ptr::null())))
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// The code of the function a `recursive=False` disable wrapper calls (its first free
/// variable), or null.
unsafe fn wrapped_code(func: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if func.is_null() || ffi::PyFunction_Check(func) == 0 {
        return std::ptr::null_mut();
    }
    let closure = ffi::PyFunction_GetClosure(func);
    if closure.is_null() || ffi::PyTuple_Check(closure) == 0 || ffi::PyTuple_Size(closure) < 1 {
        return std::ptr::null_mut();
    }
    let cell = ffi::PyTuple_GetItem(closure, 0);
    if cell.is_null() || ffi::PyCell_Check(cell) == 0 {
        return std::ptr::null_mut();
    }
    let inner = ffi::PyCell_Get(cell);
    // PyCell_Get returns a new reference; the closure keeps the function alive.
    if !inner.is_null() {
        ffi::Py_DECREF(inner);
    }
    if inner.is_null() || ffi::PyFunction_Check(inner) == 0 {
        return std::ptr::null_mut();
    }
    ffi::PyFunction_GetCode(inner)
}

/// Whether the code reads a global that is torch or one of its modules (torch.compile
/// traces such frames even without tensor arguments).
fn uses_torch_global(func: &Bound<'_, PyAny>, names: &[String]) -> bool {
    let Ok(globals) = func.getattr("__globals__") else {
        return false;
    };
    let Ok(globals) = globals.cast::<PyDict>() else {
        return false;
    };
    names.iter().any(|n| {
        let Ok(Some(v)) = globals.get_item(n) else {
            return false;
        };
        v.is_instance_of::<pyo3::types::PyModule>()
            && v.getattr("__name__")
                .and_then(|m| m.extract::<String>())
                .is_ok_and(|m| m == "torch" || m.starts_with("torch."))
    })
}

/// `torch.Tensor` and `torch.nn.Module`, looked up once.
static TENSOR_TYPES: pyo3::sync::PyOnceLock<(Py<PyAny>, Py<PyAny>)> = pyo3::sync::PyOnceLock::new();

/// Whether `obj` is, or (through exact lists, tuples, dicts and tuple subclasses such as
/// namedtuples, a few levels deep) holds, a tensor or a module: torch.compile's test for a
/// frame worth tracing.
fn has_tensor(py: Python<'_>, obj: &Bound<'_, PyAny>, depth: usize) -> bool {
    let Ok((tensor, module)) = TENSOR_TYPES.get_or_try_init(py, || -> PyResult<_> {
        let torch = py.import_cached("torch")?;
        Ok((
            torch.getattr("Tensor")?.unbind(),
            torch.getattr("nn")?.getattr("Module")?.unbind(),
        ))
    }) else {
        return true;
    };
    // The real type only: `isinstance` would fall back to `obj.__class__`, running a user
    // `__getattribute__` or property.
    // SAFETY: both are type objects (torch.Tensor, nn.Module); Py_TYPE of a live object.
    let real_sub = |t: &Py<PyAny>| unsafe {
        pyo3::ffi::PyType_IsSubtype(
            pyo3::ffi::Py_TYPE(obj.as_ptr()),
            t.as_ptr().cast::<pyo3::ffi::PyTypeObject>(),
        ) != 0
    };
    if real_sub(tensor) || real_sub(module) {
        return true;
    }
    if depth >= 4 {
        return false;
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t.iter().any(|v| has_tensor(py, &v, depth + 1));
    }
    if obj.is_exact_instance_of::<pyo3::types::PyList>() {
        if let Ok(l) = obj.cast::<pyo3::types::PyList>() {
            return l.iter().any(|v| has_tensor(py, &v, depth + 1));
        }
    }
    if obj.is_exact_instance_of::<PyDict>() {
        if let Ok(d) = obj.cast::<PyDict>() {
            return d.values().iter().any(|v| has_tensor(py, &v, depth + 1));
        }
    }
    false
}

/// Call the frame's function through its compiled wrapper with the frame's bound
/// arguments. None: not possible (the frame then runs as it is); Some(NULL): the call
/// raised (the exception is set).
unsafe fn offer(
    py: Python<'_>,
    frame: *mut InterpreterFrame,
    w: &Window,
) -> Option<*mut ffi::PyObject> {
    let func = (*frame).f_func;
    let code = (*frame).f_code;
    if func.is_null() || ffi::PyFunction_Check(func) == 0 || ffi::PyFunction_GetCode(func) != code {
        return None;
    }
    let _quiet = Quiet::new();
    let func_b = Bound::from_borrowed_ptr(py, func);
    let code_b = Bound::from_borrowed_ptr(py, code);
    let spec = SPEC_CACHE.get(&code_b).ok()?;
    let slots = (*frame).localsplus.as_ptr();
    let slot = |i: usize| -> Option<Bound<'_, PyAny>> {
        let p = *slots.add(i);
        (!p.is_null()).then(|| Bound::from_borrowed_ptr(py, p))
    };
    let (n, kw) = (spec.argcount, spec.kwonlyargcount);
    let mut args: Vec<Bound<'_, PyAny>> = Vec::with_capacity(n);
    for i in 0..n {
        args.push(slot(i)?);
    }
    let mut next = n + kw;
    if spec.flags & CO_VARARGS != 0 {
        let rest = slot(next)?;
        next += 1;
        for a in rest.cast::<PyTuple>().ok()?.iter() {
            args.push(a);
        }
    }
    let kwargs = PyDict::new(py);
    for i in n..n + kw {
        kwargs.set_item(spec.varnames.get(i)?, slot(i)?).ok()?;
    }
    if spec.flags & CO_VARKEYWORDS != 0 {
        kwargs
            .update(slot(next)?.cast::<pyo3::types::PyMapping>().ok()?)
            .ok()?;
    }
    // As torch.compile: a frame without a tensor (or module) among its arguments, reading
    // no torch global, makes no graph; it runs as it is, and what it calls is still
    // offered. (The arguments first: the globals scan is the costlier test.)
    if !args.iter().any(|a| has_tensor(py, a, 0))
        && !kwargs.values().iter().any(|a| has_tensor(py, &a, 0))
        && !uses_torch_global(&func_b, &spec.names)
    {
        return None;
    }
    let compiler = Bound::from_borrowed_ptr(py, w.compiler);
    let wrapper = py
        .import_cached("ferrodyn._glue")
        .and_then(|g| g.call_method1("compiled_callee", (&func_b, compiler, w.limit)))
        .ok()?;
    if wrapper.is(&func_b) {
        return None;
    }
    let args = PyTuple::new(py, args).ok()?;
    let kwargs = (!kwargs.is_empty()).then_some(kwargs);
    OFFERED.with(|d| d.set(d.get() + 1));
    let result = wrapper.call(args, kwargs.as_ref());
    OFFERED.with(|d| d.set(d.get() - 1));
    // As torch.compile skips frames whose trace made no graph: a function whose traces
    // only made empty graphs (it broke before any op, or has none) runs natively from now
    // on, and what it calls is still offered.
    if let Ok(cc) = wrapper.cast::<crate::runtime::CompiledCode>() {
        if cc.borrow().traced_only_empty_graphs() {
            store_rule(code, Rule::Skip);
        }
    }
    Some(match result {
        Ok(v) => v.into_ptr(),
        Err(e) => {
            e.restore(py);
            std::ptr::null_mut()
        }
    })
}

/// Whether the hook is installed in the interpreter now (tests: it must be gone after
/// every compiled call, whatever the call raised).
pub fn installed() -> bool {
    // SAFETY: GIL held by the caller (a Python-visible function).
    unsafe {
        get_eval_frame(ffi::PyInterpreterState_Get()) as usize == eval_hook as EvalFrame as usize
    }
}
