"""`n += t` with a Python number on the left and a tensor on the right is `n = n + t`
(numbers have no in-place form): it must become an out-of-place graph op. It was recorded
as `operator.iadd(0, t)`, whose FX code `0 += t` does not compile (transformers' T5 ran
eagerly because of it); a list on the left still extends itself."""

from __future__ import annotations

import warnings

import ferrodyn
import torch
from _helpers import assert_tree_equal


def accumulate(x: torch.Tensor) -> torch.Tensor:
    total = 0
    for k in range(3):
        total += x * k
    scale = 2.0
    scale *= x
    return total + scale


def list_extend(x: torch.Tensor) -> list[torch.Tensor]:
    rows: list[torch.Tensor] = []
    rows += x
    return rows


def test_number_plus_equals_tensor_is_one_graph() -> None:
    x = torch.randn(3)
    cnt = ferrodyn.testing.CompileCounter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ferrodyn.exc.InternalErrorWarning)
        assert_tree_equal(ferrodyn.compile(accumulate, backend=cnt)(x), accumulate(x))
    assert cnt.frame_count == 1


def test_list_plus_equals_tensor_extends_the_list() -> None:
    x = torch.randn(2, 3)
    assert_tree_equal(ferrodyn.compile(list_extend, backend="eager")(x), list_extend(x))
