"""Public API surface: module layout, decorator forms, CompileCounter itself, config."""

from __future__ import annotations

from typing import Any

import ferrodyn
import ferrodyn.exc
import ferrodyn.testing
import torch
import torch.fx
from torch import nn


def test_public_names_exist() -> None:
    assert callable(ferrodyn.compile)
    assert callable(ferrodyn.reset)
    for name in ("Unsupported", "InvalidBackend", "RecompileLimitWarning"):
        assert isinstance(getattr(ferrodyn.exc, name), type)
    assert callable(ferrodyn.testing.CompileCounter)
    assert callable(ferrodyn.testing.CompileCounterWithBackend)


def test_default_recompile_limit() -> None:
    assert ferrodyn.config.recompile_limit == 8


def test_compile_counter_on_fx_graph_directly() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.lin(x)).sum(dim=0) + 1

    gm = torch.fx.symbolic_trace(M())
    ops = [n.op for n in gm.graph.nodes]
    assert {"call_module", "call_function", "call_method"} <= set(ops)
    cnt = ferrodyn.testing.CompileCounter()
    assert (cnt.frame_count, cnt.op_count) == (0, 0)
    fwd = cnt(gm, [torch.randn(2, 3)])
    assert fwd == gm.forward
    assert cnt.frame_count == 1
    assert cnt.op_count == sum(1 for op in ops if op.startswith("call_")) == 4
    cnt(gm, [torch.randn(2, 3)])
    assert (cnt.frame_count, cnt.op_count) == (2, 8)


def test_compile_counter_with_backend_on_fx_graph() -> None:
    gm = torch.fx.symbolic_trace(lambda x: x.sin() * 2)
    cnt = ferrodyn.testing.CompileCounterWithBackend("eager")
    run = cnt(gm, [torch.randn(4)])
    x = torch.randn(4)
    torch.testing.assert_close(run(x), x.sin() * 2)
    assert (cnt.frame_count, cnt.op_count) == (1, 2)


def test_decorator_forms_with_backend() -> None:
    cnt = ferrodyn.testing.CompileCounter()

    @ferrodyn.compile(backend=cnt, fullgraph=True)
    def f(x: torch.Tensor) -> torch.Tensor:
        return x.cos() + 2

    x = torch.randn(3)
    torch.testing.assert_close(f(x), x.cos() + 2)
    assert (cnt.frame_count, cnt.op_count) == (1, 2)


def test_compile_bound_method_and_lambda() -> None:
    class Holder:
        def __init__(self) -> None:
            self.k = 4

        def run(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.k

    h = Holder()
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(h.run, backend=cnt)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), x * 4)
    lam = ferrodyn.compile(lambda a, b=2: a**b, backend=cnt)
    torch.testing.assert_close(lam(x), x**2)
    torch.testing.assert_close(lam(x, b=3), x**3)
    assert cnt.frame_count >= 2


def test_compiled_function_called_from_compiled_function() -> None:
    inner_cnt = ferrodyn.testing.CompileCounter()
    outer_cnt = ferrodyn.testing.CompileCounter()
    inner = ferrodyn.compile(lambda x: x + 1, backend=inner_cnt)

    def outer(x: torch.Tensor) -> torch.Tensor:
        return inner(x) * 2

    compiled = ferrodyn.compile(outer, backend=outer_cnt)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), (x + 1) * 2)
    torch.testing.assert_close(inner(x), x + 1)
    assert outer_cnt.frame_count + inner_cnt.frame_count >= 1


def test_compile_is_lazy_until_first_call() -> None:
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(lambda x: x - 1, backend=cnt)
    assert cnt.frame_count == 0
    compiled(torch.randn(2))
    assert cnt.frame_count == 1


def test_kwargs_only_call_and_defaults() -> None:
    def fn(x: torch.Tensor, *, scale: float = 2.0, **extra: Any) -> tuple[torch.Tensor, Any]:
        return x * scale, sorted(extra)

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    x = torch.randn(2)
    out, keys = compiled(x=x, scale=3.0, b=1, a=2)
    torch.testing.assert_close(out, x * 3.0)
    assert keys == ["a", "b"]


def test_compiled_function_called_inside_a_trace_is_inlined() -> None:
    inner = ferrodyn.compile(lambda x: x.relu() * 2, backend="eager")

    def outer(x: torch.Tensor) -> torch.Tensor:
        return inner(x + 1) - 1

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(outer, backend=cnt)
    x = torch.randn(4)
    torch.testing.assert_close(compiled(x), outer(x))
    assert cnt.frame_count == 1
    assert cnt.op_count == 4
