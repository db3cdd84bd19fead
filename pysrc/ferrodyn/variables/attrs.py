"""Attribute lookup semantics (CPython's object.__getattribute__ order plus nn.Module's
`__getattr__` for parameters, buffers and submodules), without running user code.

`lookup_attr(obj, name)` returns `(where, value)`; the Rust core turns `where` into the
guard source for the value (e.g. `self.__dict__['_parameters']['weight']`)."""

from __future__ import annotations

import collections
import threading
import types
from typing import Any

import numpy as np
import torch

from ..exc import UnsafeScriptObjectError, Unsupported
from . import kinds
from .typecheck import is_a

_MISSING = object()


def _class_lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        d = klass.__dict__
        if name in d:
            return d[name]
    return _MISSING


# Read-only methods of dict and OrderedDict that the tracer models on dict subclasses
# (reading the dict's own storage, guarded).
DICT_READS = frozenset(
    ("keys", "items", "values", "get", "__getitem__", "__contains__", "__len__", "__iter__")
)


# dict's own mutators, modelled on a dict subclass (not an OrderedDict one, whose order
# lives outside dict's storage) through a mirror of its contents.
DICT_WRITES = frozenset(
    ("__setitem__", "__delitem__", "update", "setdefault", "pop", "popitem", "clear")
)


def dict_read_method(raw: Any, name: str) -> bool:
    """Whether `raw`, found on a class for `name`, is dict's or OrderedDict's own C
    implementation of a read-only method, or dict's own of a mutator (the tracer models
    both on dict subclasses: `rust/interp/containers.rs`, `sub_dict_read`)."""
    if type(raw) not in (types.MethodDescriptorType, types.WrapperDescriptorType):
        return False
    owner = getattr(raw, "__objclass__", None)
    if name in DICT_READS:
        return owner in (dict, collections.OrderedDict)
    return name in DICT_WRITES and owner is dict


# Builtin types whose own `__getattribute__` slot is CPython's generic lookup.
_GENERIC_GETATTR_OWNERS = (dict, list, tuple, set, frozenset, int, float, complex, str, bytes)


def _generic_slot(getattribute: Any) -> bool:
    return (
        type(getattribute) is types.WrapperDescriptorType
        and getattribute.__objclass__ in _GENERIC_GETATTR_OWNERS
    )


def _is_data_descriptor(attr: Any) -> bool:
    t = type(attr)
    return hasattr(t, "__set__") or hasattr(t, "__delete__")


def _python_descriptor(cls: type, raw: Any, name: str) -> tuple[Any, int] | None:
    """`raw` (found on `cls` for `name`) when its type defines `__get__` in Python:
    `(raw, index in cls.__mro__ of the class whose dict holds it)`, so the tracer calls
    `__get__` traced instead of running it here. None when `__get__` is C code."""
    get = getattr(type(raw), "__get__", None)
    if get is None or type(get) in (types.WrapperDescriptorType, types.MethodWrapperType):
        return None
    if type(get) is not types.FunctionType:
        raise Unsupported(f"descriptor {cls.__qualname__}.{name} with a non-function __get__")
    for i, klass in enumerate(cls.__mro__):
        if name in klass.__dict__:
            return raw, i
    return None


def _is_plain_property(raw: Any) -> bool:
    """A property (or a subclass keeping property's own `__get__`)."""
    return is_a(raw, property) and type(raw).__get__ is property.__get__


def _c_getattribute(meta: type) -> bool:
    """Whether `meta.__getattribute__` is pybind11's metaclass slot (C++ extension classes
    such as `dist.ReduceOp`): it reads the class dict as `type`'s does, running no Python."""
    slot = meta.__getattribute__
    owner = getattr(slot, "__objclass__", None)
    return (
        type(slot) is types.WrapperDescriptorType
        and is_a(owner, type)
        and owner.__name__ == "pybind11_type"
        and owner.__module__ == "pybind11_builtins"
    )


def _class_getattr(cls: type, name: str) -> tuple[int, Any]:
    """`cls.name` for a class: refuses lookups that would run user code (a descriptor with a
    Python `__get__` on the class or its metaclass); a metaclass's Python `__getattr__`
    reached by a failed lookup is AT_GETATTR (traced)."""
    meta = type(cls)
    if meta is not type:
        if meta.__getattribute__ is not type.__getattribute__ and not _c_getattribute(meta):
            raise Unsupported(f"attribute lookup through {meta.__qualname__}.__getattribute__")
        meta_attr = _class_lookup(meta, name)
        if meta_attr is not _MISSING and _python_descriptor(meta, meta_attr, name) is not None:
            raise Unsupported(f"metaclass descriptor {meta.__qualname__}.{name}")
    raw = _class_lookup(cls, name)
    if raw is not _MISSING and _python_descriptor(cls, raw, name) is not None:
        raise Unsupported(f"class-level access to descriptor {cls.__qualname__}.{name}")
    if raw is _MISSING and meta is not type and _class_lookup(meta, name) is _MISSING:
        fallback = _class_lookup(meta, "__getattr__")
        if type(fallback) is types.FunctionType:
            # The lookup fails: the metaclass's Python __getattr__ is called (traced).
            return kinds.AT_GETATTR, fallback
        if fallback is not _MISSING:
            raise Unsupported(
                f"attribute {name!r} resolved through {meta.__qualname__}.__getattr__"
            )
    return kinds.AT_GENERIC, getattr(cls, name)


_THREAD_LOCAL = type(threading.local())

try:
    from torch._library.opaque_object import _resolve_opaque_type_info
except ImportError:  # a torch without opaque objects

    def _resolve_opaque_type_info(cls: Any) -> Any:
        return None


def _is_opaque(cls: type, name: str) -> bool:
    """`name` is a member of a user class registered as an opaque type with
    `torch._library.opaque_object` (symbolic or reference, not constant-like enums) that its
    registration does not expose: such members live behind custom operators. torch's own
    registered classes (generators, process groups) keep their own handling."""
    try:
        info = _resolve_opaque_type_info(cls)
    except Exception:  # noqa: BLE001 - a registry query must not fail a trace
        return False
    if info is None or getattr(info, "opaque_typ", None) == "constant":
        return False
    if str(getattr(cls, "__module__", "")).split(".")[0] == "torch":
        return False
    return name not in (getattr(info, "members", None) or {})


# list's own methods that `super().name(...)` reaches on a list subclass object: traced on
# the tracer's mirror of its contents.
_LIST_OWN = frozenset(
    ("append", "extend", "insert", "pop", "remove", "clear", "index", "count", "copy")
    + ("__len__", "__getitem__", "__setitem__", "__contains__", "__iter__")
)

_C_CALLABLES = frozenset(
    {
        types.BuiltinFunctionType,
        types.MethodDescriptorType,
        types.WrapperDescriptorType,
        types.MethodWrapperType,
        types.ClassMethodDescriptorType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        np.ufunc,
    }
)
_OBJECT_REDUCE_EX = object.__reduce_ex__
_OBJECT_EQ = object.__eq__
_OBJECT_NE = object.__ne__


def lookup_attr(obj: Any, name: str, generic: bool = False) -> tuple[int, Any]:
    """`generic`: `object.__getattribute__(obj, name)`, bypassing a class's own
    `__getattribute__` (what `super().__getattribute__(name)` inside it does)."""
    if is_a(obj, types.ModuleType):
        value = getattr(obj, name)  # AttributeError propagates to the interpreter
        at = kinds.AT_UNGUARDED if obj.__name__.split(".")[0] == "torch" else kinds.AT_GENERIC
        return at, value
    if is_a(obj, type):
        return _class_getattr(obj, name)
    cls = type(obj)
    if _is_opaque(cls, name):
        raise UnsafeScriptObjectError(
            f"reading {name!r} of {cls.__qualname__}, an opaque object type: its members "
            "cannot be traced; wrap the code that uses it in a custom operator "
            "(torch.library.custom_op) and pass the object to that"
        )
    if cls is _THREAD_LOCAL:
        # threading.local: a C lookup in the calling thread's own dict (no user code); the
        # guard reads it again through getattr on every call, in the caller's thread.
        return kinds.AT_GENERIC, getattr(obj, name)
    if cls in _C_CALLABLES:
        # A builtin function, method descriptor or method-wrapper: its own C lookup runs no
        # user code, and its attributes (`__name__`, `__self__`, ...) are read-only.
        return kinds.AT_GENERIC, getattr(obj, name)
    custom = cls.__getattribute__
    if (
        not generic
        and custom is not object.__getattribute__
        and not _generic_slot(custom)
        and not is_a(obj, torch.nn.Module)
    ):
        # A Python __getattribute__ (e.g. transformers' configs mapping attribute aliases)
        # is traced as a call; an AttributeError it raises falls back to a Python
        # __getattr__ (the interpreter does that).
        fallback = _class_lookup(cls, "__getattr__")
        if type(custom) is not types.FunctionType or (
            fallback is not _MISSING and type(fallback) is not types.FunctionType
        ):
            raise Unsupported(
                f"attribute access through a custom {cls.__qualname__}.__getattribute__"
            )
        return kinds.AT_GETATTRIBUTE, custom
    cls_attr = _class_lookup(cls, name)
    if cls_attr is not _MISSING and _is_data_descriptor(cls_attr):
        if _is_plain_property(cls_attr):
            if cls_attr.fget is None:
                raise Unsupported(f"property {cls.__qualname__}.{name} has no getter")
            if _c_getter(cls_attr.fget):
                # A C getter (pybind11's def_readwrite/def_property): read directly, no user
                # code; the value is guarded through `obj.name`.
                return kinds.AT_GENERIC, getattr(obj, name)
            return kinds.AT_PROPERTY, cls_attr.fget
        found = _python_descriptor(cls, cls_attr, name)
        if found is not None:
            return kinds.AT_DESCRIPTOR, found
        return kinds.AT_GENERIC, getattr(obj, name)
    try:
        inst_dict = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        inst_dict = None
    if inst_dict is not None and name in inst_dict:
        return kinds.AT_INSTANCE, inst_dict[name]
    if cls_attr is not _MISSING:
        if type(cls_attr) in (types.FunctionType, staticmethod, classmethod):
            return kinds.AT_CLASS, cls_attr
        if is_a(obj, dict) and dict_read_method(cls_attr, name):
            return kinds.AT_DICT_READ, name
        if cls_attr is _OBJECT_REDUCE_EX or cls_attr is _OBJECT_EQ:
            # Traced: `polyfills.object_reduce_ex`; identity for object's `__eq__`.
            return kinds.AT_CLASS, cls_attr
        if cls_attr is _OBJECT_NE and cls.__eq__ is _OBJECT_EQ:
            return kinds.AT_CLASS, cls_attr
        if hasattr(type(cls_attr), "__get__"):
            found = _python_descriptor(cls, cls_attr, name)
            if found is not None:
                return kinds.AT_DESCRIPTOR, found
            return kinds.AT_GENERIC, getattr(obj, name)
        return kinds.AT_CLASS, cls_attr
    if is_a(obj, torch.nn.Module) and inst_dict is not None:
        for key, at in (
            ("_parameters", kinds.AT_PARAMETER),
            ("_buffers", kinds.AT_BUFFER),
            ("_modules", kinds.AT_SUBMODULE),
        ):
            d = inst_dict.get(key)
            if d is not None and name in d:
                return at, d[name]
    fallback = _class_lookup(cls, "__getattr__")
    if (
        not generic
        and type(fallback) is types.FunctionType
        and inst_dict is not None
        and not is_a(obj, torch.nn.Module)
    ):
        # The generic lookup fails: CPython calls the class's Python __getattr__, traced.
        return kinds.AT_GETATTR, fallback
    if fallback is not _MISSING and not is_a(obj, torch.nn.Module) and not generic:
        raise Unsupported(f"attribute {name!r} resolved through {cls.__qualname__}.__getattr__")
    # (A generic lookup, `object.__getattribute__`, raises; the caller's slot falls back.)
    raise AttributeError(f"'{cls.__name__}' object has no attribute '{name}'")


_CONTAINER_MODULES = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)


def module_slice_keys(obj: Any, idx: Any) -> list[str] | None:
    """`obj[idx]` for a stock `nn.ModuleList` and a slice: the keys into `_modules` of the
    modules the new ModuleList holds, in order; None for anything else."""
    if (
        type(obj) is not torch.nn.ModuleList
        or type(obj).__getitem__ is not torch.nn.ModuleList.__getitem__
        or not is_a(idx, slice)
    ):
        return None
    return list(obj.__dict__["_modules"].keys())[idx]


def module_item_key(obj: Any, idx: Any) -> str | None:
    """`container[idx]` for the stock Sequential/ModuleList/ModuleDict: the key into
    `_modules` it resolves to, or None when it is something else (a slice, a subclass
    overriding __getitem__). Raises the eager IndexError/KeyError for bad indices."""
    cls = type(obj)
    if not is_a(obj, _CONTAINER_MODULES) or cls.__getitem__ not in (
        torch.nn.Sequential.__getitem__,
        torch.nn.ModuleList.__getitem__,
        torch.nn.ModuleDict.__getitem__,
    ):
        return None
    modules = obj.__dict__["_modules"]
    if is_a(obj, torch.nn.ModuleDict):
        if not is_a(idx, str):
            return None
        if idx not in modules:
            raise KeyError(idx)
        return idx
    if is_a(idx, bool) or not is_a(idx, int):
        return None
    keys = list(modules.keys())
    if not -len(keys) <= idx < len(keys):
        raise IndexError(f"index {idx} is out of range")
    return str(keys[idx])


def super_lookup(cls: type, obj: Any, name: str) -> tuple[int, Any, int]:
    """`super(cls, obj).name` without running user code: (kind, raw attribute, index in
    type(obj).__mro__ of the class defining it). kind: 0 plain function (binds to obj),
    1 staticmethod, 2 classmethod, 3 other attribute, 4 `object.__getattribute__` (the
    generic attribute lookup), 5 a read-only method of dict/OrderedDict or a mutator of
    dict (raw is its name),
    6 `object.__init__` (a no-op without arguments), 7 `object.__setattr__` (the plain
    store, past the class's own `__setattr__`), 8 `object.__delattr__` (the plain deletion),
    9 `list.__init__`/`dict.__init__` on a list/dict subclass object, 10 a method of `list`
    itself (raw is its name) on a list subclass object.
    Raises AttributeError like super."""
    mro = type(obj).__mro__ if not is_a(obj, type) else obj.__mro__
    try:
        start = mro.index(cls) + 1
    except ValueError:
        raise Unsupported("super(): the class is not in the MRO of the instance") from None
    for i in range(start, len(mro)):
        d = mro[i].__dict__
        if name in d:
            raw = d[name]
            if raw is object.__dict__["__getattribute__"]:
                return 4, raw, i  # the generic lookup: traced, bypassing the class's own
            if raw is object.__dict__["__init__"] and not is_a(obj, type):
                return 6, raw, i  # object.__init__(self): does nothing
            if raw is object.__dict__["__setattr__"] and not is_a(obj, type):
                return 7, raw, i  # object.__setattr__(self, ...): the plain store
            if raw is object.__dict__["__delattr__"] and not is_a(obj, type):
                return 8, raw, i  # object.__delattr__(self, name): the plain deletion
            if is_a(obj, dict) and name in DICT_READS and dict_read_method(raw, name):
                # dict's own read method on a dict subclass.
                return 5, name, i
            if (
                is_a(obj, dict)
                and name in DICT_WRITES
                and raw is dict.__dict__.get(name)
                and not is_a(obj, collections.OrderedDict)
            ):
                # dict's own mutator (`super().__setitem__(k, v)` in an override): traced on
                # a mirror of the object's contents, replayed with dict's own method.
                return 5, name, i
            if (
                name == "__setitem__"
                and is_a(obj, collections.OrderedDict)
                and raw is collections.OrderedDict.__dict__["__setitem__"]
            ):
                # OrderedDict's own item store (transformers' `ModelOutput.__setitem__`):
                # traced on the mirror like dict's (a new key goes last, an existing one
                # keeps its place), replayed with OrderedDict's own methods.
                return 5, name, i
            if name == "__init__" and (
                (raw is list.__dict__["__init__"] and is_a(obj, list))
                or (raw is dict.__dict__["__init__"] and is_a(obj, dict))
            ):
                return 9, raw, i  # list.__init__ / dict.__init__ on the object's contents
            if mro[i] is list and is_a(obj, list) and name in _LIST_OWN:
                return 10, name, i  # list's own method on the object's contents
            if type(raw) is types.FunctionType:
                return 0, raw, i
            if type(raw) is staticmethod:
                return 1, raw.__func__, i
            if type(raw) is classmethod:
                return 2, raw.__func__, i
            if hasattr(type(raw), "__get__"):
                raise Unsupported(f"super().{name}: a descriptor of type {type(raw).__name__}")
            return 3, raw, i
    raise AttributeError(f"'super' object has no attribute '{name}'")


def _c_getter(fget: Any) -> bool:
    """A property getter implemented in C: a builtin function, or CPython's
    `instancemethod` wrapper of one (what pybind11 puts in its properties)."""
    if type(fget) is types.BuiltinFunctionType:
        return True
    t = type(fget)
    return (
        t.__name__ == "instancemethod"
        and t.__module__ == "builtins"
        and type(getattr(fget, "__func__", None)) is types.BuiltinFunctionType
    )
