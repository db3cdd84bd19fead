"""Process-wide settings. Change them by assignment: `ferrodyn.config.recompile_limit = 4`,
or for a block / a function only: `with ferrodyn.config.patch(suppress_errors=True): ...`.

Names and values are checked when set: a misspelt name raises AttributeError naming the
closest settings, a value of the wrong type or range raises TypeError / ValueError. Reads
are plain module attribute reads (the Rust core reads `strict` and `max_inline_depth` with
getattr on every compile; `recompile_limit` is read by `ferrodyn.compile`).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

# Compiles per code object before ferrodyn stops recompiling and runs new inputs eagerly.
# Read when `ferrodyn.compile` is called: a change affects functions compiled afterwards.
recompile_limit: int = 8
# Raise internal errors instead of falling back to eager (for ferrodyn's own debugging).
strict: bool = False
# Upper bound on inlining depth of user functions; deeper calls break the graph.
max_inline_depth: int = 64
# As torch._dynamo.config.suppress_errors: when a backend fails to compile a graph, warn
# once (exc.BackendCompilerFailedWarning) and run that frame eagerly instead of raising
# exc.BackendCompilerFailed. Also on when torch._dynamo.config.suppress_errors is.
suppress_errors: bool = False
# As torch._dynamo.config.capture_scalar_outputs: trace `Tensor.item()` and similar into the
# graph as unbacked scalars instead of breaking the graph. Accepted; ferrodyn does not act
# on it yet (data-dependent scalars still break the graph).
capture_scalar_outputs: bool = False
# While a compiled callable runs user code natively (a frame it gave up on, the breaking
# step of a split), offer the frames that code starts to the tracer through a PEP 523
# eval-frame hook, as torch.compile does. Off: those frames run eagerly.
frame_hook: bool = True

_F = TypeVar("_F", bound=Callable[..., Any])


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(
            f"ferrodyn.config.{name} must be a bool (True or False), "
            f"got {value!r} of type {type(value).__name__}"
        )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"ferrodyn.config.{name} must be an int >= 1, "
            f"got {value!r} of type {type(value).__name__}"
        )
    if not 1 <= value <= sys.maxsize:
        raise ValueError(f"ferrodyn.config.{name} must be an int >= 1, got {value!r}")


# Every setting and its check. A new setting needs a module attribute above and a line here.
_CHECKS: dict[str, Callable[[str, object], None]] = {
    "recompile_limit": _check_positive_int,
    "strict": _check_bool,
    "max_inline_depth": _check_positive_int,
    "suppress_errors": _check_bool,
    "capture_scalar_outputs": _check_bool,
    "frame_hook": _check_bool,
}


def _unknown(name: str, action: str) -> AttributeError:
    close = difflib.get_close_matches(name, list(_CHECKS), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return AttributeError(
        f"ferrodyn.config has no setting {name!r} to {action}{hint} "
        f"(settings: {', '.join(_CHECKS)})",
        name=name,
        obj=sys.modules[__name__],
    )


def _validate(name: str, value: object) -> None:
    check = _CHECKS.get(name)
    if check is None:
        raise _unknown(name, "set")
    check(name, value)


def __getattr__(name: str) -> Any:
    # Called by the module type only when `name` is not a module attribute (PEP 562), so
    # reads of real settings stay plain dict lookups.
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
    raise _unknown(name, "read")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CHECKS))


class _ConfigModule(types.ModuleType):
    """The type of `ferrodyn.config`: assignments are validated; reads are untouched."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):  # module machinery (__spec__, reload, ...) and privates
            super().__setattr__(name, value)
            return
        _validate(name, value)
        super().__setattr__(name, value)
        if name == "frame_hook":
            from . import _core

            _core.set_frame_hook(bool(value))

    def __delattr__(self, name: str) -> None:
        if name in _CHECKS:
            raise AttributeError(
                f"ferrodyn.config.{name} cannot be deleted; assign a value or use "
                "ferrodyn.config.patch() to change it temporarily"
            )
        super().__delattr__(name)


sys.modules[__name__].__class__ = _ConfigModule


class _Patch(contextlib.ContextDecorator):
    """What `patch()` returns: a context manager and decorator; see `patch`."""

    def __init__(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            _validate(name, value)
        self._changes = changes
        self._saved: list[dict[str, Any]] = []  # a stack: the same object may be re-entered

    def __enter__(self) -> None:
        module = sys.modules[__name__]
        self._saved.append({name: getattr(module, name) for name in self._changes})
        for name, value in self._changes.items():
            setattr(module, name, value)

    def __exit__(self, *exc_info: object) -> None:
        module = sys.modules[__name__]
        for name, value in self._saved.pop().items():
            setattr(module, name, value)

    def __call__(self, func: _F) -> _F:  # type: ignore[override]
        if isinstance(func, type):
            raise TypeError(
                "ferrodyn.config.patch() decorates functions, not classes; "
                "use it inside the class's methods or setUp/tearDown"
            )
        if inspect.iscoroutinefunction(func) or inspect.isgeneratorfunction(func):
            raise TypeError(
                f"ferrodyn.config.patch() cannot decorate {func!r}: the patch would end "
                "when the coroutine/generator is created, not when it finishes"
            )
        return super().__call__(func)  # type: ignore[return-value]


def patch(arg1: str | dict[str, Any] | None = None, arg2: Any = None, **kwargs: Any) -> _Patch:
    """Change settings for a block or a function call, restoring the old values afterwards.

        with ferrodyn.config.patch(suppress_errors=True): ...
        with ferrodyn.config.patch("recompile_limit", 2): ...
        @ferrodyn.config.patch({"strict": True})
        def test(): ...

    Names and values are checked when `patch` is called, before anything changes. Patches
    nest, and the old values come back even when the block raises. Like
    `torch._dynamo.config.patch`; settings are process-wide, not per thread.
    """
    changes: dict[str, Any]
    if isinstance(arg1, str):
        changes = {arg1: arg2}
    elif isinstance(arg1, dict):
        if arg2 is not None:
            raise TypeError("ferrodyn.config.patch(dict) takes no second argument")
        changes = dict(arg1)
    elif arg1 is None:
        if arg2 is not None:
            raise TypeError("ferrodyn.config.patch(None, value): the name is missing")
        changes = {}
    else:
        raise TypeError(
            "ferrodyn.config.patch() expects a setting name and value, a dict, or keywords; "
            f"got {arg1!r}"
        )
    for name in kwargs:
        if name in changes:
            raise TypeError(f"ferrodyn.config.patch(): {name!r} given twice")
    changes.update(kwargs)
    return _Patch(changes)


def suppress_errors_enabled() -> bool:
    """Whether a backend failure should be warned about and run eagerly instead of raised:
    ferrodyn's `suppress_errors`, or torch._dynamo.config.suppress_errors when torch._dynamo
    is already loaded (it is not imported here just to ask)."""
    if suppress_errors:
        return True
    dynamo_config = sys.modules.get("torch._dynamo.config")
    return bool(dynamo_config is not None and getattr(dynamo_config, "suppress_errors", False))
