"""From a finished trace to a callable: FX GraphModule -> backend -> compiled function.

Called by the Rust runtime once per successful trace."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import observe
from .graph import GraphBuilder, TensorVar
from .testing import count_ops


def backend_name(compiler: Any) -> str:
    """A readable name for a backend callable ("inductor", "eager", a class name, ...)."""
    name = getattr(compiler, "backend", None)  # CompileCounterWithBackend
    if isinstance(name, str):
        return name
    name = getattr(compiler, "__name__", None) or type(compiler).__name__
    return {"_eager": "eager", "compile_inductor": "inductor"}.get(name, name)


def compile_graph(
    gb: GraphBuilder, outputs: list[TensorVar], compiler: Callable[..., Any], name: str
) -> Callable[..., Any]:
    watched = observe.active()
    start = time.perf_counter() if watched else 0.0
    gm = gb.finish(outputs)
    if watched:
        observe.record(
            "graph",
            {"fn": name, "gm": gm, "ops": count_ops(gm), "seconds": time.perf_counter() - start},
        )
    if count_ops(gm) == 0:
        # Nothing to compute: return the inputs/outputs wiring without calling the backend
        # (as torch.compile does for graphs without ops).
        return gm.forward
    if not watched:
        compiled = compiler(gm, list(gb.example_inputs))
    else:
        start = time.perf_counter()
        ok = False
        try:
            compiled = compiler(gm, list(gb.example_inputs))
            ok = True
        finally:
            observe.record(
                "backend",
                {
                    "fn": name,
                    "seconds": time.perf_counter() - start,
                    "backend": backend_name(compiler),
                    "ok": ok,
                },
            )
    if not callable(compiled):
        raise TypeError(
            f"ferrodyn: the backend returned {type(compiled).__name__}, expected a callable"
        )
    return compiled
