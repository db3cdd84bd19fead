"""NumPy arrays in the trace (checklist items 114-118), as torch.compile traces them while
`torch._dynamo.config.trace_numpy` is on (its default).

An `np.ndarray` argument is a graph input: the tensor `torch.as_tensor(array)` (sharing its
memory), whose `TensorVar` stands for an ndarray. NumPy functions with a twin in
`torch._numpy` (NumPy's semantics written with torch ops), ndarray methods and attributes,
and operators on such values become graph nodes that call the twin on tensors and give
tensors back (`NumpyCall`, `NumpyMethod`, `NumpyOperator`); their results are ndarrays again.
An ndarray leaving the graph is made from the output tensor (`to_numpy`). A NumPy function
without a twin, or any NumPy call while `trace_numpy` is off, breaks the graph.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import torch

_tnp: Any = None


def _numpy_twins() -> Any:
    global _tnp
    if _tnp is None:
        import torch._numpy as tnp

        _tnp = tnp
    return _tnp


def trace_numpy() -> bool:
    """torch's `trace_numpy` setting (on unless `torch._dynamo.config` says otherwise)."""
    cfg = sys.modules.get("torch._dynamo.config")
    return bool(getattr(cfg, "trace_numpy", True)) if cfg is not None else True


def _to_tensor(value: Any) -> Any:
    tnp = _numpy_twins()
    if isinstance(value, tnp.ndarray):
        return value.tensor
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if type(value) in (tuple, list):
        return type(value)(_to_tensor(v) for v in value)
    return value


def _to_array(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _numpy_twins().ndarray(value)
    return _to_twin_arg(value)


def _to_twin_arg(value: Any) -> Any:
    """NumPy dtypes and scalar types (`np.float64`, `np.dtype("int32")`) as the dtype names
    `torch._numpy` takes."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return value


def node_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """A NumPy node's arguments as the graph holds them (dtypes by name: the graph's code
    cannot spell a NumPy type object)."""
    return _twin_args(args, kwargs)


def _twin_args(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return tuple(_to_twin_arg(a) for a in args), {k: _to_twin_arg(v) for k, v in kwargs.items()}


class NumpyCall:
    """Graph node target: a NumPy function's `torch._numpy` twin, tensors in and out."""

    def __init__(self, name: str, twin: Any) -> None:
        self.twin = twin
        self.__name__ = f"numpy_{name}"
        self.__qualname__ = self.__name__
        self.__module__ = __name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _twin_args(args, kwargs)
        return _to_tensor(self.twin(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


class NumpyMethod:
    """Graph node target: `array.name(*args)` of a `torch._numpy` ndarray on a tensor."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = f"ndarray_{name}"
        self.__qualname__ = self.__name__
        self.__module__ = __name__

    def __call__(self, array: Any, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = _twin_args(args, kwargs)
        return _to_tensor(getattr(_to_array(array), self.name)(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


class NumpyAttribute(NumpyMethod):
    """Graph node target: `array.name` (`T`, `real`, `imag`, ...)."""

    def __call__(self, array: Any, *args: Any, **kwargs: Any) -> Any:
        return _to_tensor(getattr(_to_array(array), self.name))


class NumpyOperator:
    """Graph node target: an `operator` function (`+`, `<`, `a[i]`, ...) with NumPy's
    semantics: tensor arguments are `torch._numpy` ndarrays."""

    def __init__(self, op: Any) -> None:
        self.op = op
        self.__name__ = f"numpy_operator_{getattr(op, '__name__', 'op')}"
        self.__qualname__ = self.__name__
        self.__module__ = __name__

    def __call__(self, *args: Any) -> Any:
        return _to_tensor(self.op(*[_to_array(a) for a in args]))

    def __repr__(self) -> str:
        return f"<{self.__name__}>"


_calls: dict[Any, NumpyCall | None] = {}
_methods: dict[str, NumpyMethod] = {}
_operators: dict[Any, NumpyOperator] = {}

# ndarray attributes that are plain metadata (constants of the graph under static shapes).
_META = frozenset({"shape", "ndim", "size", "itemsize", "nbytes", "strides", "dtype"})
# ndarray attributes computed from the data: graph nodes.
_COMPUTED = frozenset({"T", "mT", "real", "imag", "flat"})
# ndarray methods that read values into Python (or leave NumPy): graph breaks.
_DATA_METHODS = frozenset({"item", "tolist", "tobytes", "tofile", "dump", "dumps", "__array__"})


_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)
# ufuncs and `__array_function__` dispatchers (`np.sum`, ...): NumPy's own callable types.
_NUMPY_CALLABLE_TYPES = frozenset({np.ufunc, type(np.sum)})


def is_numpy_function(fn: Any) -> bool:
    """A function of the `numpy` package (ufuncs, dispatchers, plain functions). Decided by
    type first: an arbitrary object's attributes are never read (that could run its code)."""
    t = type(fn)
    if t in _NUMPY_CALLABLE_TYPES:
        return True
    if t is type:
        return issubclass(fn, np.generic)  # np.float32(2.5), np.int64(x)
    if t not in _FUNCTION_TYPES:
        return False
    mod = fn.__module__
    return isinstance(mod, str) and (mod == "numpy" or mod.startswith("numpy."))


def call_target(fn: Any) -> NumpyCall | None:
    """The graph node target for calling the NumPy function `fn` (None: it has no twin in
    `torch._numpy`, or tracing NumPy is off)."""
    if not trace_numpy():
        return None
    if fn in _calls:
        return _calls[fn]
    name = getattr(fn, "__name__", None)
    twin = getattr(_numpy_twins(), name, None) if isinstance(name, str) else None
    if twin is not None and getattr(np, name, None) is not fn:
        twin = None  # numpy.linalg.norm and friends: not the top-level name
    target = NumpyCall(name, twin) if callable(twin) and isinstance(name, str) else None
    _calls[fn] = target
    return target


def fold(fn: Any, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    """`fn(*args, **kwargs)` on constants, run now: (True, result) when the result is not an
    array (`np.sqrt(64)` is a NumPy scalar, a constant of the graph); (False, None) when it
    is one (the caller records a node, so the array is a graph value), or when `fn` has no
    `torch._numpy` twin (only those are known to be pure: `np.seterr`, `np.save` are not)."""
    if call_target(fn) is None:
        return False, None
    result = fn(*args, **kwargs)
    if isinstance(result, np.ndarray):
        return False, None
    return True, result


def method_target(name: str) -> NumpyMethod | None:
    """The graph node target for `array.name(...)`, or None (a graph break)."""
    if name in _DATA_METHODS or not callable(getattr(_numpy_twins().ndarray, name, None)):
        return None
    if name not in _methods:
        _methods[name] = NumpyMethod(name)
    return _methods[name]


def operator_target(op: Any) -> NumpyOperator:
    """The graph node target for the `operator` function (or `len`/`abs`) `op`."""
    if op not in _operators:
        _operators[op] = NumpyOperator(op)
    return _operators[op]


def attribute(fake: torch.Tensor, name: str) -> tuple[int, Any]:
    """`array.name` for the array a fake tensor stands for: (0, constant) for metadata,
    (1, node target) for a computed attribute, (2, None) for a method, (3, None) when
    the trace cannot answer (a graph break)."""
    if name in _META:
        if any(not isinstance(d, int) for d in fake.shape):
            return 3, None
        try:
            dtype = np.dtype(torch.empty((), dtype=fake.dtype).numpy().dtype)
        except (TypeError, RuntimeError):
            return 3, None
        itemsize = dtype.itemsize
        values = {
            "shape": tuple(fake.shape),
            "ndim": fake.dim(),
            "size": fake.numel(),
            "itemsize": itemsize,
            "nbytes": fake.numel() * itemsize,
            "strides": tuple(s * itemsize for s in fake.stride()),
            "dtype": dtype,
        }
        return 0, values[name]
    if name in _COMPUTED:
        if name not in _methods:
            _methods[name] = NumpyAttribute(name)
        return 1, _methods[name]
    if method_target(name) is not None:
        return 2, None
    return 3, None


def as_tensor(array: Any) -> torch.Tensor:
    """The graph input for an ndarray argument (also what its guard checks)."""
    return torch.as_tensor(array)


def to_numpy(tensor: torch.Tensor) -> Any:
    """An ndarray computed in the graph, as eager has it: NumPy gives a scalar (`np.float32`)
    where its result has no dimensions (reductions, `a[i]`), `torch._numpy` a 0-d array."""
    array = tensor.detach().numpy()
    return array[()] if array.ndim == 0 else array


def is_ndarray_type(t: type) -> bool:
    return t is np.ndarray


def is_numeric_scalar(obj: Any) -> bool:
    """A NumPy bool, integer, float or complex scalar."""
    return issubclass(type(obj), np.generic) and np.dtype(type(obj)).kind in "biufc"
