"""`torch.autocast` blocks inside compiled code: the graph switches autocast on and off at
the same points as eager (the switches are graph nodes), so results have eager's dtypes and
values; tracing leaves the thread's autocast state as it found it, whatever happens inside.

Before, the switches ran only while tracing and were dropped from the graph as dead code:
the compiled function returned float32 where eager returned bfloat16."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch

torch.manual_seed(0)
LIN = torch.nn.Linear(4, 4)


def _state() -> tuple:
    return (
        torch.is_autocast_enabled("cpu"),
        torch.get_autocast_dtype("cpu"),
        torch.is_autocast_cache_enabled(),
    )


def _check(
    fn: Callable[..., Any], *args: Any, backend: Any = "eager", graphs: int | None = None
) -> None:
    expect = fn(*args)
    before = _state()
    count = ferrodyn.testing.CompileCounter() if backend == "count" else None
    compiled = ferrodyn.compile(fn, backend=count if count is not None else backend)
    for _ in range(2):
        got = compiled(*args)
        assert _state() == before
        for a, b in zip(expect, got):
            if isinstance(a, torch.Tensor):
                assert a.dtype == b.dtype
                assert torch.allclose(a.float(), b.float(), atol=1e-2)
            else:
                assert a == b
    if graphs is not None and count is not None:
        assert count.frame_count == graphs


def test_autocast_block_in_one_graph() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x * 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = LIN(y)
            w = z.softmax(-1)
            inside = torch.is_autocast_enabled("cpu")
        return z, w, LIN(y), z.dtype, inside, torch.is_autocast_enabled("cpu")

    _check(fn, torch.randn(2, 4), backend="count", graphs=1)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_autocast_block_with_other_backends(backend: str) -> None:
    def fn(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = LIN(x * 2)
        return z, LIN(x)

    _check(fn, torch.randn(2, 4), backend=backend)


def test_nested_and_disabled_autocast() -> None:
    def fn(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a = LIN(x)
            with torch.autocast("cpu", enabled=False):
                b = LIN(x)
            c = LIN(x)
        return a, b, c

    _check(fn, torch.randn(2, 4), backend="count", graphs=1)


def test_autocast_as_decorator_and_legacy_alias() -> None:
    @torch.autocast("cpu", dtype=torch.bfloat16)
    def inner(x: torch.Tensor) -> torch.Tensor:
        return LIN(x)

    def fn(x: torch.Tensor) -> Any:
        with torch.cpu.amp.autocast(dtype=torch.bfloat16):
            y = LIN(x)
        return inner(x), y, LIN(x)

    with pytest.warns(FutureWarning):
        _check(fn, torch.randn(2, 4))


def test_graph_break_inside_an_autocast_block() -> None:
    def fn(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = LIN(x)
            torch._dynamo.graph_break()
            z = LIN(y.float())
        return y, z, LIN(x)

    _check(fn, torch.randn(2, 4))


def test_called_inside_an_outer_autocast_region() -> None:
    def fn(x: torch.Tensor) -> Any:
        with torch.autocast("cpu", enabled=False):
            a = LIN(x)
        return a, LIN(x)

    compiled = ferrodyn.compile(fn, backend="eager")
    x = torch.randn(2, 4)
    for outer in (False, True, False):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=outer):
            expect, got = fn(x), compiled(x)
        assert [t.dtype for t in got] == [t.dtype for t in expect]
        assert all(torch.allclose(a.float(), b.float(), atol=1e-2) for a, b in zip(expect, got))
    assert not torch.is_autocast_enabled("cpu")


def test_exception_inside_an_autocast_block_restores_state() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = LIN(x)
            raise ValueError("inside")
        return y

    compiled = ferrodyn.compile(fn, backend="eager")
    for f in (fn, compiled):
        with pytest.raises(ValueError, match="inside"):
            f(torch.randn(2, 4))
        assert not torch.is_autocast_enabled("cpu")
