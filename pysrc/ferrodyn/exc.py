"""ferrodyn's exception and warning types, one per failure exit (see DESIGN.md §3)."""

from __future__ import annotations

from .break_types import Classified


class FerrodynError(Exception):
    """Base class of ferrodyn's own errors."""


class Unsupported(FerrodynError, Classified):
    """A step could not be traced (a graph break). Raised to the user under fullgraph=True.

    `gb_type`, `category`, `explanation` and `hints` classify the break
    (`ferrodyn.break_types`); the message is its context."""

    def _break_text(self) -> str:
        return str(self)


class SkipFrame(FerrodynError):
    """Give up on a whole frame; it runs eagerly."""


class UnsafeScriptObjectError(FerrodynError, TypeError):
    """The traced code read an attribute of, or called a method on, an opaque object (a
    class registered with `torch._library.opaque_object`). Its members are not traceable:
    reach them from a custom operator. Raised to the user, as torch.compile does."""


class InternalError(FerrodynError):
    """A bug inside ferrodyn. The frame runs eagerly unless config.strict is set."""


class InternalErrorWarning(UserWarning):
    """A bug inside ferrodyn while compiling a frame; the frame runs eagerly from now on."""


class InvalidBackend(FerrodynError, ValueError):
    """`backend=` names no known backend, or is not a backend callable."""


class BackendCompilerFailed(FerrodynError):
    """The backend raised while compiling a graph, or returned something that is not callable.

    `backend_name` names the backend, `inner_exception` is what it raised (also the
    `__cause__`; a TypeError when it returned a non-callable). Raised to the user unless
    `config.suppress_errors` (or torch._dynamo.config.suppress_errors) is on; then it is
    reported with one BackendCompilerFailedWarning and the frame runs eagerly."""

    def __init__(
        self, backend_name: str, inner_exception: BaseException, detail: str | None = None
    ) -> None:
        if detail is None:
            detail = f"raised:\n{_describe_exception(inner_exception)}"
        super().__init__(backend_name, inner_exception, detail)  # args: keeps it picklable
        self.backend_name = backend_name
        self.inner_exception = inner_exception
        self.detail = detail

    def __str__(self) -> str:
        return f"backend={self.backend_name!r} {self.detail}"


def _describe_exception(e: BaseException) -> str:
    """`TypeName: message` (just the type name when the message is empty)."""
    try:
        text = str(e)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not hide the failure
        text = "<unprintable message>"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class BackendCompilerFailedWarning(UserWarning):
    """A backend failure was suppressed (config.suppress_errors); the frame runs eagerly."""


class RecompileLimitWarning(UserWarning):
    """A code object hit config.recompile_limit; further new inputs run eagerly."""


class UnsupportedPythonWarning(UserWarning):
    """This Python version's bytecode is not supported; compiled functions run eagerly."""
