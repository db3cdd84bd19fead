"""From a finished trace to a callable: FX GraphModule -> backend -> compiled function.

Called by the Rust runtime once per successful trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import observe
from .graph import GraphBuilder, TensorVar
from .testing import count_ops


def compile_graph(
    gb: GraphBuilder, outputs: list[TensorVar], compiler: Callable[..., Any], name: str
) -> Callable[..., Any]:
    gm = gb.finish(outputs)
    if observe.active():
        observe.record("graph", {"fn": name, "gm": gm, "ops": count_ops(gm)})
    if count_ops(gm) == 0:
        # Nothing to compute: return the inputs/outputs wiring without calling the backend
        # (as torch.compile does for graphs without ops).
        return gm.forward
    compiled = compiler(gm, list(gb.example_inputs))
    if not callable(compiled):
        raise TypeError(
            f"ferrodyn: the backend returned {type(compiled).__name__}, expected a callable"
        )
    return compiled
