"""Tensor subclasses in the trace: which ones ferrodyn traces as tensors, which of them run
their `__torch_function__` for torch calls, and what an attribute of one is.

A subclass of `torch.Tensor` without its own `__torch_dispatch__` (and not a wrapper
subclass) is a tensor to the graph; its Python type is kept on the `TensorVar`. Unless its
`__torch_function__` is torch's disabled implementation (as `nn.Parameter`'s is), every torch
call that receives one is routed, as eager does, through `type.__torch_function__(func,
types, args, kwargs)`, which the interpreter traces (`rust/interp/tensor_subclass.rs`).
"""

from __future__ import annotations

import types
from typing import Any

import torch

_C = torch._C
# Types the graph has always treated as plain tensors.
_PLAIN: frozenset[type] = frozenset({torch.Tensor, torch.nn.Parameter})

# What an attribute of a tensor-subclass instance is (`member`):
MISSING = 0  # found nowhere on the class
FUNCTION = 1  # a Python function defined by the subclass: a method of the instance
PROPERTY = 2  # a property defined by the subclass: obj is its getter
GETTER = 3  # a C attribute of torch.Tensor (shape, dtype, grad, ...): obj is its `__get__`
TENSOR_METHOD = 4  # a method of torch.Tensor: obj is `getattr(torch.Tensor, name)`
OTHER = 5  # anything else the subclass defines (classmethod, data, a descriptor)


def is_traced_subclass(t: type) -> bool:
    """A tensor subclass traced as a tensor: no `__torch_dispatch__` of its own (those
    compute in Python below the dispatcher) and no wrapper-subclass protocol."""
    if t in _PLAIN or not issubclass(t, torch.Tensor):
        return False
    if getattr(t, "__torch_dispatch__", None) is not _C._disabled_torch_dispatch_impl:
        return False
    return not hasattr(t, "__tensor_flatten__")


def dispatches(t: type) -> bool:
    """Whether torch calls on instances of `t` go through `t.__torch_function__`."""
    if t in _PLAIN:
        return False
    tf = getattr(t, "__torch_function__", None)
    return getattr(tf, "__func__", tf) is not _C._disabled_torch_function_impl


def member(t: type, name: str, after: type | None = None) -> tuple[int, Any]:
    """What `instance.name` is for an instance of the subclass `t` (see the codes above),
    found by the class's MRO without running anything; `after`: what `super(after,
    instance).name` is (the search starts past `after`)."""
    mro = t.__mro__
    if after is not None:
        mro = mro[mro.index(after) + 1 :] if after in mro else ()
    for klass in mro:
        if klass is torch.Tensor or klass is _C.TensorBase:
            break
        raw = klass.__dict__.get(name, _NOTHING)
        if raw is _NOTHING:
            continue
        if type(raw) is types.FunctionType:
            return FUNCTION, raw
        if type(raw) is property and raw.fset is None and raw.fdel is None and raw.fget:
            return PROPERTY, raw.fget
        return OTHER, raw
    raw = _lookup(torch.Tensor, name)
    if raw is _NOTHING:
        return MISSING, None
    if type(raw) is types.GetSetDescriptorType or type(raw) is types.MemberDescriptorType:
        return GETTER, raw.__get__
    if callable(raw) and not isinstance(raw, (classmethod, staticmethod, type)):
        return TENSOR_METHOD, getattr(torch.Tensor, name)
    return OTHER, raw


def is_tensor_method(fn: types.FunctionType) -> bool:
    """A Python method of torch.Tensor (`Tensor.__rsub__`, `Tensor.split`): called on a
    tensor, a graph call, as its C methods are."""
    return (
        fn.__module__ == "torch._tensor"
        and fn.__name__ not in _NOT_GRAPH_METHODS
        and getattr(torch.Tensor, fn.__name__, None) is fn
    )


def tensor_method_name(target: Any) -> str | None:
    """The name of a method of torch.Tensor called as a function (`torch.Tensor.add`,
    `Tensor.__getitem__`, `Tensor.__rsub__`), or None."""
    t = type(target)
    if t is types.MethodDescriptorType or t is types.WrapperDescriptorType:
        return str(target.__name__) if target.__objclass__ is _C.TensorBase else None
    if t is types.FunctionType and is_tensor_method(target):
        return str(target.__name__)
    return None


def instance_attr(obj: Any, name: str) -> tuple[bool, Any]:
    """(True, value) when `name` is in the instance's own `__dict__` (read without running
    any of its code), else (False, None)."""
    d = object.__getattribute__(obj, "__dict__")
    if name in d:
        return True, d[name]
    return False, None


def getter_name(func: Any) -> str | None:
    """The attribute a torch.Tensor descriptor's `__get__` reads (the `func` a subclass's
    `__torch_function__` receives for `t.shape`), or None."""
    if type(func) is not types.MethodWrapperType:
        return None
    owner = func.__self__
    if (
        func.__name__ == "__get__"
        and type(owner) in (types.GetSetDescriptorType, types.MemberDescriptorType)
        and _lookup(torch.Tensor, owner.__name__) is owner
    ):
        return str(owner.__name__)
    return None


def no_wrap(func: Any) -> bool:
    """Functions whose results `torch.Tensor.__torch_function__` returns as they are."""
    try:
        return func in torch.overrides.get_default_nowrap_functions()
    except TypeError:  # unhashable
        return False


def torch_function_enabled() -> bool:
    """Subclass `__torch_function__` dispatch is on (no DisableTorchFunction(Subclass))."""
    return bool(_C._is_torch_function_enabled())


def plain_alias(tensor: torch.Tensor) -> torch.Tensor:
    """The same data as a plain `torch.Tensor` (for fake tensors and the backend)."""
    with _C.DisableTorchFunctionSubclass():
        return torch.Tensor.as_subclass(tensor, torch.Tensor)


_NOTHING = object()
# Python methods of torch.Tensor that are not computations of the graph (autograd, hooks,
# storage, printing, pickling, conversion out of torch): traced or broken on as functions.
_NOT_GRAPH_METHODS = frozenset(
    {
        "backward",
        "register_hook",
        "register_post_accumulate_grad_hook",
        "reinforce",
        "__deepcopy__",
        "__reduce_ex__",
        "__setstate__",
        "__repr__",
        "__format__",
        "__iter__",
        "__hash__",
        "__dir__",
        "__array__",
        "__array_wrap__",
        "__dlpack__",
        "__dlpack_device__",
        "storage",
        "_typed_storage",
        "storage_type",
        "share_memory_",
        "is_shared",
        "module_load",
        "rename_",
        "rename",
        "refine_names",
        "align_to",
        "_update_names",
    }
)


def _lookup(t: type, name: str) -> Any:
    for klass in t.__mro__:
        raw = klass.__dict__.get(name, _NOTHING)
        if raw is not _NOTHING:
            return raw
    return _NOTHING


# -- what eager passes to __torch_function__ for an operator ----------------------------------
class _Stop(Exception):
    pass


class _Probe(torch.Tensor):
    """Records the first `__torch_function__` call an operation makes, and stops it."""

    seen: list[tuple[Any, tuple[Any, ...]]] = []  # noqa: RUF012

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        cls.seen.append((func, tuple(args)))
        raise _Stop


_OTHER = 3
_operator_cache: dict[tuple[Any, bool, int], tuple[Any, tuple[int, ...]] | None] = {}


def eager_operator(
    target: Any, tensor_first: bool, nargs: int
) -> tuple[Any, tuple[int, ...]] | None:
    """For `target(*args)` (an `operator` function, `len`, `abs`, ...) with a subclass
    tensor first (`tensor_first`) or second among `nargs` arguments: the `func` eager hands
    `__torch_function__` and the positions of the call's arguments in that call's `args`
    (`2 - t` is `Tensor.__rsub__(t, 2)`: (1, 0)). Found by running the operation once on a
    recording subclass; None when it does not reach `__torch_function__`."""
    key = (target, tensor_first, nargs)
    if key in _operator_cache:
        return _operator_cache[key]
    probe = torch.zeros(2).as_subclass(_Probe)
    if nargs == 1:
        args: tuple[Any, ...] = (probe,)
    elif nargs == 2:
        args = (probe, _OTHER) if tensor_first else (_OTHER, probe)
    elif nargs == 3 and tensor_first:
        args = (probe, 0, _OTHER)
    else:
        args = ()
    found: tuple[Any, tuple[int, ...]] | None = None
    if args:
        _Probe.seen.clear()
        try:
            target(*args)
        except _Stop:
            pass
        except Exception:  # noqa: BLE001 - not an operation on tensors: no answer
            _Probe.seen.clear()
        if _Probe.seen:
            func, got = _Probe.seen[0]
            order = [next((i for i, a in enumerate(args) if a is g), -1) for g in got]
            if -1 not in order:
                found = (func, tuple(order))
        _Probe.seen.clear()
    _operator_cache[key] = found
    return found
