"""ferrodyn: torch.compile's bytecode tracer rebuilt around a Rust core.

import ferrodyn
model = ferrodyn.compile(model)              # or backend="eager" / "aot_eager" / a callable
@ferrodyn.compile(fullgraph=True)
def f(x): ...
"""

from __future__ import annotations

from . import _core, config, exc, logs, testing
from .api import OptimizedModule, compile, reset

__version__: str = _core.__version__

__all__ = [
    "OptimizedModule",
    "__version__",
    "compile",
    "config",
    "exc",
    "logs",
    "reset",
    "testing",
]
