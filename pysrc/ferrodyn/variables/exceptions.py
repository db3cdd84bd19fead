"""Exception classes the Rust interpreter can model (`rust/interp/exceptions.rs`).

`exception_class_info(cls)`: for an exception class whose instances can be modelled
without running user code except a Python `__init__`: `(solid_base, is_user_class,
python_init_or_None)`. Anything else raises `Unsupported` (a graph break) with the reason.
`alloc_exception` / `fill_exception` rebuild an exception that escapes the graph.
"""

from __future__ import annotations

import types
from typing import Any

from ..exc import Unsupported
from .mutation import _class_lookup, _is_data_descriptor
from .typecheck import is_a

_HEAPTYPE = 1 << 9

# Builtin exception classes whose instances hold nothing but `args` (plus the cause,
# context and traceback every exception has). StopIteration's `value` is `args[0]`;
# AttributeError's `name`/`obj` are kept as attributes.
MODELLED = frozenset(
    {
        BaseException,
        Exception,
        ArithmeticError,
        AssertionError,
        AttributeError,
        IndexError,
        KeyError,
        LookupError,
        NotImplementedError,
        OverflowError,
        RuntimeError,
        StopIteration,
        TypeError,
        ValueError,
        ZeroDivisionError,
    }
)

# Errors raised by real constant folding that may become observed exceptions (their
# instances carry nothing beyond `args`).
FOLDABLE = MODELLED - {AttributeError, StopIteration}

# Class-level hooks the model does not run (attribute access, truth value, equality).
_UNMODELLED_DUNDERS = (
    "__new__",
    "__setattr__",
    "__delattr__",
    "__getattribute__",
    "__getattr__",
    "__bool__",
    "__len__",
    "__eq__",
    "__ne__",
    "__hash__",
)


def exception_class_info(cls: Any) -> tuple[type, bool, Any]:
    if not is_a(cls, type) or not issubclass(cls, BaseException):
        raise Unsupported(f"{cls!r} is not an exception class")
    if type(cls) is not type:
        raise Unsupported(f"exception class {cls.__qualname__} has a custom metaclass")
    solid = next(k for k in cls.__mro__ if not k.__flags__ & _HEAPTYPE)
    if solid not in MODELLED:
        raise Unsupported(f"exceptions of type {solid.__qualname__} are not modelled")
    user = cls is not solid
    if user:
        for klass in cls.__mro__:
            if klass is solid:
                break
            if not klass.__flags__ & _HEAPTYPE or klass.__bases__ == ():
                raise Unsupported(f"exception class {cls.__qualname__} has a builtin mixin")
            if "__slots__" in klass.__dict__:
                raise Unsupported(f"exception class {klass.__qualname__} defines __slots__")
            for name in _UNMODELLED_DUNDERS:
                if name in klass.__dict__:
                    raise Unsupported(f"exception class {klass.__qualname__} defines {name}")
        if len([k for k in cls.__mro__ if not k.__flags__ & _HEAPTYPE]) != len(solid.__mro__):
            raise Unsupported(f"exception class {cls.__qualname__} has several builtin bases")
    init = _class_lookup(cls, "__init__")
    if type(init) is types.FunctionType:
        return solid, user, init
    if init is not solid.__init__ and init is not _class_lookup(solid, "__init__"):
        raise Unsupported(f"{cls.__qualname__}.__init__ is not a Python function")
    return solid, user, None


def is_builtin_init(obj: Any) -> bool:
    """Whether `obj` is the `__init__` slot of a modelled builtin exception class."""
    owner = getattr(obj, "__objclass__", None)
    return (
        type(obj).__name__ == "wrapper_descriptor"
        and getattr(obj, "__name__", None) == "__init__"
        and owner in MODELLED
    )


def plain_store(cls: type, name: str) -> bool:
    """Whether `exc.name = v` on an instance of the user exception class `cls` is a plain
    instance-dict store."""
    if name in ("__dict__", "__class__", "args", "__cause__", "__context__"):
        return False
    attr = _class_lookup(cls, name)
    return attr is None or not _is_data_descriptor(attr)


def class_attr(cls: type, name: str) -> tuple[int, Any]:
    """How `exc.name` resolves on the class (for names the instance does not hold):
    (0, function) a Python method, (1, value) a constant class attribute, (2, None) not
    modelled."""
    attr = _class_lookup(cls, name)
    owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
    if attr is None or owner is None or not owner.__flags__ & _HEAPTYPE:
        return 2, None
    if type(attr) is types.FunctionType:
        return 0, attr
    if type(attr) in (int, float, str, bool, type(None)):
        return 1, attr
    return 2, None


def alloc_exception(cls: type) -> BaseException:
    return cls.__new__(cls)


def fill_exception(
    exc: BaseException,
    solid: type,
    args: tuple[Any, ...],
    attrs: dict[str, Any],
    cause: BaseException | None,
    context: BaseException | None,
    suppress: bool,
) -> None:
    solid.__init__(exc, *args)
    exc.args = args
    for k, v in attrs.items():
        setattr(exc, k, v)
    exc.__cause__ = cause
    exc.__context__ = context
    exc.__suppress_context__ = suppress
