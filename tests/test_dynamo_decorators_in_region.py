"""torch._dynamo decorators reached inside the compiled region: `assume_constant_result`
functions run once, at trace time, on constant arguments (their result is a constant of the
graph); `nonstrict_trace(fn)` of a function defined outside the region and
`patch_dynamo_config(...)` as a `with` block cost no graph break and no recompile."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
import torch._dynamo
from ferrodyn.testing import CompileCounter

_calls: list[Any] = []


@torch._dynamo.assume_constant_result
def _scale(k: int, *, offset: int = 0) -> int:
    _calls.append(k)
    return k * 10 + offset


def test_assume_constant_result_with_constant_arguments() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * _scale(2, offset=1) + _scale(3)

    _calls.clear()
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(3):
        torch.testing.assert_close(compiled(torch.ones(2)), torch.ones(2) * 21 + 30)
    assert _calls == [2, 3]  # once each, while tracing
    assert cnt.frame_count == 1


def test_assume_constant_result_with_a_tensor_argument_runs_eagerly() -> None:
    @torch._dynamo.assume_constant_result
    def n_items(t: torch.Tensor) -> int:
        return t.numel()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * n_items(x)

    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(compiled(torch.ones(3)), fn(torch.ones(3)))


def _outer(v: torch.Tensor) -> torch.Tensor:
    return v.cos() * 2


def test_nonstrict_trace_of_an_outside_function_is_one_graph() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        f = torch._dynamo.nonstrict_trace(_outer)
        return f(x + 1) - 1

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(3):
        torch.testing.assert_close(compiled(torch.ones(2)), fn(torch.ones(2)))
    assert cnt.frame_count == 1


def test_patch_dynamo_config_block_is_one_graph() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch._dynamo.patch_dynamo_config(capture_scalar_outputs=True):
            y = x * 2
        return y + 1

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    before = torch._dynamo.config.capture_scalar_outputs
    for _ in range(2):
        torch.testing.assert_close(compiled(torch.ones(2)), fn(torch.ones(2)))
    assert cnt.frame_count == 1
    assert torch._dynamo.config.capture_scalar_outputs == before
