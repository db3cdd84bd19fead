"""ferrodyn: torch.compile's bytecode tracer rebuilt around a Rust core.

import ferrodyn
model = ferrodyn.compile(model)              # or backend="eager" / "aot_eager" / a callable
@ferrodyn.compile(fullgraph=True)
def f(x): ...
print(ferrodyn.explain(f)(x))                # graphs, graph breaks (file:line), guards
print(ferrodyn.profile.profile(f, x))        # compile-time profile (python -m ferrodyn profile)
"""

from __future__ import annotations

import sys as _sys

try:
    from . import _core
except ImportError as _e:  # the extension is built per CPython version
    if _sys.version_info[:2] not in ((3, 11), (3, 12), (3, 13)):
        raise ImportError(
            "ferrodyn supports CPython 3.11, 3.12 and 3.13 only (its Rust extension is built "
            f"for them); this is Python {_sys.version_info[0]}.{_sys.version_info[1]}. Use a "
            "3.11, 3.12 or 3.13 interpreter, or torch.compile on this one."
        ) from _e
    raise

from . import config, exc, logs, profile, testing
from .api import OptimizedModule, compile, reset
from .explain import BreakReason, ExplainOutput, explain
from .logs import set_logs
from .marks import mark_dynamic, mark_static, maybe_mark_dynamic

__version__: str = _core.__version__

__all__ = [
    "BreakReason",
    "ExplainOutput",
    "OptimizedModule",
    "__version__",
    "compile",
    "config",
    "exc",
    "explain",
    "logs",
    "mark_dynamic",
    "mark_static",
    "maybe_mark_dynamic",
    "profile",
    "reset",
    "set_logs",
    "testing",
]
