"""`torch._dynamo.mark_dynamic(t, dim, min=, max=)`: the range is a constraint, as under
torch.compile: sizes inside it share one graph, a size outside raises
ConstraintViolationError (the call does not silently run)."""

from __future__ import annotations

import ferrodyn
import pytest
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter
from torch.fx.experimental.symbolic_shapes import ConstraintViolationError


def f(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + x.shape[0]


def marked(n: int) -> torch.Tensor:
    x = torch.ones(n)
    torch._dynamo.mark_dynamic(x, 0, min=2, max=16)
    return x


@pytest.mark.parametrize("compile_", ["ferrodyn", "torch"])
def test_sizes_in_range_share_a_graph_and_outside_raise(compile_: str) -> None:
    if compile_ == "ferrodyn":
        cnt: object = CompileCounter()
        g = ferrodyn.compile(f, backend=cnt)
    else:
        torch._dynamo.reset()
        cnt = torch._dynamo.testing.CompileCounter()
        g = torch.compile(f, backend=cnt)
    for n in (4, 6, 16, 2):
        assert_tree_equal(g(marked(n)), f(torch.ones(n)))
    for n in (20, 1):
        with pytest.raises(ConstraintViolationError):
            g(marked(n))
    # Unmarked sizes are not constrained.
    assert_tree_equal(g(torch.ones(30)), f(torch.ones(30)))
    if compile_ == "ferrodyn":
        assert cnt.frame_count <= 2  # type: ignore[attr-defined]


def test_open_ended_range() -> None:
    def h(x: torch.Tensor) -> torch.Tensor:
        return x.sum(0) * x.shape[0]

    cnt = CompileCounter()
    g = ferrodyn.compile(h, backend=cnt)
    for n in (3, 50, 400):
        x = torch.ones(n, 2)
        torch._dynamo.mark_dynamic(x, 0, min=3)
        assert_tree_equal(g(x), h(x))
    assert cnt.frame_count == 1
    x = torch.ones(2, 2)
    torch._dynamo.mark_dynamic(x, 0, min=3)
    with pytest.raises(ConstraintViolationError):
        g(x)
