"""What kind of object is this? The Rust core asks once per object it meets (cached by type
where the answer depends only on the type) and then handles the value by kind."""

from __future__ import annotations

import builtins
import collections.abc
import enum
import functools
import math
import operator
import re
import sys
import types
import typing
from typing import Any

import torch

from . import kinds, markers, numpy_arrays, tensor_subclass
from .typecheck import is_a

_CONST_TYPES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        type(Ellipsis),
        type(NotImplemented),
        torch.dtype,
        torch.device,
        torch.layout,
        torch.memory_format,
        torch.Size,
        types.CodeType,
        range,
    }
)
# Immutable stdlib values that fold like constants: compiled regular expressions and their
# matches, and `typing` aliases (`List[int]`, `Optional`, `Union[...]`, `TypeVar`).
_CONST_TYPES = _CONST_TYPES | frozenset(
    t
    for t in (
        re.Pattern,
        re.Match,
        types.GenericAlias,
        type(collections.abc.Callable[[int], int]),  # collections.abc's own alias subclass
        types.UnionType,
        typing.TypeVar,
        *(
            getattr(typing, n, None)
            for n in (
                "_SpecialGenericAlias",
                "_SpecialForm",
                "_GenericAlias",
                "_UnionGenericAlias",
                "_CallableGenericAlias",
                "_CallableType",
                "_TupleType",
                "_LiteralGenericAlias",
                "_AnnotatedAlias",
            )
        ),
    )
    if isinstance(t, type)
)
if torch.distributed.is_available():
    # `dist.ReduceOp.SUM` and the like: immutable enum values.
    _CONST_TYPES = _CONST_TYPES | {torch.distributed.ReduceOp.RedOpType}
# Stdlib functions that are pure on constant arguments: called natively, never traced (their
# caches are dicts keyed by tuples of types and flags).
_PURE_FUNCS: frozenset[int] = frozenset(
    id(getattr(re, n))
    for n in (
        "compile",
        "match",
        "search",
        "fullmatch",
        "sub",
        "subn",
        "split",
        "findall",
        "escape",
    )
)
_TENSOR_TYPES: frozenset[type] = frozenset({torch.Tensor, torch.nn.Parameter})

# torch functions that must never run while tracing (global state, I/O, RNG seeding).
_TORCH_DENY: frozenset[str] = frozenset(
    {
        "manual_seed",
        "seed",
        "initial_seed",
        "set_rng_state",
        "get_rng_state",
        "save",
        "load",
        "set_default_dtype",
        "set_default_device",
        "set_grad_enabled",
        "set_printoptions",
        "use_deterministic_algorithms",
        "set_num_threads",
        "compile",
        "no_grad",
        "enable_grad",
        "inference_mode",
        "autocast",
    }
)
_TORCH_MODULE_PREFIXES = (
    "torch.nn.functional",
    "torch.functional",
    "torch._C",
    "torch.fft",
    "torch.linalg",
    "torch.special",
    "torch._refs",
    "torch.nn.init",
)

# Builtins and stdlib functions that are pure on constants: folded at trace time.
_PURE: set[int] = set()
for _name in (
    "abs",
    "min",
    "max",
    "round",
    "divmod",
    "pow",
    "hash",
    "repr",
    "ascii",
    "ord",
    "chr",
    "bin",
    "oct",
    "hex",
    "sorted",
    "all",
    "any",
    "callable",
    "format",
    "id",
):
    _PURE.add(id(getattr(builtins, _name)))
for _name in dir(math):
    if not _name.startswith("_") and callable(getattr(math, _name)):
        _PURE.add(id(getattr(math, _name)))
_OPERATOR: set[int] = {
    id(getattr(operator, n))
    for n in dir(operator)
    if not n.startswith("_")
    and n
    not in (
        "attrgetter",
        "itemgetter",
        "methodcaller",
        "setitem",
        "delitem",
        "iadd",
        "iand",
        "iconcat",
        "ifloordiv",
        "ilshift",
        "imatmul",
        "imod",
        "imul",
        "ior",
        "ipow",
        "irshift",
        "isub",
        "itruediv",
        "ixor",
    )
}

# Classes whose constructors are pure on constant arguments (folded at trace time).
_PURE_CLASSES: frozenset[Any] = frozenset(
    {torch.Size, torch.device, torch.finfo, torch.iinfo, complex, frozenset, slice}
)

_type_cache: dict[type, int] = {}


def _is_torch_namespace(obj: Any) -> bool:
    mod = getattr(obj, "__module__", None)
    if not is_a(mod, str):
        return False
    return mod == "torch" or mod.startswith(_TORCH_MODULE_PREFIXES)


def _is_functorch_binding(obj: Any, self_obj: Any) -> bool:
    mod = getattr(obj, "__module__", None)
    if is_a(mod, str) and mod.startswith("torch._C._functorch"):
        return True
    return is_a(self_obj, types.ModuleType) and self_obj.__name__.startswith("torch._C._functorch")


def classify(obj: Any) -> int:
    t = type(obj)
    cached = _type_cache.get(t)
    if cached is not None:
        return cached
    if t in _CONST_TYPES:
        return kinds.CONST
    if t is frozenset and all(type(m) in _CONST_TYPES for m in obj):
        # A frozenset of constants is a constant (guarded by its iteration order).
        return kinds.CONST
    if is_a(obj, enum.Enum) and is_a(obj, (int, float)):
        # IntEnum / IntFlag members and float enums: immutable numbers, guarded by value
        # (and type); a tensor operation gets their plain number.
        return kinds.CONST
    if t in _TENSOR_TYPES:
        return kinds.TENSOR
    if t is tuple:
        return kinds.TUPLE
    if t is list:
        return kinds.LIST
    if t is dict:
        return kinds.DICT
    if is_a(obj, tuple) and namedtuple_info(t) is not None:
        return kinds.NAMEDTUPLE
    if is_a(obj, torch.nn.Module):
        return kinds.NN_MODULE
    if numpy_arrays.is_ndarray_type(t):
        return kinds.NDARRAY
    if numpy_arrays.is_numeric_scalar(obj):
        return kinds.CONST  # np.float32(2.5), np.int64(3): immutable, guarded by value
    if is_a(obj, torch.Tensor):
        # A subclass without a __torch_dispatch__ of its own is a tensor (its type kept,
        # its __torch_function__ traced: tensor_subclass.py); others are not supported.
        return kinds.TENSOR if tensor_subclass.is_traced_subclass(t) else kinds.UNSUPPORTED
    if t is types.FunctionType:
        if markers.allowed_in_graph(obj) or tensor_subclass.is_tensor_method(obj):
            return kinds.TORCH_OP
        if numpy_arrays.is_numpy_function(obj) and not markers.is_marker(obj):
            return kinds.NUMPY_FN
        if markers.is_marker(obj):
            return kinds.MARKER
        if _is_torch_namespace(obj) and not obj.__module__.startswith("torch.nn.modules"):
            return kinds.UNSUPPORTED if obj.__name__ in _TORCH_DENY else kinds.TORCH_OP
        if id(obj) in _PURE_FUNCS:
            return kinds.PURE
        if obj.__module__ == "logging":
            return kinds.UNSUPPORTED  # logging calls break at the call, as in torch.compile
        return kinds.FUNCTION
    if t is types.MethodType:
        if markers.is_marker(obj):
            return kinds.MARKER  # random.randint, ...
        func = obj.__func__
        if type(func) is types.FunctionType and func.__module__ == "logging":
            return kinds.UNSUPPORTED  # Logger.info(...) and friends: a break at the call
        return kinds.METHOD if type(func) is types.FunctionType else kinds.OBJECT
    if t is types.ModuleType:
        name = obj.__name__
        return (
            kinds.TORCH_MODULE if name == "torch" or name.startswith("torch.") else kinds.PY_MODULE
        )
    if is_a(obj, type):
        if numpy_arrays.is_numpy_function(obj):
            return kinds.NUMPY_FN  # np.float32(2.5): a NumPy scalar type called
        return kinds.PURE if obj in _PURE_CLASSES else kinds.CLASS
    if is_a(obj, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return kinds.TORCH_OP
    if tensor_subclass.tensor_method_name(obj) is not None:
        return kinds.TORCH_OP  # torch.Tensor.add: a graph call on its tensor argument
    if t is types.MethodWrapperType and tensor_subclass.getter_name(obj) is not None:
        return kinds.TORCH_OP  # torch.Tensor.shape.__get__: reads the attribute
    if t in (types.BuiltinFunctionType, types.BuiltinMethodType):
        if markers.is_marker(obj):
            return kinds.MARKER
        if numpy_arrays.is_numpy_function(obj):
            return kinds.NUMPY_FN  # np.arange, np.array, ...
        if markers.allowed_in_graph(obj):
            return kinds.TORCH_OP
        oid = id(obj)
        if oid in _OPERATOR:
            return kinds.OPERATOR
        if oid in _PURE:
            return kinds.PURE
        self_obj = getattr(obj, "__self__", None)
        if _is_functorch_binding(obj, self_obj):
            # functorch's interpreter stack (`_vmap_increment_nesting`, `_add_batch_dim`,
            # ...): process-wide state that a graph node cannot carry (torch.vmap is traced
            # as one node instead: polyfills_vmap.py).
            return kinds.UNSUPPORTED
        if (
            _is_torch_namespace(obj)
            or is_a(self_obj, types.ModuleType)
            and (self_obj.__name__.startswith("torch"))
        ):
            return kinds.UNSUPPORTED if obj.__name__ in _TORCH_DENY else kinds.TORCH_OP
        if self_obj is not None and (type(self_obj) in _CONST_TYPES or type(self_obj) is tuple):
            return kinds.PURE  # a method of an immutable constant ("a,b".split)
        return kinds.UNSUPPORTED
    if markers.is_marker(obj):
        return kinds.MARKER
    if numpy_arrays.is_numpy_function(obj):
        return kinds.NUMPY_FN  # ufuncs, array-function dispatchers
    return kinds.OBJECT


def namedtuple_info(cls: Any) -> tuple[tuple[str, ...], dict[str, Any], bool] | None:
    """(field names, field defaults, is_structseq) for namedtuple and torch.return_types
    (structseq) classes; None for anything else."""
    if not is_a(cls, type) or not issubclass(cls, tuple) or cls is tuple:
        return None
    fields = cls.__dict__.get("_fields")
    if is_a(fields, tuple) and cls.__new__ is not tuple.__new__:
        return fields, dict(getattr(cls, "_field_defaults", {})), False
    if hasattr(cls, "n_sequence_fields"):
        names = getattr(cls, "__match_args__", None)
        if is_a(names, tuple):
            return names, {}, True
    return None


# Private implementation modules whose objects are public under another module's name.
_MODULE_ALIASES: dict[str, str] = {
    "posix": "os",
    "nt": "os",
    "posixpath": "os.path",
    "ntpath": "os.path",
}
# C classes whose public name differs from their real one.
_TYPE_NAMES: dict[type, str] = {torch._C.TensorBase: "torch.Tensor"}


def _public_module(mod: str, qualname: str, obj: Any = None) -> str:
    """The shortest public module that holds the same object as `mod` does under the first
    part of `qualname` (`posix` -> `os`, `_operator` -> `operator`, `torch._tensor` -> `torch`,
    `torch.nn.modules.linear` -> `torch.nn`); `mod` itself when there is none. `obj`: the
    object named by a one-part `qualname` (its home module may have rebound the name)."""
    first = qualname.split(".", 1)[0]
    target = obj if obj is not None and "." not in qualname else None
    if target is None:
        target = getattr(sys.modules.get(mod), first, None)
    if target is None:
        return mod
    candidates: list[str] = []
    if mod in _MODULE_ALIASES:
        candidates.append(_MODULE_ALIASES[mod])
    parts = mod.split(".")
    if len(parts) == 1 and mod.startswith("_"):
        candidates.append(mod.lstrip("_"))
    while len(parts) > 1:
        parts.pop()
        candidates.append(".".join(parts))
    best = mod
    for cand in candidates:
        if getattr(sys.modules.get(cand), first, None) is target and len(cand) <= len(best):
            best = cand
    return best


def _type_name(cls: type) -> str:
    name = _TYPE_NAMES.get(cls)
    if name is not None:
        return name
    mod = getattr(cls, "__module__", None)
    qual = getattr(cls, "__qualname__", None) or cls.__name__
    if not is_a(mod, str) or mod == "builtins":
        return str(qual)
    return f"{_public_module(mod, qual)}.{qual}"


def _qualify(mod: str, qualname: str, obj: Any = None) -> str:
    return qualname if mod == "builtins" else f"{_public_module(mod, qualname, obj)}.{qualname}"


def _describe(obj: Any) -> str:
    if is_a(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if is_a(obj, type):
        return _type_name(obj)
    if is_a(obj, (torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        return f"torch.ops.{obj}"
    if is_a(obj, functools.partial):
        return f"functools.partial({_describe(obj.func)})"
    name = getattr(obj, "__name__", None)
    if not is_a(name, str):
        return f"object of type {_type_name(type(obj))}"
    # Reachable as `module.name` (numpy.linalg.svd, zlib.crc32, torch.add, random.random).
    mod = getattr(obj, "__module__", None)
    if is_a(mod, str):
        home = sys.modules.get(mod)
        found = getattr(home, name, None) if home is not None else None
        if found is obj or (found is not None and type(found) is type(obj) and found == obj):
            return _qualify(mod, name)
    # A method bound to an object or a class (x.item, [].append, dict.fromkeys).
    owner = getattr(obj, "__self__", None)
    if owner is not None and not is_a(owner, types.ModuleType):
        cls = owner if is_a(owner, type) else type(owner)
        # A module-level alias of a bound method (random.random is random._inst.random).
        home = sys.modules.get(getattr(cls, "__module__", ""))
        found = getattr(home, name, None) if home is not None else None
        if found is not None and type(found) is type(obj) and found == obj:
            return _qualify(cls.__module__, name)
        return f"{_type_name(cls)}.{name}"
    # An unbound C method or slot (torch.Tensor.item, list.append, int.__add__).
    objclass = getattr(obj, "__objclass__", None)
    if is_a(objclass, type):
        return f"{_type_name(objclass)}.{name}"
    qual = getattr(obj, "__qualname__", None)
    if not is_a(qual, str):
        qual = name
    if is_a(mod, str):
        return _qualify(mod, qual, obj)
    if is_a(obj, (types.FunctionType, types.BuiltinFunctionType)):
        return qual
    return f"object of type {_type_name(type(obj))}"


def describe(obj: Any) -> str:
    """User-facing name of an object, for graph-break reasons.

    Functions and classes are named the way user code reaches them: module-qualified, from
    a public module (`numpy.linalg.svd`, `zlib.crc32`, `os.getpid`, `torch.add`), methods by
    their class (`torch.Tensor.item`, `list.append`), builtins bare (`print`, `int`); any
    other object as `object of type <class>`. Never raises."""
    try:
        return _describe(obj)
    except Exception:  # noqa: BLE001 - a name for an error message must never fail
        return f"object of type {type(obj).__qualname__}"
