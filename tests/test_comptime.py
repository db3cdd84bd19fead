"""`torch._dynamo.comptime` (checklist 101): the function runs once per trace, at the call,
with a compile-time context; it adds no graph op; `ctx.graph_break()` splits the graph."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter
from torch._dynamo.comptime import comptime

SEEN: list[Any] = []


def _inspect(ctx: Any) -> None:
    y = ctx.get_local("y")
    SEEN.append(
        (
            y.is_proxy(),
            tuple(y.size()),
            ctx.get_local("k").as_python_constant(),
            "add" in str(ctx.graph()),
        )
    )


def test_context_sees_locals_and_the_graph_so_far() -> None:
    def fn(x: torch.Tensor, k: int) -> torch.Tensor:
        y = x + k
        comptime(_inspect)
        return y * 2

    SEEN.clear()
    cnt = CompileCounter()
    f = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.ones(3, 2)
    for _ in range(3):
        assert_tree_equal(f(x, 4), fn(x, 4))
    # Once per trace, not per call; no op of its own.
    assert SEEN == [(True, (3, 2), 4, True)]
    assert (cnt.frame_count, cnt.op_count) == (1, 2)


def test_helpers_print_at_compile_time(capsys: pytest.CaptureFixture[str]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x.sin()
        comptime.print(y)
        comptime.print_graph()
        return y + 1

    f = ferrodyn.compile(fn, backend="eager", fullgraph=True)
    x = torch.ones(2)
    capsys.readouterr()
    f(x)
    out = capsys.readouterr().out
    assert "TensorVar" in out and "sin" in out
    f(x)
    assert capsys.readouterr().out == ""  # cached: nothing runs at call time


def test_graph_break_from_the_context_matches_torch_compile() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        comptime(lambda ctx: ctx.graph_break())
        return y * 2

    x = torch.ones(2)
    counts = []
    for compile_ in (ferrodyn.compile, torch.compile):
        if compile_ is torch.compile:
            cnt: Any = torch._dynamo.testing.CompileCounter()
        else:
            cnt = CompileCounter()
        assert_tree_equal(compile_(fn, backend=cnt)(x), fn(x))
        counts.append(cnt.frame_count)
        torch._dynamo.reset()
    assert counts == [2, 2]
    with pytest.raises(ferrodyn.exc.Unsupported, match="graph_break"):
        ferrodyn.compile(fn, backend="eager", fullgraph=True)(x)


def test_a_raising_comptime_function_is_a_break_not_a_crash() -> None:
    def boom(ctx: Any) -> None:
        ctx.get_local("nope")

    def fn(x: torch.Tensor) -> torch.Tensor:
        comptime(boom)
        return x + 1

    x = torch.ones(2)
    assert_tree_equal(ferrodyn.compile(fn, backend="eager")(x), fn(x))
    reasons = [str(b) for b in ferrodyn.explain(fn)(x).break_reasons]
    assert any("comptime" in r for r in reasons), reasons
