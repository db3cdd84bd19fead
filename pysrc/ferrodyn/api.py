"""The public entry points: `compile` and `reset`.

`compile` validates its arguments eagerly, resolves the backend, and wraps the target:

* a Python function → a `_core.CompiledCode` (a thin Python subclass of it, so that it binds
  like a method when stored on a class), with the function's name and docstring copied on;
* an `nn.Module` `m` → an `OptimizedModule`: an instance of a per-class subclass
  `Compiled<Cls>(OptimizedModule, type(m))` that shares `m.__dict__`, so parameters, buffers,
  submodules, `training` and `state_dict()` keys are exactly `m`'s; calling it runs
  `CompiledCode(type(m).forward)(m, *args, **kwargs)`;
* a bound method, `functools.partial` or callable object → its underlying Python function is
  compiled and re-bound.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch.nn.modules import module as _nn_module

from . import _core, config, polyfills
from .backends import Backend, DynamicBackend, resolve
from .exc import UnsupportedPythonWarning

__all__ = ["OptimizedModule", "compile", "reset"]

F = TypeVar("F", bound=Callable[..., Any])

SUPPORTED_PYTHON = ((3, 11), (3, 12), (3, 13))
_warned: set[str] = set()

# Guards read tensor metadata natively once this has run (see DESIGN.md §4); idempotent.
if hasattr(_core, "init_torch"):
    _core.init_torch()


def _warn_once(key: str, msg: str, category: type[Warning]) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, category, stacklevel=3)  # the caller of compile()


# --------------------------------------------------------------------------------------------
# Functions


def _make_compiled_function_class() -> type:
    """CompiledCode plus `__get__`, so a compiled function stored on a class binds `self`.

    The subclass adds no `__call__`: calls go straight to the Rust slot."""
    base = _core.CompiledCode
    if hasattr(base, "__get__"):
        return base

    # No __slots__: the subclass gets a __dict__ even if the base has none.
    class CompiledFunction(base):  # type: ignore[misc, valid-type]
        def __get__(self, obj: object, objtype: type | None = None) -> Any:
            if obj is None:
                return self
            return types.MethodType(self, obj)

    CompiledFunction.__module__ = __name__
    CompiledFunction.__qualname__ = "CompiledFunction"
    return CompiledFunction


_CompiledFunction: type | None = None


def _compile_function(
    fn: types.FunctionType, backend: Backend, fullgraph: bool
) -> _core.CompiledCode:
    global _CompiledFunction
    if _CompiledFunction is None:
        _CompiledFunction = _make_compiled_function_class()
    cc = _CompiledFunction(fn, backend, fullgraph=fullgraph, recompile_limit=config.recompile_limit)
    functools.update_wrapper(cc, fn)
    return cc


def _eager_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def eager(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return eager


# --------------------------------------------------------------------------------------------
# Modules

_gfh = _nn_module._global_forward_hooks
_gfph = _nn_module._global_forward_pre_hooks
_gbh = _nn_module._global_backward_hooks
_gbph = _nn_module._global_backward_pre_hooks


class OptimizedModule(torch.nn.Module):
    """Base class of the wrappers `ferrodyn.compile(module)` returns.

    A wrapper `w` of module `m` is an instance of `Compiled<type(m).__name__>`, a subclass of
    both this class and `type(m)`, whose `__dict__` *is* `m.__dict__`: every attribute,
    parameter, buffer, submodule and hook is `m`'s. Only the slots below are the wrapper's own.
    `w(*args)` runs the compiled `forward`; `w.forward(*args)` runs the original eagerly.
    """

    # Kept outside the shared __dict__ so that nothing leaks onto the original module.
    # _ferrodyn_state = (m, m.__dict__, compiled forward, the Python function it compiles,
    # compiled `_call_impl` for modules with forward hooks); one tuple because each attribute
    # read on an nn.Module costs ~25 ns.
    __slots__ = ("_ferrodyn_backend", "_ferrodyn_state")

    _ferrodyn_state: tuple[
        torch.nn.Module, dict[str, Any], Callable[..., Any], Any, Callable[..., Any] | None
    ]
    _ferrodyn_backend: str

    @property
    def _orig_mod(self) -> torch.nn.Module:
        return self._ferrodyn_state[0]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        m, d, compiled, fn, hooked = self._ferrodyn_state
        if (
            d["_forward_hooks"]
            or d["_forward_pre_hooks"]
            or d["_backward_hooks"]
            or d["_backward_pre_hooks"]
            or _gfh
            or _gfph
            or _gbh
            or _gbph
            or "forward" in d
            or type(m).forward is not fn
        ):
            # Forward hooks and pre-hooks: `_call_impl` is compiled (hooks traced with the
            # forward, as torch.compile does). Backward or global hooks, or a forward replaced
            # since compile: the original, eagerly.
            if (
                hooked is not None
                and not (d["_backward_hooks"] or d["_backward_pre_hooks"])
                and not (_gfh or _gfph or _gbh or _gbph)
                and "forward" not in d
                and type(m).forward is fn
            ):
                return hooked(m, *args, **kwargs)
            return m(*args, **kwargs)
        return compiled(m, *args, **kwargs)

    def __repr__(self) -> str:
        return f"ferrodyn.compile({self._orig_mod!r}, backend={self._ferrodyn_backend!r})"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "a ferrodyn-compiled module cannot be pickled or deep-copied; "
            "use its ._orig_mod (or state_dict()) instead"
        )


_wrapper_classes: dict[type, type] = {}


def _wrapper_class(cls: type) -> type:
    """`Compiled<Cls>(OptimizedModule, cls)`, created once per module class."""
    wrapper = _wrapper_classes.get(cls)
    if wrapper is None:
        if issubclass(cls, OptimizedModule):
            return cls
        ns = {"__slots__": (), "__module__": cls.__module__, "__doc__": cls.__doc__}
        try:
            wrapper = types.new_class(
                f"Compiled{cls.__name__}", (OptimizedModule, cls), {}, lambda d: d.update(ns)
            )
            wrapper.__qualname__ = f"Compiled{cls.__qualname__}"
        except TypeError:
            # A class that can't be subclassed (odd metaclass or layout): the wrapper still
            # works, but isinstance(w, cls) is False.
            wrapper = OptimizedModule
        _wrapper_classes[cls] = wrapper
    return wrapper


def _forward_function(m: torch.nn.Module) -> types.FunctionType | None:
    """The Python function behind `type(m).forward`, or None when there is none to trace."""
    if type(m).__call__ is not torch.nn.Module.__call__:
        return None  # a custom __call__: calling m does not mean calling forward
    fwd = type(m).forward
    if isinstance(fwd, types.FunctionType) and fwd is not torch.nn.Module.forward:
        return fwd
    return None


def _eager_module_call(m: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
    return m(*args, **kwargs)


# The compiled forward of each module class, per backend: compiling several modules of one
# class (the layers of a model, one by one) shares one cache, as torch.compile's cache lives
# on the code object. Modules are matched by class, so the graph traced for one layer serves
# its siblings. Weak values: the cache goes with the last wrapper that uses it.
_shared_forwards: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()
# Non-zero while `compile` must make a cache of its own (`ferrodyn.explain`).
_unshared_depth = 0


@contextlib.contextmanager
def unshared() -> Iterator[None]:
    """Within: `compile` gives every module a cache of its own (no sharing by class)."""
    global _unshared_depth
    _unshared_depth += 1
    try:
        yield
    finally:
        _unshared_depth -= 1


def _shared_compile(
    fn: types.FunctionType, backend: Backend, fullgraph: bool, backend_key: tuple[Any, ...] | None
) -> Callable[..., Any]:
    """`fn` compiled, shared with other compiles of it with the same backend spec."""
    key = None
    if backend_key is not None and not _unshared_depth:
        key = (fn, backend_key, fullgraph, config.recompile_limit)
    shared = _shared_forwards.get(key) if key is not None else None
    if shared is None:
        shared = _compile_function(fn, backend, fullgraph)
        if key is not None:
            _shared_forwards[key] = shared
    return shared


def _wrap_module(
    m: torch.nn.Module,
    backend: Backend | None,
    fullgraph: bool,
    backend_name: str,
    backend_key: tuple[Any, ...] | None = None,
) -> OptimizedModule:
    fwd = _forward_function(m)
    if fwd is None and backend is not None:
        cls = type(m)
        if cls.__call__ is not torch.nn.Module.__call__:
            why = "its class defines its own __call__"
        elif cls.forward is torch.nn.Module.forward:
            why = "it defines no forward"
        else:
            why = f"its forward is {cls.forward!r}, not a Python function"
        raise TypeError(
            f"ferrodyn.compile: cannot compile module of type {cls.__qualname__}: {why}; "
            "expected an nn.Module whose forward is a Python function"
        )
    compiled: Callable[..., Any] = _eager_module_call
    hooked: Callable[..., Any] | None = None
    if backend is not None and fwd is not None:
        compiled = _shared_compile(fwd, backend, fullgraph, backend_key)
        hooked = _shared_compile(polyfills.module_call_with_hooks, backend, fullgraph, backend_key)
    w: OptimizedModule = object.__new__(_wrapper_class(type(m)))
    object.__setattr__(w, "__dict__", m.__dict__)
    object.__setattr__(w, "_ferrodyn_state", (m, m.__dict__, compiled, type(m).forward, hooked))
    object.__setattr__(w, "_ferrodyn_backend", backend_name)
    return w


# --------------------------------------------------------------------------------------------
# Other callables


def _compile_callable(obj: Any, backend: Backend, fullgraph: bool) -> Callable[..., Any]:
    if isinstance(obj, types.MethodType):
        func = obj.__func__
        if isinstance(func, types.FunctionType):
            return types.MethodType(_compile_function(func, backend, fullgraph), obj.__self__)
        what = f"a bound method whose function is {func!r}"
    elif isinstance(obj, functools.partial):
        inner = _compile_any(obj.func, backend, fullgraph)
        return functools.partial(inner, *obj.args, **obj.keywords)
    elif isinstance(obj, type):
        what = f"the class {obj.__qualname__}"
    elif isinstance(obj, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        what = f"the built-in {obj!r} (it has no Python bytecode to trace)"
    else:
        call = next(
            (k.__dict__["__call__"] for k in type(obj).__mro__ if "__call__" in k.__dict__), None
        )
        if isinstance(call, types.FunctionType):
            return types.MethodType(_compile_function(call, backend, fullgraph), obj)
        what = f"{type(obj).__qualname__} object whose __call__ is {call!r}"
    raise TypeError(
        f"ferrodyn.compile: cannot compile {what}; expected a Python function, an nn.Module, "
        "or a callable whose underlying function (bound method, functools.partial, "
        "__call__) is written in Python"
    )


def _compile_any(obj: Any, backend: Backend, fullgraph: bool) -> Callable[..., Any]:
    if isinstance(obj, _core.CompiledCode):
        obj = obj.fn  # re-compiling a compiled function: start from the original
    if isinstance(obj, types.FunctionType):
        return _compile_function(obj, backend, fullgraph)
    return _compile_callable(obj, backend, fullgraph)


# --------------------------------------------------------------------------------------------
# Public API


def _backend_name(backend: Any) -> str:
    if isinstance(backend, str):
        return backend
    return getattr(backend, "__name__", None) or type(backend).__name__


def _backend_key(
    backend: Any, mode: str | None, options: dict[str, Any] | None, dynamic: bool | None
) -> tuple[Any, ...] | None:
    """What identifies a backend across `compile` calls (None: nothing safe to share on)."""
    try:
        opts = None if options is None else tuple(sorted(options.items()))
        key = (backend, mode, opts, dynamic)
        hash(key)
    except TypeError:
        return None
    return key


def compile(
    fn_or_module: Any = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: Any = "inductor",
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    disable: bool = False,
) -> Any:
    """Compile a function or `nn.Module` with ferrodyn; same contract as `torch.compile`.

    Usable as `compile(f)`, `@compile` or `@compile(backend="eager", ...)`.

    fullgraph: raise `ferrodyn.exc.Unsupported` at a graph break instead of running the
        frame eagerly.
    dynamic: None (default) is automatic dynamic shapes: a dimension whose size changes
        between traces becomes symbolic; True makes every input dimension symbolic from the
        first trace; False specialises every size (see `ferrodyn.dynamic_shapes`).
    backend: "inductor" (default), "eager", "aot_eager", any torch.compile backend name, or a
        callable `(gm, example_inputs) -> callable`.
    mode / options: passed to inductor (`mode` is one of torch.compile's modes).
    disable: return `fn_or_module` unchanged.
    """
    if not isinstance(fullgraph, bool):
        raise TypeError(f"ferrodyn.compile: fullgraph= must be a bool, got {fullgraph!r}")
    if dynamic is not None and not isinstance(dynamic, bool):
        raise TypeError(f"ferrodyn.compile: dynamic= must be None, True or False, got {dynamic!r}")
    if not isinstance(disable, bool):
        raise TypeError(f"ferrodyn.compile: disable= must be a bool, got {disable!r}")
    compiler = resolve(backend, mode, options)

    if fn_or_module is None:

        def decorator(fn: F) -> F:
            return compile(  # type: ignore[no-any-return]
                fn,
                fullgraph=fullgraph,
                dynamic=dynamic,
                backend=backend,
                mode=mode,
                options=options,
                disable=disable,
            )

        return decorator

    if not callable(fn_or_module):
        raise TypeError(
            "ferrodyn.compile: expected a function, an nn.Module or another callable, got "
            f"{type(fn_or_module).__qualname__} object {fn_or_module!r:.80}"
        )
    if disable:
        return fn_or_module
    if dynamic is not None:
        compiler = DynamicBackend(compiler, dynamic)

    if isinstance(fn_or_module, OptimizedModule):
        fn_or_module = fn_or_module._orig_mod

    if sys.version_info[:2] not in SUPPORTED_PYTHON:
        _warn_once(
            "python",
            "ferrodyn supports CPython 3.11, 3.12 and 3.13 bytecode "
            f"only; this is {sys.version_info[0]}.{sys.version_info[1]}, so compiled "
            "functions and modules run eagerly",
            UnsupportedPythonWarning,
        )
        if isinstance(fn_or_module, torch.nn.Module):
            return _wrap_module(fn_or_module, None, fullgraph, _backend_name(backend))
        return _eager_function(fn_or_module)

    if isinstance(fn_or_module, torch.nn.Module):
        return _wrap_module(
            fn_or_module,
            compiler,
            fullgraph,
            _backend_name(backend),
            _backend_key(backend, mode, options, dynamic),
        )
    return _compile_any(fn_or_module, compiler, fullgraph)


def reset() -> None:
    """Forget every compiled graph and cached trace (like `torch._dynamo.reset()`).

    Compiled functions and modules stay usable; their next call traces again. Every cache
    entry, graph, guard tree, resume function and compiled callee wrapper ferrodyn made is
    released now (not at the next call)."""
    from . import _glue

    _glue._wrappers.clear()
    _core.reset()
