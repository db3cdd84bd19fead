"""Small runtime objects used by graph-break glue code."""

from __future__ import annotations

import types
import weakref
from typing import Any

import torch


class GradModeExit:
    """The bound `__exit__` of a grad-mode context manager entered inside a graph: calling
    it restores the grad mode that was active before the `with`."""

    __slots__ = ("prev",)

    def __init__(self, prev: bool) -> None:
        self.prev = prev

    def __call__(self, *exc_info: object) -> None:
        torch._C._set_grad_enabled(self.prev)


class ErrorOnBreakExit:
    """The bound `__exit__` of a `torch._dynamo.error_on_graph_break(flag)` block entered
    while tracing: leaving the block restores `prev` (the setting outside it) in the tracer;
    `current` is the block's own setting, for a resume function that starts inside it. Run
    natively (a graph break inside the block) it does nothing: the setting only matters
    while tracing."""

    __slots__ = ("current", "prev")

    def __init__(self, prev: bool, current: bool) -> None:
        self.prev = prev
        self.current = current

    def __call__(self, *exc_info: object) -> None:
        return None


def advanced_iter(seq: Any, n: int) -> Any:
    """`iter(seq)` advanced past its first `n` items (a loop over a ModuleList slice
    resumed after a graph break in its body)."""
    it = iter(seq)
    for _ in range(n):
        next(it)
    return it


_QUALIFIED: dict[str, type] = {"object": object}


def with_attrs(obj: Any, names: tuple[str, ...], values: tuple[Any, ...]) -> Any:
    """`obj` after `object.__setattr__` of each name (a namedtuple made in the trace whose
    instance dict the trace filled)."""
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


def builtin_method(obj: Any, name: str) -> Any:
    """`obj.name` for a builtin (C) method the trace read on a user object: the first
    definition in the MRO that is not a Python function. Where the class overrides the
    method in Python, the trace reached the C method through `super()`, and plain
    `getattr` would call the override again. A qualified name (`object.__setattr__`, what
    `super().__setattr__` resolves to where no base defines one) is that class's method
    bound to `obj`."""
    owner, dot, attr = name.rpartition(".")
    if dot:
        raw = _QUALIFIED[owner].__dict__[attr]
        return raw.__get__(obj, type(obj))
    for klass in type(obj).__mro__:
        raw = klass.__dict__.get(name)
        if raw is None or isinstance(raw, (types.FunctionType, staticmethod, classmethod)):
            continue
        get = getattr(type(raw), "__get__", None)
        return get(raw, obj, type(obj)) if get is not None else raw
    return getattr(obj, name)


_wrappers: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()

_module_hooks = torch.nn.modules.module


def _plain_forward(m: torch.nn.Module) -> Any:
    """`m.forward` when calling `m` means exactly calling it (the stock `__call__`, no
    hooks on `m` or globally, no forward on the instance); None otherwise."""
    d = m.__dict__
    if (
        type(m).__call__ is not torch.nn.Module.__call__
        or "forward" in d
        or d.get("_forward_hooks")
        or d.get("_forward_pre_hooks")
        or d.get("_backward_hooks")
        or d.get("_backward_pre_hooks")
        or _module_hooks._global_forward_hooks
        or _module_hooks._global_forward_pre_hooks
        or _module_hooks._global_backward_hooks
        or _module_hooks._global_backward_pre_hooks
    ):
        return None
    forward = type(m).forward
    if type(forward) is not types.FunctionType:
        return None
    return types.MethodType(forward, m)


def compiled_callee(fn: Any, compiler: Any, recompile_limit: int) -> Any:
    """What glue calls in place of a user function whose inlining hit a graph break: a
    compiled wrapper of it (cached per function and backend), so the callee's own frame is
    split at its break instead of running eagerly. Anything else is returned unchanged."""
    if isinstance(fn, torch.nn.Module):
        # A submodule call that broke: without hooks, `m(*a)` is `m.forward(*a)`, which is
        # compiled in its own frame (with hooks, __call__ runs eagerly as before).
        forward = _plain_forward(fn)
        if forward is None:
            return fn
        return compiled_callee(forward, compiler, recompile_limit)
    if isinstance(fn, types.MethodType) and type(fn.__func__) is types.FunctionType:
        return types.MethodType(
            compiled_callee(fn.__func__, compiler, recompile_limit), fn.__self__
        )
    if type(fn) is not types.FunctionType:
        return fn
    key = _shareable_key(fn, compiler)
    if key is not None:
        shared = _by_code.get(key)
        if shared is not None and shared.fn.__globals__ is fn.__globals__:
            return shared if shared.fn is fn else shared.for_function(fn)
    per_fn = _wrappers.get(fn)
    if per_fn is None:
        per_fn = {}
        _wrappers[fn] = per_fn
    cc = per_fn.get(id(compiler))
    if cc is None:
        from . import _core

        cc = _core.CompiledCode(fn, compiler, fullgraph=False, recompile_limit=recompile_limit)
        per_fn[id(compiler)] = cc
        if key is not None:
            _by_code[key] = cc
    return cc


# One compiled code per code object and backend, shared by the function objects of that
# code (a comprehension or nested function is a new object on each call of its parent, and
# must not recompile each time): each call gets a view with its own closure and defaults
# over the shared cache (`CompiledCode.for_function`). Not for code using `__class__`
# (zero-argument super()), whose continuations keep the closure.
_by_code: weakref.WeakValueDictionary[tuple[Any, int], Any] = weakref.WeakValueDictionary()


def _shareable_key(fn: types.FunctionType, compiler: Any) -> tuple[Any, int] | None:
    if "__class__" in fn.__code__.co_freevars:
        return None
    return (fn.__code__, id(compiler))
