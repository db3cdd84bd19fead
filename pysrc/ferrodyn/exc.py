"""ferrodyn's exception and warning types, one per failure exit (see DESIGN.md §3)."""

from __future__ import annotations


class FerrodynError(Exception):
    """Base class of ferrodyn's own errors."""


class Unsupported(FerrodynError):
    """A step could not be traced (a graph break). Raised to the user under fullgraph=True."""


class SkipFrame(FerrodynError):
    """Give up on a whole frame; it runs eagerly."""


class InternalError(FerrodynError):
    """A bug inside ferrodyn. The frame runs eagerly unless config.strict is set."""


class InvalidBackend(FerrodynError, ValueError):
    """`backend=` names no known backend, or is not a backend callable."""


class RecompileLimitWarning(UserWarning):
    """A code object hit config.recompile_limit; further new inputs run eagerly."""


class UnsupportedPythonWarning(UserWarning):
    """This Python version's bytecode is not supported; compiled functions run eagerly."""
