"""Test helpers: counting backends, like torch._dynamo.testing's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .backends import resolve


def count_ops(gm: torch.fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.op in ("call_function", "call_method", "call_module"))


class CompileCounter:
    """A backend that counts compiled graphs and their ops, then runs the graph as is."""

    def __init__(self) -> None:
        self.frame_count = 0
        self.op_count = 0
        self.graphs: list[torch.fx.GraphModule] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        self.frame_count += 1
        self.op_count += count_ops(gm)
        self.graphs.append(gm)
        return gm.forward

    def clear(self) -> None:
        self.frame_count = 0
        self.op_count = 0
        self.graphs.clear()


class CompileCounterWithBackend(CompileCounter):
    """Counts like CompileCounter, then compiles with the named backend."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend
        self._compile = resolve(backend, None, None)

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        super().__call__(gm, example_inputs)
        return self._compile(gm, example_inputs)
