//! The per-call entry point: `CompiledCode` binds the call's arguments, walks the cache
//! (guard trees, most recently used first), and runs the hit's compiled graph; on a miss
//! it traces, compiles through the backend, and caches the result. Any failure of
//! ferrodyn itself falls back to running the function eagerly.

use crate::ImportCached;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::guards::{CacheEntry, CodeCache, GlobalState, GuardTree};
use crate::interp::exit::Exit;
use crate::interp::output::OutTemplate;
use crate::interp::{trace_function, TraceFailure, TraceOutput};
use crate::spec_cache::{CodeSpec, SPEC_CACHE};

pub use crate::artifact::Artifact;
use crate::artifact::{call_with, glue_code};
use crate::caches::Caches;
use crate::frame_hook;
use crate::vectorcall::CallArgs;

// Cache entries from a trace: the compiled graph, or the entry that runs eagerly.
mod entries;

#[pyclass(frozen, dict, weakref, module = "ferrodyn._core")]
pub struct CompiledCode {
    /// Read by CPython through `tp_vectorcall_offset` (`vectorcall.rs`).
    vectorcall: pyo3::ffi::vectorcallfunc,
    #[pyo3(get, name = "fn")]
    func: Py<PyAny>,
    compiler: Py<PyAny>,
    fullgraph: bool,
    limit: usize,
    spec: Arc<CodeSpec>,
    globals: Py<PyDict>,
    builtins: Py<PyDict>,
    warned: AtomicBool,
    /// One warning per function for a suppressed compile failure.
    warned_failure: AtomicBool,
    caches: Arc<Caches>,
    /// For a resume function: the compiled function it continues. A break in a resume
    /// function is split in the original code (so a break in a loop reuses one resume
    /// function per point instead of continuing continuations).
    origin: Option<Origin>,
}

/// Where a resume function's code comes from.
pub(crate) struct Origin {
    pub spec: Arc<CodeSpec>,
    pub func: Py<PyAny>,
    pub caches: Arc<Caches>,
    /// Resume instruction `body_start + i` is original instruction `i`.
    pub body_start: usize,
    /// Resume `co_varnames` slot -> original slot (None: a temporary of the prologue).
    pub slot_origin: Vec<Option<usize>>,
}

thread_local! {
    /// A reusable buffer for the values a cache hit fetches (saves an allocation per call).
    static FETCH_BUF: std::cell::Cell<Vec<Py<PyAny>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Send a compile-time event to `ferrodyn.observe` (explain, logs, profiler), if anyone
/// listens. `fill` adds the payload entries.
fn observe(py: Python<'_>, kind: &str, fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>) {
    let Ok(m) = py.import_cached("ferrodyn.observe") else {
        return;
    };
    if !m
        .call_method0("active")
        .and_then(|a| a.extract::<bool>())
        .unwrap_or(false)
    {
        return;
    }
    let d = PyDict::new(py);
    if fill(&d).is_ok() {
        let _ = m.call_method1("record", (kind, d));
    }
}

/// The shape guard's checks, with the inputs' names (for `guards()` and the guards log).
fn shape_guard_lines(py: Python<'_>, guard: Option<&Py<PyAny>>) -> Vec<String> {
    guard
        .and_then(|g| g.bind(py).call_method0("describe").ok())
        .and_then(|d| d.extract::<Vec<String>>().ok())
        .unwrap_or_default()
}

fn logs_call(py: Python<'_>, artifact: &str, msg: String) {
    if let Ok(m) = py.import_cached("ferrodyn.logs") {
        let _ = m.call_method1("log", (artifact, "%s", msg));
    }
}

#[pymethods]
impl CompiledCode {
    #[new]
    #[pyo3(signature = (func, compiler, *, fullgraph = false, recompile_limit = 8))]
    fn new(
        py: Python<'_>,
        func: Bound<'_, PyAny>,
        compiler: Bound<'_, PyAny>,
        fullgraph: bool,
        recompile_limit: usize,
    ) -> PyResult<Self> {
        Self::create(py, func, compiler, fullgraph, recompile_limit)
    }

    #[pyo3(signature = (*args, **kwargs))]
    pub fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        // SAFETY: `func` is a Python function (checked in `create`); the borrowed code
        // pointer is only compared.
        if unsafe { pyo3::ffi::PyFunction_GetCode(self.func.as_ptr()) } != self.spec.code.as_ptr() {
            return self.redirect(py, args, kwargs);
        }
        // Frames this call starts are its own business (graphs, tracing, backends); its
        // native steps open their own frame-hook windows.
        let _suspended = frame_hook::suspend();
        let call = CallArgs::Given(args, kwargs);
        let frame = match self.bind_frame(py, args, kwargs) {
            Ok(f) => f,
            // A binding error is the user's TypeError: raise it exactly as eager would.
            Err(_) => return self.run_eager(py, &call),
        };
        self.dispatch(py, frame, &call)
    }

    /// This compiled code for another function object of the same code (a closure or
    /// comprehension created anew on each call of its parent): its own closure, defaults
    /// and globals, sharing this one's cache entries (whose guards read the closure
    /// through the function, and whose continuations take free variables as arguments).
    fn for_function(&self, py: Python<'_>, func: Bound<'_, PyAny>) -> PyResult<Self> {
        let code = func.getattr("__code__")?;
        if !code.is(self.spec.code.bind(py)) {
            return Err(PyTypeError::new_err(
                "ferrodyn.CompiledCode.for_function: the function has another code object",
            ));
        }
        if !self.spec.frees_as_args() && !func.is(self.func.bind(py)) {
            return Err(PyTypeError::new_err(
                "ferrodyn.CompiledCode.for_function: this code's continuations use its closure",
            ));
        }
        let mut cc = Self::create(
            py,
            func,
            self.compiler.bind(py).clone(),
            self.fullgraph,
            self.limit,
        )?;
        cc.caches = self.caches.clone();
        Ok(cc)
    }

    fn compile_count(&self) -> PyResult<usize> {
        Ok(self.lock()?.compile_count())
    }

    fn cache_size(&self) -> PyResult<usize> {
        Ok(self.lock()?.len())
    }

    fn clear(&self) -> PyResult<()> {
        self.caches.clear();
        Ok(())
    }

    /// Benchmark aid (`benches/bench_param_scaling.py`): the cache-hit guard path alone
    /// for a call with positional `args` (the global-state snapshot and the entries' guard
    /// trees, fetching the graph inputs), `n` times; nothing is traced or run. Returns
    /// whether an entry matched and the mean seconds per check.
    #[pyo3(name = "_time_guard_check")]
    fn time_guard_check(
        &self,
        py: Python<'_>,
        args: Bound<'_, PyTuple>,
        n: usize,
    ) -> PyResult<(bool, f64)> {
        if self.spec.has_varargs() || args.len() != self.spec.argcount {
            return Err(PyTypeError::new_err(format!(
                "_time_guard_check: expected {} positional arguments, got {}",
                self.spec.argcount,
                args.len()
            )));
        }
        let argv: Vec<*mut pyo3::ffi::PyObject> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: `args` (alive for this call) holds every pointer in `argv`.
        let frame = unsafe { self.positional_frame(py, &argv) }?;
        let (g, b) = (self.globals.bind(py), self.builtins.bind(py));
        let mut fetched: Vec<Py<PyAny>> = Vec::new();
        let mut hit = false;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let Ok(state) = GlobalState::current(py) else {
                return Ok((false, 0.0));
            };
            hit = self
                .lock()?
                .lookup(py, &state, &frame, g, b, &mut fetched)
                .is_some();
            fetched.clear();
        }
        Ok((hit, start.elapsed().as_secs_f64() / n.max(1) as f64))
    }

    /// Human-readable guards of every cache entry (most recently used first).
    fn guards(&self, py: Python<'_>) -> PyResult<Vec<Vec<String>>> {
        Ok(self
            .lock()?
            .entries()
            .iter()
            .map(|e| {
                let mut lines = e.tree.describe();
                lines.extend(shape_guard_lines(py, e.shape_guard.as_ref()));
                lines
            })
            .collect())
    }

    fn __get__(
        slf: Py<Self>,
        py: Python<'_>,
        obj: Option<Bound<'_, PyAny>>,
        _ty: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match obj {
            None => Ok(slf.into_any()),
            Some(o) if o.is_none() => Ok(slf.into_any()),
            Some(o) => {
                let types = py.import_cached("types")?;
                Ok(types.getattr("MethodType")?.call1((slf, o))?.unbind())
            }
        }
    }
}

impl CompiledCode {
    /// Whether a call with `n` positional arguments and no keywords binds the frame
    /// straight from them (the vectorcall fast path).
    pub(crate) fn takes_positional(&self, n: usize) -> bool {
        let spec = &self.spec;
        if spec.kwonlyargcount != 0 || spec.has_varkw() {
            return false;
        }
        if spec.has_varargs() {
            n >= spec.argcount
        } else {
            n == spec.argcount
        }
    }

    /// Where this instance keeps its vectorcall pointer (`vectorcall::enable`).
    pub(crate) fn vectorcall_field(&self) -> *const pyo3::ffi::vectorcallfunc {
        &self.vectorcall
    }

    /// A vectorcall whose arguments are exactly the function's positional parameters (and
    /// any `*args`), without keywords.
    pub(crate) fn call_vector(
        &self,
        py: Python<'_>,
        argv: &[*mut pyo3::ffi::PyObject],
    ) -> PyResult<Py<PyAny>> {
        // SAFETY: as in `__call__`.
        if unsafe { pyo3::ffi::PyFunction_GetCode(self.func.as_ptr()) } != self.spec.code.as_ptr() {
            // SAFETY: borrowed references from the caller's argument array.
            let args = unsafe { crate::vectorcall::tuple_of(py, argv) }?;
            return self.redirect(py, &args, None);
        }
        let _suspended = frame_hook::suspend();
        // SAFETY: the caller's argument array, valid for this call.
        let frame = unsafe { self.positional_frame(py, argv) }?;
        self.dispatch(py, frame, &CallArgs::Vector(argv))
    }

    /// The frame of a call whose arguments are the positional parameters (and any
    /// `*args`), no keywords ([`takes_positional`](Self::takes_positional)).
    ///
    /// # Safety
    /// `argv` holds valid object references for the duration of the call.
    unsafe fn positional_frame<'py>(
        &self,
        py: Python<'py>,
        argv: &[*mut pyo3::ffi::PyObject],
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let nslots = self.spec.localsplus.len();
        let mut frame: Vec<Bound<'py, PyAny>> = Vec::with_capacity(nslots + 1);
        let named = self.spec.argcount.min(argv.len());
        // SAFETY: valid references (the caller's contract); new references are taken.
        frame.extend(
            argv[..named]
                .iter()
                .map(|p| unsafe { Bound::from_borrowed_ptr(py, *p) }),
        );
        if self.spec.has_varargs() {
            // `def f(a, *rest)`: the extra arguments are `rest`.
            // SAFETY: as above.
            frame.push(unsafe { crate::vectorcall::tuple_of(py, &argv[named..]) }?.into_any());
        }
        frame.resize(nslots, py.None().into_bound(py));
        frame.push(self.func.bind(py).clone());
        Ok(frame)
    }

    /// Global state, the cache walk, and the hit's artifact (or a trace on a miss).
    fn dispatch(
        &self,
        py: Python<'_>,
        frame: Vec<Bound<'_, PyAny>>,
        call: &CallArgs<'_, '_>,
    ) -> PyResult<Py<PyAny>> {
        let Ok(state) = GlobalState::current(py) else {
            logs_call(
                py,
                "graph_breaks",
                "ferrodyn internal: cannot read the torch global state; running eagerly".into(),
            );
            return self.run_eager(py, call);
        };
        // The fetch buffer of the previous call on this thread (a nested call, made while
        // this one runs its graph, finds it taken and allocates its own).
        let mut fetched: Vec<Py<PyAny>> = FETCH_BUF.with(|b| b.take());
        let hit = {
            let mut cache = self.lock()?;
            let g = self.globals.bind(py);
            let b = self.builtins.bind(py);
            cache
                .lookup(py, &state, &frame, g, b, &mut fetched)
                .cloned()
        };
        let out = match hit {
            Some(a) => self.run_artifact(py, &a, &fetched, call),
            None => self.on_miss(py, state, frame, call),
        };
        fetched.clear();
        if fetched.capacity() <= 256 {
            FETCH_BUF.with(|b| b.set(fetched));
        }
        out
    }

    pub fn create(
        py: Python<'_>,
        func: Bound<'_, PyAny>,
        compiler: Bound<'_, PyAny>,
        fullgraph: bool,
        recompile_limit: usize,
    ) -> PyResult<Self> {
        let ty = func.get_type();
        if ty.name()? != "function" {
            return Err(PyTypeError::new_err(format!(
                "ferrodyn.CompiledCode expects a Python function, got {}",
                ty.name()?
            )));
        }
        if !compiler.is_callable() {
            return Err(PyTypeError::new_err(
                "ferrodyn.CompiledCode: compiler must be callable",
            ));
        }
        let code = func.getattr("__code__")?;
        let spec = SPEC_CACHE.get(&code)?;
        let globals = func.getattr("__globals__")?.cast_into::<PyDict>()?.unbind();
        let builtins = match func
            .getattr("__builtins__")
            .ok()
            .and_then(|b| b.cast_into::<PyDict>().ok())
        {
            Some(b) => b.unbind(),
            None => py.import_cached("builtins")?.dict().unbind(),
        };
        Ok(CompiledCode {
            func: func.unbind(),
            compiler: compiler.unbind(),
            fullgraph,
            limit: recompile_limit,
            spec,
            globals,
            builtins,
            warned: AtomicBool::new(false),
            warned_failure: AtomicBool::new(false),
            caches: Caches::new_registered(),
            origin: None,
            vectorcall: crate::vectorcall::VECTORCALL,
        })
    }

    /// A resume function's CompiledCode: breaks in it split the original code.
    pub(crate) fn with_origin(mut self, origin: Origin) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Whether every trace of this function so far, with the resume functions that
    /// continue it, made graphs without ops (the frame hook then stops offering its frames:
    /// running them natively costs less).
    pub(crate) fn traced_only_empty_graphs(&self) -> bool {
        self.caches.ops_compiled.load(Ordering::Relaxed) == 0
            && self.lock().map(|c| c.compile_count() > 0).unwrap_or(false)
    }

    fn lock(&self) -> PyResult<std::sync::MutexGuard<'_, CodeCache<Arc<Artifact>>>> {
        self.caches
            .entries
            .lock()
            .map_err(|_| PyRuntimeError::new_err("ferrodyn: cache lock poisoned"))
    }

    /// `fn.__code__` was replaced after compile: the call goes to a CompiledCode for the
    /// current code object (made once per code object; the original's cache stays for when
    /// the old code comes back).
    fn redirect(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let func = self.func.bind(py);
        let code = func.getattr("__code__")?;
        let found = {
            let r = self
                .caches
                .redirects
                .lock()
                .map_err(|_| PyRuntimeError::new_err("ferrodyn: cache lock poisoned"))?;
            r.iter()
                .find(|(c, _)| c.is(&code))
                .map(|(_, cc)| cc.clone_ref(py))
        };
        let cc = match found {
            Some(cc) => cc,
            None => {
                let fresh = CompiledCode::create(
                    py,
                    func.clone(),
                    self.compiler.bind(py).clone(),
                    self.fullgraph,
                    self.limit,
                )?;
                let cc = Py::new(py, fresh)?;
                if let Ok(mut r) = self.caches.redirects.lock() {
                    r.push((code.unbind(), cc.clone_ref(py)));
                }
                cc
            }
        };
        let out = cc.borrow(py).__call__(py, args, kwargs);
        out
    }

    /// The frame's fast slots at entry (arguments bound as CPython would), then the
    /// function object itself (guard root for closure cells).
    fn bind_frame<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let spec = &self.spec;
        let nslots = spec.localsplus.len();
        let none = py.None().into_bound(py);
        if kwargs.is_none_or(|k| k.is_empty()) && self.takes_positional(args.len()) {
            // SAFETY: a tuple's item array, `len` borrowed references kept alive by `args`.
            let argv = unsafe {
                let t = args.as_ptr().cast::<pyo3::ffi::PyTupleObject>();
                std::slice::from_raw_parts((*t).ob_item.as_ptr(), args.len())
            };
            // SAFETY: as above.
            return unsafe { self.positional_frame(py, argv) };
        }
        let func = self.func.bind(py);
        let defaults = func.getattr("__defaults__")?;
        let n_defaults = if defaults.is_none() {
            0
        } else {
            defaults.len()?
        };
        let kwdefaults = func.getattr("__kwdefaults__")?;
        let kw: Vec<(String, Bound<'py, PyAny>)> = match kwargs {
            Some(k) => k
                .iter()
                .map(|(k, v)| Ok((k.extract::<String>()?, v)))
                .collect::<PyResult<_>>()?,
            None => Vec::new(),
        };
        let slots = spec.bind(
            args.iter().collect(),
            kw,
            n_defaults,
            |i| defaults.get_item(i),
            |name| {
                if kwdefaults.is_none() {
                    return Ok(None);
                }
                kwdefaults
                    .cast::<PyDict>()
                    .map_err(PyErr::from)?
                    .get_item(name)
            },
            |items| {
                PyTuple::new(py, items)
                    .map(|t| t.into_any())
                    .unwrap_or_else(|_| py.None().into_bound(py))
            },
            |items| {
                let d = PyDict::new(py);
                for (k, v) in items {
                    let _ = d.set_item(k, v);
                }
                d.into_any()
            },
            PyTypeError::new_err,
        )?;
        let mut frame: Vec<Bound<'py, PyAny>> = slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| none.clone()))
            .collect();
        frame.resize(nslots, none);
        frame.push(func.clone());
        Ok(frame)
    }

    fn run_eager(&self, py: Python<'_>, call: &CallArgs<'_, '_>) -> PyResult<Py<PyAny>> {
        // The frame runs natively; the frames it starts are offered to the tracer.
        let f = self.func.bind(py);
        frame_hook::native(
            self.compiler.bind(py),
            self.limit,
            self.spec.code.as_ptr(),
            || Ok(call.call(f)?.unbind()),
        )
    }

    fn run_artifact(
        &self,
        py: Python<'_>,
        a: &Artifact,
        fetched: &[Py<PyAny>],
        call: &CallArgs<'_, '_>,
    ) -> PyResult<Py<PyAny>> {
        match a {
            Artifact::Eager { .. } => self.run_eager(py, call),
            Artifact::Graph {
                compiled,
                n_inputs,
                template,
                replay,
            } => {
                let n = (*n_inputs).min(fetched.len());
                if !replay.precheck(&fetched[n..]) {
                    return self.run_eager(py, call);
                }
                let out = call_with(py, compiled, &fetched[..n])?;
                let objs = replay.run(py, &out, &fetched[n..])?;
                Ok(template
                    .build_with(py, &out, &fetched[n..], &objs)?
                    .unbind())
            }
            Artifact::Split {
                compiled,
                n_inputs,
                stack,
                locals,
                glue,
                replay,
            } => {
                // Run the graph for everything before the break, apply the mutations
                // recorded before it, rebuild the frame's stack and locals, and let the glue
                // run the breaking step and resume.
                let n = (*n_inputs).min(fetched.len());
                let rest = &fetched[n..];
                if !replay.precheck(rest) {
                    return self.run_eager(py, call);
                }
                let out = call_with(py, compiled, &fetched[..n])?;
                let objs = replay.run(py, &out, rest)?;
                let mut glue_args = Vec::with_capacity(stack.len() + locals.len());
                for t in locals {
                    glue_args.push(t.build_with(py, &out, rest, &objs)?);
                }
                for t in stack.iter().flatten() {
                    glue_args.push(t.build_with(py, &out, rest, &objs)?);
                }
                let glue = glue.bind(py);
                let glue_code = glue_code(glue);
                let glue_args = PyTuple::new(py, glue_args)?;
                // The breaking step runs natively: the frames it starts are offered.
                frame_hook::native(self.compiler.bind(py), self.limit, glue_code, || {
                    Ok(glue.call1(glue_args)?.unbind())
                })
            }
        }
    }

    fn on_miss(
        &self,
        py: Python<'_>,
        state: GlobalState,
        frame: Vec<Bound<'_, PyAny>>,
        call: &CallArgs<'_, '_>,
    ) -> PyResult<Py<PyAny>> {
        let (count, reasons) = {
            let cache = self.lock()?;
            let reasons = if cache.is_empty() {
                Vec::new()
            } else {
                cache.last_miss_reasons(
                    py,
                    &state,
                    &frame,
                    self.globals.bind(py),
                    self.builtins.bind(py),
                )
            };
            (cache.compile_count(), reasons)
        };
        let name = self.spec.qualname.clone();
        if !reasons.is_empty() {
            observe(py, "recompile", |d| {
                d.set_item("fn", &name)?;
                d.set_item("file", &self.spec.filename)?;
                d.set_item("line", self.spec.first_line)?;
                d.set_item("reasons", &reasons)
            });
        }
        let limit = self.recompile_limit(py);
        if count >= limit {
            if !self.warned.swap(true, Ordering::Relaxed) {
                let msg = format!(
                    "ferrodyn: {name} hit the recompile limit ({}); new inputs now run eagerly. Last reason: {}",
                    limit,
                    reasons.first().cloned().unwrap_or_default()
                );
                let exc = py
                    .import_cached("ferrodyn.exc")?
                    .getattr("RecompileLimitWarning")?;
                // stacklevel 1: the innermost Python frame is the caller of the compiled function.
                py.import_cached("warnings")?
                    .call_method1("warn", (msg, exc, 1))?;
            }
            return self.run_eager(py, call);
        }
        let n_args = self.spec.n_named()
            + usize::from(self.spec.has_varargs())
            + usize::from(self.spec.has_varkw());
        let locals: Vec<Option<Py<PyAny>>> = frame[..self.spec.localsplus.len()]
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i < n_args {
                    Some(v.clone().unbind())
                } else {
                    None
                }
            })
            .collect();
        let closure: Vec<Py<PyAny>> = match self.func.bind(py).getattr("__closure__") {
            Ok(c) if !c.is_none() => c
                .try_iter()?
                .map(|x| x.map(|x| x.unbind()))
                .collect::<PyResult<_>>()?,
            _ => Vec::new(),
        };
        let max_depth: usize = py
            .import_cached("ferrodyn.config")
            .and_then(|c| c.getattr("max_inline_depth"))
            .and_then(|d| d.extract())
            .unwrap_or(64);
        let dynamic = crate::interp::DynamicShapes {
            state: self.caches.dynamic_state(py)?,
            compiler: self.compiler.clone_ref(py),
        };
        let trace_start = std::time::Instant::now();
        #[allow(clippy::result_large_err)]
        let traced = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            trace_function(
                py,
                self.spec.clone(),
                locals,
                self.globals.clone_ref(py).into_any(),
                closure,
                max_depth,
                &dynamic,
            )
        }));
        let traced = match traced {
            Ok(t) => t,
            Err(_) => Err(TraceFailure {
                exit: Exit::internal("panic inside the tracer"),
                guards: Vec::new(),
            }),
        };
        let trace_s = trace_start.elapsed().as_secs_f64();
        observe(py, "trace", |d| {
            d.set_item("fn", &name)?;
            d.set_item("seconds", trace_s)?;
            d.set_item("file", &self.spec.filename)?;
            d.set_item("line", self.spec.first_line)?;
            d.set_item("ok", traced.is_ok())
        });
        let entry = match traced {
            Ok(out) => match self.compile(py, state, out) {
                Ok(e) => e,
                Err(e) => self.compile_failed(py, state, e)?,
            },
            Err(fail) => self.failure_entry(py, state, fail)?,
        };
        self.lock()?.insert(entry);
        // Run through the cache so the freshly built guard tree also fetches the inputs.
        let mut fetched = Vec::new();
        let hit = {
            let mut cache = self.lock()?;
            cache
                .lookup(
                    py,
                    &state,
                    &frame,
                    self.globals.bind(py),
                    self.builtins.bind(py),
                    &mut fetched,
                )
                .cloned()
        };
        match hit {
            Some(a) => self.run_artifact(py, &a, &fetched, call),
            None => {
                logs_call(py, "graph_breaks", format!("ferrodyn internal: new cache entry for {name} did not match its own inputs; running eagerly"));
                self.run_eager(py, call)
            }
        }
    }

    /// Compiling a finished trace failed. A backend failure (`BackendCompilerFailed`) is
    /// raised to the user unless `suppress_errors` is on; then, like any other failure here
    /// outside fullgraph/strict mode, it is logged with one warning and this global state
    /// runs the function eagerly from now on, without invoking the backend again.
    fn compile_failed(
        &self,
        py: Python<'_>,
        state: GlobalState,
        e: PyErr,
    ) -> PyResult<CacheEntry<Arc<Artifact>>> {
        // KeyboardInterrupt, SystemExit…: never swallowed.
        if self.fullgraph
            || self.strict(py)
            || !e.is_instance_of::<pyo3::exceptions::PyException>(py)
        {
            return Err(e);
        }
        let exc = py.import_cached("ferrodyn.exc")?;
        let backend_failed = exc
            .getattr("BackendCompilerFailed")
            .map(|c| e.is_instance(py, &c))
            .unwrap_or(false);
        let suppress = py
            .import_cached("ferrodyn.config")
            .and_then(|c| c.call_method0("suppress_errors_enabled"))
            .and_then(|b| b.extract::<bool>())
            .unwrap_or(false);
        if backend_failed && !suppress {
            return Err(e);
        }
        let name = &self.spec.qualname;
        let msg = format!("ferrodyn: compiling {name} failed, it runs eagerly from now on: {e}");
        logs_call(py, "graph_breaks", msg.clone());
        if !self.warned_failure.swap(true, Ordering::Relaxed) {
            let category = exc.getattr(if backend_failed {
                "BackendCompilerFailedWarning"
            } else {
                "InternalErrorWarning"
            })?;
            py.import_cached("warnings")?
                .call_method1("warn", (msg.clone(), category, 1))?;
        }
        Ok(CacheEntry {
            shape_guard: None,
            state,
            tree: GuardTree::build(py, &[], &[])?,
            artifact: Arc::new(Artifact::Eager { reason: msg }),
        })
    }

    /// ferrodyn's limit, or torch._dynamo.config's `recompile_limit` where the user changed
    /// that one (read on each miss, like torch.compile does).
    fn recompile_limit(&self, py: Python<'_>) -> usize {
        py.import_cached("ferrodyn.torch_config")
            .and_then(|m| m.call_method1("recompile_limit", (self.limit,)))
            .and_then(|l| l.extract())
            .unwrap_or(self.limit)
    }

    fn strict(&self, py: Python<'_>) -> bool {
        py.import_cached("ferrodyn.config")
            .and_then(|c| c.getattr("strict"))
            .and_then(|s| s.extract())
            .unwrap_or(false)
    }
}
