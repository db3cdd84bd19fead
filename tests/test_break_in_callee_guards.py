"""A break inside an inlined callee splits the caller at the call, and the callee then runs
natively from the glue: what the callee's partial trace read must not guard the caller (as
Dynamo restarts its analysis up to the call). GPT-NeoX with all outputs recompiled each
layer's frame on `self.attention.layer_idx` (read inside the attention that broke)."""

from __future__ import annotations

import ferrodyn
import torch
from torch import nn


class Inner(nn.Module):
    def __init__(self, idx: int) -> None:
        super().__init__()
        self.idx = idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.idx < 0:  # read (and guarded) before the break
            raise ValueError(self.idx)
        torch._dynamo.graph_break()
        return x + 1


class Outer(nn.Module):
    def __init__(self, idx: int) -> None:
        super().__init__()
        self.inner = Inner(idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x * 2) * 3


def run(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x)


def test_what_a_breaking_callee_read_does_not_guard_the_caller() -> None:
    graphs: list[str] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(gm.code)
        return gm.forward

    compiled = ferrodyn.compile(run, backend=backend)
    x = torch.randn(3)
    for idx in (0, 1, 2):
        layer = Outer(idx)
        torch.testing.assert_close(compiled(layer, x), run(layer, x))
    # Outer.forward's prefix (x * 2) and its resume (* 3), and Inner's resume (+ 1): the
    # other layers reuse them (only Inner's own frame, which reads idx itself, recompiles,
    # and it has no graph before its break).
    assert len(graphs) == 3, graphs
    ferrodyn.reset()
    exp = ferrodyn.explain(run)(Outer(5), x)
    assert exp.graph_break_count == 1
