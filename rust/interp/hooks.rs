//! The Rust side of the tracker boundary: the Python callables and objects the interpreter
//! uses, looked up once. Everything the interpreter asks of Python goes through here.

use crate::ImportCached;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

pub struct Hooks {
    pub classify: Py<PyAny>,
    pub lookup_attr: Py<PyAny>,
    pub module_item_key: Py<PyAny>,
    pub module_slice_keys: Py<PyAny>,
    pub super_lookup: Py<PyAny>,
    pub dict_read_method: Py<PyAny>,
    pub super_type: Py<PyAny>,
    pub namedtuple_info: Py<PyAny>,
    /// Side-effect store checks (`variables/mutation.py`).
    pub setattr_plain: Py<PyAny>,
    pub new_object_shell: Py<PyAny>,
    /// Rebuilds a list/dict-subclass object made in the trace (its contents, attributes).
    pub fill_container: Py<PyAny>,
    /// `object` and `types` (replaying stores, rebuilding functions and cells).
    pub object: Py<PyAny>,
    /// `object.__setattr__` / `object.__delattr__` (a traced plain store when called).
    pub object_setattr: Py<PyAny>,
    pub object_delattr: Py<PyAny>,
    /// `object.__new__` (allocates a new user object when called with a plain class) and
    /// `object.__reduce_ex__` (traced through `polyfills.object_reduce_ex` on user objects).
    pub object_new: Py<PyAny>,
    pub object_reduce_ex: Py<PyAny>,
    /// `object.__getattribute__`, `object.__eq__`, `object.__ne__` (recognised by identity).
    pub object_getattribute: Py<PyAny>,
    pub object_eq: Py<PyAny>,
    pub object_ne: Py<PyAny>,
    /// `threading.local` (`_thread._local`): stores replay with its own setattr.
    pub thread_local: Py<PyAny>,
    pub reduce_ex_polyfill: Py<PyAny>,
    /// `polyfills.FakeId`: what id() gives for an object created in the trace.
    pub fake_id: Py<PyAny>,
    /// `polyfills.PENDING_TRACEBACK`: what `sys.exc_info()[2]` is in the trace.
    pub pending_traceback: Py<PyAny>,
    /// `polyfills.TRACE_ONLY`: code of functions and classes whose instances stand for
    /// objects inside the trace only (an `nn.CrossEntropyLoss` or a
    /// `warnings.catch_warnings()` made there); one leaving the trace breaks.
    pub trace_only: Py<PyAny>,
    pub types: Py<PyModule>,
    pub grad_ctx: GradCtx,
    pub describe: Py<PyAny>,
    pub graph_builder: Py<PyAny>,
    pub tensor_var: Py<PyAny>,
    /// `ferrodyn.graph.SymSize`: a torch.Size with symbolic sizes, from the graph builder.
    pub sym_size: Py<PyAny>,
    pub unsupported: Py<PyAny>,
    /// Compiler markers (`variables/markers.py`).
    pub marker_action: Py<PyAny>,
    /// `variables/tensor_subclass.py`, `torch.Tensor`, `torch.nn.Parameter`.
    pub tensor_subclass: Py<PyModule>,
    /// `variables/numpy_arrays.py`.
    pub numpy_arrays: Py<PyModule>,
    pub tensor_type: Py<PyAny>,
    pub parameter_type: Py<PyAny>,
    /// `torch.Tensor.as_subclass` (the graph value seen as another class; no graph node).
    pub tensor_as_subclass: Py<PyAny>,
    /// `numpy.generic` (NumPy scalars), `random.Random`, and the names of its methods the
    /// trace runs on a generator it made (`variables/markers.py`'s `RANDOM_METHODS`).
    pub numpy_generic: Py<PyAny>,
    pub random_class: Py<PyAny>,
    pub random_methods: Py<PyAny>,
    pub initial_error_on_break: Py<PyAny>,
    pub error_on_break_exit: Py<PyAny>,
    pub builtins: Py<PyDict>,
    pub operator: Py<PyModule>,
    /// Originals traced through a Python polyfill (`ferrodyn.polyfills.POLYFILLS`).
    pub polyfills: Py<PyDict>,
    /// `functools._lru_cache_wrapper` (traced through `__wrapped__`) and its one-time warning.
    pub lru_cache_wrapper: Py<PyAny>,
    pub warn_lru_cache: Py<PyAny>,
    pub b: Builtins,
}

/// Grad-mode context managers, traced as `_set_grad_enabled` nodes.
pub struct GradCtx {
    pub no_grad: Py<PyAny>,
    pub enable_grad: Py<PyAny>,
    pub set_grad_enabled: Py<PyAny>,
    pub set_fn: Py<PyAny>,
    pub is_enabled: Py<PyAny>,
}

/// Builtins that the interpreter implements itself (matched by identity).
pub struct Builtins {
    pub len: Py<PyAny>,
    pub isinstance: Py<PyAny>,
    pub issubclass: Py<PyAny>,
    pub range: Py<PyAny>,
    pub enumerate: Py<PyAny>,
    pub zip: Py<PyAny>,
    pub tuple: Py<PyAny>,
    pub list: Py<PyAny>,
    pub dict: Py<PyAny>,
    pub int: Py<PyAny>,
    pub float: Py<PyAny>,
    pub bool_: Py<PyAny>,
    pub str_: Py<PyAny>,
    pub getattr: Py<PyAny>,
    pub setattr: Py<PyAny>,
    pub delattr: Py<PyAny>,
    pub hasattr: Py<PyAny>,
    pub vars: Py<PyAny>,
    pub type_: Py<PyAny>,
    pub iter: Py<PyAny>,
    pub next: Py<PyAny>,
    pub reversed: Py<PyAny>,
    pub sum: Py<PyAny>,
    pub min: Py<PyAny>,
    pub max: Py<PyAny>,
    pub abs: Py<PyAny>,
    pub print: Py<PyAny>,
    pub set: Py<PyAny>,
    pub slice: Py<PyAny>,
    pub callable: Py<PyAny>,
    pub all: Py<PyAny>,
    pub any: Py<PyAny>,
    pub locals: Py<PyAny>,
    pub id: Py<PyAny>,
}

static HOOKS: PyOnceLock<Hooks> = PyOnceLock::new();

pub fn hooks(py: Python<'_>) -> PyResult<&Hooks> {
    HOOKS.get_or_try_init(py, || {
        let vars = py.import_cached("ferrodyn.variables")?;
        let graph = py.import_cached("ferrodyn.graph")?;
        let exc = py.import_cached("ferrodyn.exc")?;
        let markers = py.import_cached("ferrodyn.variables.markers")?;
        let builtins_mod = py.import_cached("builtins")?;
        let g = |n: &str| -> PyResult<Py<PyAny>> { Ok(builtins_mod.getattr(n)?.unbind()) };
        Ok(Hooks {
            classify: vars.getattr("classify")?.unbind(),
            lookup_attr: vars.getattr("lookup_attr")?.unbind(),
            module_item_key: vars.getattr("module_item_key")?.unbind(),
            module_slice_keys: vars.getattr("module_slice_keys")?.unbind(),
            super_lookup: vars.getattr("super_lookup")?.unbind(),
            dict_read_method: vars.getattr("dict_read_method")?.unbind(),
            super_type: builtins_mod.getattr("super")?.unbind(),
            namedtuple_info: vars.getattr("namedtuple_info")?.unbind(),
            setattr_plain: vars.getattr("setattr_plain")?.unbind(),
            new_object_shell: vars.getattr("new_object_shell")?.unbind(),
            fill_container: vars.getattr("fill_container_object")?.unbind(),
            object: g("object")?,
            object_setattr: builtins_mod
                .getattr("object")?
                .getattr("__setattr__")?
                .unbind(),
            object_delattr: builtins_mod
                .getattr("object")?
                .getattr("__delattr__")?
                .unbind(),
            object_new: builtins_mod.getattr("object")?.getattr("__new__")?.unbind(),
            object_reduce_ex: builtins_mod
                .getattr("object")?
                .getattr("__reduce_ex__")?
                .unbind(),
            object_getattribute: builtins_mod
                .getattr("object")?
                .getattr("__getattribute__")?
                .unbind(),
            object_eq: builtins_mod.getattr("object")?.getattr("__eq__")?.unbind(),
            object_ne: builtins_mod.getattr("object")?.getattr("__ne__")?.unbind(),
            thread_local: py.import_cached("threading")?.getattr("local")?.unbind(),
            reduce_ex_polyfill: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("object_reduce_ex")?
                .unbind(),
            fake_id: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("FakeId")?
                .unbind(),
            pending_traceback: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("PENDING_TRACEBACK")?
                .unbind(),
            trace_only: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("TRACE_ONLY")?
                .unbind(),
            types: py.import_cached("types")?.unbind(),
            grad_ctx: {
                let torch = py.import_cached("torch")?;
                GradCtx {
                    no_grad: torch.getattr("no_grad")?.unbind(),
                    enable_grad: torch.getattr("enable_grad")?.unbind(),
                    set_grad_enabled: torch.getattr("set_grad_enabled")?.unbind(),
                    set_fn: torch.getattr("_C")?.getattr("_set_grad_enabled")?.unbind(),
                    is_enabled: torch.getattr("is_grad_enabled")?.unbind(),
                }
            },
            describe: vars.getattr("describe")?.unbind(),
            graph_builder: graph.getattr("GraphBuilder")?.unbind(),
            tensor_var: graph.getattr("TensorVar")?.unbind(),
            sym_size: graph.getattr("SymSize")?.unbind(),
            unsupported: exc.getattr("Unsupported")?.unbind(),
            marker_action: markers.getattr("marker_action")?.unbind(),
            numpy_arrays: py
                .import_cached("ferrodyn.variables.numpy_arrays")?
                .cast_into::<PyModule>()?
                .unbind(),
            tensor_subclass: py
                .import_cached("ferrodyn.variables.tensor_subclass")?
                .cast_into::<PyModule>()?
                .unbind(),
            tensor_type: py.import_cached("torch")?.getattr("Tensor")?.unbind(),
            numpy_generic: py.import_cached("numpy")?.getattr("generic")?.unbind(),
            random_class: py.import_cached("random")?.getattr("Random")?.unbind(),
            random_methods: markers.getattr("RANDOM_METHODS")?.unbind(),
            tensor_as_subclass: py
                .import_cached("torch")?
                .getattr("Tensor")?
                .getattr("as_subclass")?
                .unbind(),
            parameter_type: py
                .import_cached("torch")?
                .getattr("nn")?
                .getattr("Parameter")?
                .unbind(),
            initial_error_on_break: markers.getattr("initial_error_on_graph_break")?.unbind(),
            error_on_break_exit: py
                .import_cached("ferrodyn._glue")?
                .getattr("ErrorOnBreakExit")?
                .unbind(),
            builtins: builtins_mod.dict().unbind(),
            operator: py.import_cached("operator")?.unbind(),
            polyfills: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("POLYFILLS")?
                .cast_into::<PyDict>()?
                .unbind(),
            lru_cache_wrapper: py
                .import_cached("functools")?
                .getattr("_lru_cache_wrapper")?
                .unbind(),
            warn_lru_cache: py
                .import_cached("ferrodyn.polyfills")?
                .getattr("warn_lru_cache")?
                .unbind(),
            b: Builtins {
                len: g("len")?,
                isinstance: g("isinstance")?,
                issubclass: g("issubclass")?,
                range: g("range")?,
                enumerate: g("enumerate")?,
                zip: g("zip")?,
                tuple: g("tuple")?,
                list: g("list")?,
                dict: g("dict")?,
                int: g("int")?,
                float: g("float")?,
                bool_: g("bool")?,
                str_: g("str")?,
                getattr: g("getattr")?,
                setattr: g("setattr")?,
                delattr: g("delattr")?,
                hasattr: g("hasattr")?,
                vars: g("vars")?,
                type_: g("type")?,
                iter: g("iter")?,
                next: g("next")?,
                reversed: g("reversed")?,
                sum: g("sum")?,
                min: g("min")?,
                max: g("max")?,
                abs: g("abs")?,
                print: g("print")?,
                set: g("set")?,
                slice: g("slice")?,
                callable: g("callable")?,
                all: g("all")?,
                locals: g("locals")?,
                id: g("id")?,
                any: g("any")?,
            },
        })
    })
}
