//! Object kinds and attribute locations: the vocabulary of the tracker boundary.
//! Defined once here; `py_api.rs` exports them to Python as `_core.KIND_*` / `_core.AT_*`.

macro_rules! define_consts {
    ($($name:ident = $val:expr),* $(,)?) => {
        $(pub const $name: i64 = $val;)*
        pub const ALL: &[(&str, i64)] = &[$((stringify!($name), $val)),*];
    };
}

define_consts! {
    KIND_CONST = 0,
    KIND_TENSOR = 1,
    KIND_TUPLE = 2,
    KIND_LIST = 3,
    KIND_DICT = 4,
    KIND_NN_MODULE = 5,
    KIND_FUNCTION = 6,
    KIND_METHOD = 7,
    KIND_TORCH_OP = 8,
    KIND_PURE = 9,
    KIND_OPERATOR = 10,
    KIND_PY_MODULE = 11,
    KIND_TORCH_MODULE = 12,
    KIND_CLASS = 13,
    KIND_OBJECT = 14,
    KIND_UNSUPPORTED = 15,
    KIND_NAMEDTUPLE = 16,
    // A torch compiler marker (torch._dynamo.graph_break, a torch.compiler.disable'd
    // function, is_compiling, error_on_graph_break, ...): see markers.rs.
    KIND_MARKER = 17,
    // An `np.ndarray` (a graph tensor while trace_numpy is on: numpy_arrays.rs).
    KIND_NDARRAY = 18,
    // A NumPy function (`np.sin`, `np.sum`, ...): a graph node through torch._numpy.
    KIND_NUMPY_FN = 19,
    AT_INSTANCE = 100,
    AT_PARAMETER = 101,
    AT_BUFFER = 102,
    AT_SUBMODULE = 103,
    AT_CLASS = 104,
    AT_PROPERTY = 105,
    AT_GENERIC = 106,
    AT_UNGUARDED = 107,
    // The class defines `__getattribute__` in Python: the lookup is a traced call of it.
    AT_GETATTRIBUTE = 108,
    // A read-only method of dict/OrderedDict itself on a dict subclass (keys, items, get,
    // ...): the value is its name, the call reads the dict's own storage with guards.
    AT_DICT_READ = 109,
    // A descriptor whose type defines `__get__` in Python: the value is
    // `(descriptor, index in type(obj).__mro__ of the class holding it)`; the lookup is a
    // traced call of `type(descriptor).__get__(descriptor, obj, type(obj))`.
    AT_DESCRIPTOR = 110,
    // The generic lookup fails and the class defines `__getattr__` in Python: the value is
    // that function; the lookup is a traced call of it, guarded on the name staying absent.
    AT_GETATTR = 111,
    // What calling (or entering) a marker does (`variables/markers.py` answers).
    MARKER_BREAK = 200,
    MARKER_SKIP = 201,
    MARKER_CONST = 202,
    MARKER_EOGB_CTOR = 203,
    MARKER_EOGB_CTX = 204,
    MARKER_EOGB_EXIT = 205,
    MARKER_INLINE = 206,
    MARKER_STEP_UNSUPPORTED = 207,
    // `torch._dynamo.assume_constant_result` functions: run at trace time on constants.
    MARKER_ASSUME_CONSTANT = 208,
    // `polyfills.apply_in_graph`: a user autograd.Function's apply as one graph node.
    MARKER_AUTOGRAD_APPLY = 209,
    // `torch._dynamo.comptime.comptime`: runs its function at trace time (comptime.rs).
    MARKER_COMPTIME = 210,
    // `collections.namedtuple`: called at trace time on constant arguments.
    MARKER_NAMEDTUPLE = 211,
    // `polyfills_torch_function.disable_subclass_dispatch(delta)`: subclass `__torch_function__` dispatch
    // off (`delta` > 0) or back on in the trace (tensor_subclass.rs).
    MARKER_TF_DISABLE = 212,
    // A `random` module function drawing a number: a graph input drawn on every call.
    MARKER_RANDOM = 213,
    // `polyfills_vmap.vmap_in_graph`: a vmapped function as one graph node (vmap.rs).
    MARKER_VMAP = 214,
}
