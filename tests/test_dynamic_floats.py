"""A `float` argument whose value changes between calls becomes a symbolic graph input on
the recompile (torch.compile's unspecialised floats, `specialize_float=False`), instead of
one graph per value; a branch on it is guarded. Values equal eager; at most two graphs
(torch.compile makes one or two). (This is also what keeps a resume function that receives `random.random()`
from recompiling on every call.)"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def mul(x: torch.Tensor, s: float) -> Any:
    return x * s


def arith(x: torch.Tensor, s: float) -> Any:
    return x * (s * 2 + 1) / (s + 3)


def returned(x: torch.Tensor, s: float) -> Any:
    return x + 1, s * 2


def sqrt(x: torch.Tensor, s: float) -> Any:
    return x * math.sqrt(s)


def branch(x: torch.Tensor, s: float) -> Any:
    return x * 2 if s > 0.6 else x - 1


CASES: dict[str, tuple[Callable[..., Any], list[float]]] = {
    "mul": (mul, [0.5, 0.7, 0.9, 1.1]),
    "arith": (arith, [0.5, 0.7, 0.9, 1.1]),
    "returned": (returned, [0.5, 0.7, 0.9, 1.1]),
    "sqrt": (sqrt, [0.5, 0.7, 0.9, 1.1]),
    "branch": (branch, [0.5, 0.7, 0.9, 0.3]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_changing_float_argument(name: str) -> None:
    fn, values = CASES[name]
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for v in values:
        assert_tree_equal(compiled(torch.ones(2), v), fn(torch.ones(2), v))
    torch._dynamo.reset()
    tc = torch._dynamo.testing.CompileCounter()
    torch_fn = torch.compile(fn, backend=tc)
    for v in values:
        torch_fn(torch.ones(2), v)
    torch._dynamo.reset()
    # torch.compile makes 1 or 2 graphs here (it keeps a float that only Python arithmetic
    # uses out of the graph); ferrodyn specialises the first call, then goes symbolic.
    assert cnt.frame_count <= max(tc.frame_count, 2)
    assert cnt.frame_count < len(values)


def test_dynamic_false_specialises_floats() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(mul, backend=cnt, dynamic=False)
    for v in (0.5, 0.7, 0.9):
        compiled(torch.ones(2), v)
    assert cnt.frame_count == 3


def test_random_value_across_a_break_does_not_recompile_per_call() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * random.random()

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    random.seed(0)
    got = [compiled(torch.ones(2)) for _ in range(5)]
    random.seed(0)
    expected = [fn(torch.ones(2)) for _ in range(5)]
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    assert cnt.frame_count <= 2
