"""Which Python objects the side-effect store may track, without running user code.

`setattr_plain(obj, name)`: whether `obj.name = v` / `del obj.name` is a plain instance-dict
store (no custom `__setattr__`, no data descriptor): then the Rust store records it and
replays it after the graph; or the class's Python `__setattr__` to trace it through.
`new_object_shell(cls)`: for a user class whose instances can be created without user code
(`object.__new__`), an empty instance that stands for the new object while tracing (its
attributes live in the store, never in the shell). Anything else raises `Unsupported` (a
graph break) with the reason.
"""

from __future__ import annotations

import abc
import collections
import types
from typing import Any

import torch

from ..exc import Unsupported
from .attrs import _THREAD_LOCAL
from .typecheck import is_a

_HEAPTYPE = 1 << 9


def _class_lookup(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return None


def _is_data_descriptor(attr: Any) -> bool:
    t = type(attr)
    return hasattr(t, "__set__") or hasattr(t, "__delete__")


def _traceable_slot(cls: type, slot: str) -> bool:
    """`cls.<slot>` is object's own or a Python function (a store is traced through it)."""
    f = getattr(cls, slot)
    return f is getattr(object, slot) or type(f) is types.FunctionType


# The builtins' own `__getattribute__` slots that are the generic lookup (CPython sets
# their tp_getattro to PyObject_GenericGetAttr and lists the wrapper in their __dict__).
_GENERIC_GETATTRIBUTE = (dict.__getattribute__, list.__getattribute__)
# Builtin bases whose subclasses' instance attributes are plain instance-dict entries.
_DICT_BASES = (dict, collections.OrderedDict)


def _plain_layout(cls: type, need_dict: bool = True, need_dict_layout: bool = True) -> str | None:
    """Why instances of `cls` are not plain dict-backed objects (None: they are; a
    `__setattr__` / `__delattr__` written in Python is traced).
    `need_dict=False`: instances may keep their attributes in `__slots__` only.
    `need_dict_layout=False`: a dict/OrderedDict base is fine (attribute stores on an
    existing instance go to its `__dict__` all the same; making one is another matter)."""
    if not _traceable_slot(cls, "__setattr__"):
        return f"{cls.__qualname__} defines __setattr__ (not a Python function)"
    if not _traceable_slot(cls, "__delattr__"):
        return f"{cls.__qualname__} defines __delattr__ (not a Python function)"
    custom = cls.__getattribute__
    if (
        custom is not object.__getattribute__
        and custom not in _GENERIC_GETATTRIBUTE
        and type(custom) is not types.FunctionType
    ):
        # A Python one is traced on every read (its `super().__getattribute__` is the
        # generic lookup, which sees pending stores).
        return f"{cls.__qualname__} defines __getattribute__ (not a Python function)"
    if need_dict and cls.__dictoffset__ == 0:
        return f"{cls.__qualname__} instances have no __dict__"
    for klass in cls.__mro__:
        if klass is object or (klass in _DICT_BASES and not need_dict_layout):
            continue
        if not klass.__flags__ & _HEAPTYPE:
            return f"{cls.__qualname__} derives from the builtin {klass.__qualname__}"
        # `__slots__` in a base (ABC's and collections.abc's empty ones, or real slots) is
        # fine while instances keep a `__dict__`: a slot name is a member descriptor on the
        # class, which the per-name check refuses; every other name lives in the dict.
    if issubclass(cls, (BaseException, torch.Tensor)):
        return f"{cls.__qualname__} is an exception, module or tensor class"
    return None


def setattr_plain(obj: Any, name: str, direct: bool = False, delete: bool = False) -> Any:
    """How `obj.name = v` (`del obj.name` with `delete`) is traced: the class's Python
    `__setattr__` (`__delattr__`) to trace it through, or None for a plain instance-dict
    store (also what `direct`, i.e. `object.__setattr__(obj, name, v)`, always is), or
    "descriptor" when a data descriptor with a Python `__set__` (`__delete__`) on the class
    handles it. Raises Unsupported for anything else."""
    cls = type(obj)
    if (
        is_a(obj, type)
        and cls is type
        and obj.__flags__ & _HEAPTYPE
        and not (name.startswith("__") and name.endswith("__"))
        and not delete
    ):
        # A class attribute of a user class with the plain metaclass (type's C setattr, no
        # user code); dunders are left out (they change the class's slots).
        return None
    if cls is _THREAD_LOCAL and name not in ("__dict__", "__class__"):
        # The calling thread's namespace (C, no user code); replayed with setattr in the
        # thread that runs the compiled code.
        return None
    # A plain list/dict subclass keeps object's setattr and the builtin's generic lookup.
    plain = container_base(cls) is not None or _tuple_with_dict(cls)
    why = None if plain else _plain_layout(cls, need_dict=False, need_dict_layout=False)
    if why is not None:
        raise Unsupported(f"assignment to attribute '{name}': {why}")
    custom = cls.__delattr__ if delete else cls.__setattr__
    if not direct and type(custom) is types.FunctionType:
        return custom
    attr = _class_lookup(cls, name)
    if type(attr) is types.MemberDescriptorType:
        # A `__slots__` slot: the C descriptor stores the value (no user code); the store
        # is recorded, read back from the store while tracing, and replayed with
        # object.__setattr__ like a dict attribute.
        return None
    if attr is None and cls.__dictoffset__ == 0:
        raise Unsupported(
            f"assignment to attribute '{name}': {cls.__qualname__} instances have no __dict__"
        )
    if attr is not None and _is_data_descriptor(attr):
        hook = getattr(type(attr), "__delete__" if delete else "__set__", None)
        if type(hook) is types.FunctionType:
            # A data descriptor written in Python: `type(attr).__set__(attr, obj, v)` is
            # traced (the caller reads it off the class with guards).
            return "descriptor"
        raise Unsupported(
            f"assignment to attribute '{name}' of {cls.__qualname__}: a {type(attr).__name__} "
            "on the class handles it"
        )
    if name == "__dict__" or name == "__class__":
        raise Unsupported(f"assignment to {cls.__qualname__}.{name}")
    return None


# The slots a list or dict subclass must keep for its contents to be modelled as a plain
# list's or dict's (`rust/interp/containers.rs` mirrors them).
_CONTAINER_SLOTS = (
    "__new__",
    "__init__",
    "__getattribute__",
    "__setattr__",
    "__delattr__",
    "__len__",
    "__getitem__",
    "__setitem__",
    "__delitem__",
    "__iter__",
    "__contains__",
)


def _tuple_with_dict(cls: Any) -> bool:
    """A Python subclass of `tuple` only (a namedtuple's subclass without `__slots__`) whose
    instances have a `__dict__` and whose attribute access is the generic one: its items
    live in C, its attributes in the instance dict like any object's."""
    if not isinstance(cls, type) or type(cls) not in (type, abc.ABCMeta):
        return False
    builtin = [k for k in cls.__mro__ if k is not object and not k.__flags__ & _HEAPTYPE]
    return (
        builtin == [tuple]
        and cls.__dictoffset__ != 0
        and cls.__getattribute__ is tuple.__getattribute__
        and cls.__setattr__ is object.__setattr__
        and cls.__delattr__ is object.__delattr__
    )


def container_base(cls: Any) -> type | None:
    """`list` or `dict` when `cls` is a plain Python subclass of exactly that builtin (no
    other builtin base) whose instances take attributes and whose item access, iteration,
    construction and attribute access are the builtin's own (a Python `__init__` is fine);
    None otherwise."""
    if not isinstance(cls, type) or type(cls) not in (type, abc.ABCMeta):
        return None
    builtin = [k for k in cls.__mro__ if k is not object and not k.__flags__ & _HEAPTYPE]
    if builtin not in ([list], [dict]) or cls.__dictoffset__ == 0:
        return None
    base = builtin[0]
    for name in _CONTAINER_SLOTS:
        mine = getattr(cls, name, None)
        if mine is getattr(base, name, None):
            continue
        if name == "__init__" and type(mine) is types.FunctionType:
            continue
        return None
    return base


def fill_container_object(obj: Any, names: tuple[str, ...], contents: Any, *values: Any) -> None:
    """Rebuilds a list/dict-subclass object made in the trace (allocated with the builtin's
    `__new__`): its contents through the builtin's own C methods (no method of the subclass
    runs), then its attributes."""
    if isinstance(obj, list):
        list.extend(obj, contents)
    else:
        dict.update(obj, contents)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)


def new_object_shell(cls: type, by_new: bool = False) -> Any:
    """An empty instance of `cls` standing for an object created in the trace (`by_new`:
    allocated by a traced call of `object.__new__(cls)`, so a user `__new__` is fine). A
    list or dict subclass (`container_base`) is allocated by the builtin's `__new__`; its
    contents are modelled by the tracer."""
    if not cls.__flags__ & _HEAPTYPE:
        raise Unsupported(f"constructing the builtin type {cls.__qualname__}")
    base = container_base(cls)
    if base is not None and not by_new:
        if _class_lookup(cls, "__del__") is not None:
            raise Unsupported(f"constructing {cls.__qualname__}: it defines __del__")
        return base.__new__(cls)
    if type(cls) not in (type, abc.ABCMeta):
        raise Unsupported(f"constructing {cls.__qualname__}: it has a custom metaclass")
    # Instances may keep their attributes in `__slots__` only (pytree's TreeSpec): a store
    # to a name without a slot then breaks on its own (`setattr_plain`).
    why = _plain_layout(cls, need_dict=False)
    if why is not None:
        raise Unsupported(f"constructing {cls.__qualname__}: {why}")
    if not by_new and cls.__new__ is not object.__new__:
        raise Unsupported(f"constructing {cls.__qualname__}: it defines __new__")
    init = cls.__init__
    if init is not object.__init__ and type(init) is not types.FunctionType:
        raise Unsupported(f"constructing {cls.__qualname__}: its __init__ is not a Python function")
    if _class_lookup(cls, "__del__") is not None:
        raise Unsupported(f"constructing {cls.__qualname__}: it defines __del__")
    if getattr(cls, "__abstractmethods__", None):
        raise Unsupported(f"constructing {cls.__qualname__}: it is abstract")
    return object.__new__(cls)
