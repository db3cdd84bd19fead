"""Backends: names, callables, registered names, counters, inductor end-to-end, disable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch.fx
from _helpers import assert_tree_equal
from torch import nn
from torch._dynamo.backends.registry import register_backend


def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = torch.sin(x) * y + 1
    return z.relu(), z.sum(dim=-1)


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(3, 4), torch.randn(3, 4)


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_named_backend_results(backend: str) -> None:
    compiled = ferrodyn.compile(fn, backend=backend)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert_tree_equal(compiled(y, x), fn(y, x))


def test_callable_backend_gets_graph_module_and_example_inputs() -> None:
    seen: list[tuple[torch.fx.GraphModule, list[Any]]] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        seen.append((gm, list(example_inputs)))
        return gm.forward

    compiled = ferrodyn.compile(fn, backend=backend)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert len(seen) == 1
    gm, example_inputs = seen[0]
    assert isinstance(gm, torch.fx.GraphModule)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.sin in targets
    tensors = [e for e in example_inputs if isinstance(e, torch.Tensor)]
    assert sorted(tuple(e.shape) for e in tensors) == [(3, 4), (3, 4)]
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    assert len(placeholders) == len(example_inputs)


def test_callable_backend_output_is_what_runs() -> None:
    def backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            out = gm(*args)
            return [o * 0 + 42 for o in out] if isinstance(out, list | tuple) else out * 0 + 42

        return run

    def single(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    out = ferrodyn.compile(single, backend=backend)(torch.randn(3))
    torch.testing.assert_close(out, torch.full((3,), 42.0))


_REGISTERED_CALLS: list[int] = []
_REGISTERED_NAME = "ferrodyn_test_registered"


def _registered_backend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    _REGISTERED_CALLS.append(len(gm.graph.nodes))
    return gm.forward


if _REGISTERED_NAME not in torch._dynamo.list_backends(exclude_tags=()):
    register_backend(compiler_fn=_registered_backend, name=_REGISTERED_NAME)


def test_backend_registered_with_torch_is_found_by_name() -> None:
    _REGISTERED_CALLS.clear()
    compiled = ferrodyn.compile(fn, backend=_REGISTERED_NAME)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert len(_REGISTERED_CALLS) == 1


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compile_counter_with_backend(backend: str) -> None:
    cnt = ferrodyn.testing.CompileCounterWithBackend(backend)
    compiled = ferrodyn.compile(fn, backend=cnt)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert cnt.frame_count == 1
    assert cnt.op_count == 5  # sin, mul, add, relu, sum


def test_compile_counter_returns_forward_and_counts() -> None:
    cnt = ferrodyn.testing.CompileCounter()

    def two(x: torch.Tensor) -> torch.Tensor:
        return (x + 1).relu()

    compiled = ferrodyn.compile(two, backend=cnt)
    torch.testing.assert_close(compiled(torch.tensor([-3.0, 2.0])), torch.tensor([0.0, 3.0]))
    assert (cnt.frame_count, cnt.op_count) == (1, 2)
    compiled(torch.randn(5, 5))
    assert (cnt.frame_count, cnt.op_count) == (2, 4)


def test_module_with_aot_eager() -> None:
    mod = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.LayerNorm(8))
    compiled = ferrodyn.compile(mod, backend="aot_eager")
    x = torch.randn(2, 4)
    torch.testing.assert_close(compiled(x), mod(x))


def test_disable_runs_eagerly() -> None:
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, disable=True)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y))
    assert cnt.frame_count == 0


def test_decorator_with_arguments() -> None:
    cnt = ferrodyn.testing.CompileCounter()

    @ferrodyn.compile(backend=cnt)
    def decorated(x: torch.Tensor) -> torch.Tensor:
        return x * 3 - 1

    x = torch.randn(4)
    torch.testing.assert_close(decorated(x), x * 3 - 1)
    assert cnt.frame_count == 1


# --------------------------------------------------------------------------- inductor
# A few tiny end-to-end runs: inductor generates and compiles C++ on CPU (seconds each).


@pytest.mark.inductor
def test_inductor_default_backend_and_bare_decorator() -> None:
    @ferrodyn.compile
    def decorated(x: torch.Tensor) -> torch.Tensor:
        return (x.sin() + 1).relu()

    x = torch.randn(8)
    torch.testing.assert_close(decorated(x), (x.sin() + 1).relu())
    x2 = torch.randn(8)
    torch.testing.assert_close(decorated(x2), (x2.sin() + 1).relu())


@pytest.mark.inductor
def test_inductor_counter_and_options_pass_through() -> None:
    cnt = ferrodyn.testing.CompileCounterWithBackend("inductor")
    compiled = ferrodyn.compile(fn, backend=cnt)
    x, y = _inputs()
    assert_tree_equal(compiled(x, y), fn(x, y), atol=1e-5, rtol=1e-5)
    assert cnt.frame_count == 1

    def g(x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1

    for kw in ({"mode": "default"}, {"options": {"max_autotune": False}}):
        out = ferrodyn.compile(g, backend="inductor", **kw)(torch.arange(4.0))
        torch.testing.assert_close(out, torch.arange(4.0) * 2 + 1)
