"""User torch.autograd.Function subclasses (checklist 102-103) beyond the checklist's own
cases: `forward` traced in place when no gradient is needed, one `Fn.apply` node when one
is, and a graph break whenever `forward` could not run again unseen in that node."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter, CompileCounterWithBackend

CALLS: list[int] = []


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return 2 * x * g


class Noisy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        CALLS.append(1)  # a side effect: forward must not run an extra time
        return x * 3

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return g * 3


class SetupCtx(torch.autograd.Function):
    @staticmethod
    def forward(x: torch.Tensor, k: float) -> torch.Tensor:
        return x.exp() * k

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        (out,) = ctx.saved_tensors
        return g * out, None


def _run(fn: Any, x: torch.Tensor, backend: Any) -> tuple[Any, Any]:
    x = x.detach().clone().requires_grad_(x.requires_grad)
    out = fn(x)
    if out.requires_grad:
        out.sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_apply_with_grad_is_one_node_and_backward_matches(backend: str) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return Square.apply(x + 1).sin() + SetupCtx.apply(x, 2.0)

    x = torch.randn(5, requires_grad=True)
    expected = _run(fn, x, None)
    cnt = CompileCounterWithBackend(backend)
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    for _ in range(2):
        assert_tree_equal(_run(compiled, x, backend), expected, atol=1e-5, rtol=1e-5)
    assert cnt.frame_count == 1
    targets = [n.target for g in cnt.graphs for n in g.graph.nodes if n.op == "call_function"]
    assert sum(getattr(t, "__name__", "") == "Square_apply" for t in targets) == 1


def test_no_grad_traces_forward_in_place() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return Square.apply(x + 1) * 2

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.randn(4)
    with torch.no_grad():
        assert_tree_equal(compiled(x.requires_grad_()), fn(x))
    assert_tree_equal(compiled(x.detach()), fn(x.detach()))
    # x + 1, x * x, * 2: forward's own op is in the graph, no apply node.
    names = [getattr(n.target, "__name__", "") for g in cnt.graphs for n in g.graph.nodes]
    assert "Square_apply" not in names
    assert cnt.op_count >= 3


def test_forward_with_a_side_effect_breaks_and_runs_once_per_call() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return Noisy.apply(x * 2) + 1

    x = torch.randn(3, requires_grad=True)
    CALLS.clear()
    expected = _run(fn, x, None)
    assert len(CALLS) == 1
    compiled = ferrodyn.compile(fn, backend="eager")
    for n in (2, 3):
        assert_tree_equal(_run(compiled, x, None), expected)
        assert len(CALLS) == n
    reasons = [str(b) for b in ferrodyn.explain(fn)(x).break_reasons]
    assert any("Noisy.forward" in r for r in reasons), reasons


def test_overridden_apply_is_not_taken_for_torchs() -> None:
    class Custom(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            return x + 1

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
            return g

        @classmethod
        def apply(cls, *args: Any) -> Any:  # type: ignore[override]
            return super().apply(*args) * 10

    def fn(x: torch.Tensor) -> torch.Tensor:
        return Custom.apply(x)

    x = torch.randn(3, requires_grad=True)
    assert_tree_equal(_run(ferrodyn.compile(fn, backend="eager"), x, None), _run(fn, x, None))
