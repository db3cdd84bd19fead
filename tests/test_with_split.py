"""`with` blocks whose context manager cannot be traced: a break while entering the block
(BEFORE_WITH) is not a split point (as in torch.compile, the rest of the frame runs
eagerly: the block's `__exit__` could not be rebuilt), and pytest's raises/warns checkers
are never traced (their `__exit__` reads the real exception's traceback)."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal

LOG: list[str] = []


class Opaque:
    """A context manager whose `__enter__` breaks and whose `__exit__` suppresses
    KeyError."""

    def __enter__(self) -> str:
        LOG.append("enter")
        torch._dynamo.graph_break()
        return "tag"

    def __exit__(self, *exc: object) -> bool:
        LOG.append(f"exit {exc[0].__name__ if exc[0] else None}")
        return exc[0] is KeyError


def enter_breaks(x: torch.Tensor, fail: bool) -> Any:
    y = x.sin()
    with Opaque() as tag:
        y = y * 2
        if fail:
            raise KeyError("k")
        y = y + 1
    return y.cos(), tag


@pytest.mark.parametrize("fail", [False, True])
def test_a_break_entering_a_with_block(fail: bool) -> None:
    x = torch.arange(3.0)
    LOG.clear()
    expected = enter_breaks(x, fail)
    eager_log = list(LOG)
    LOG.clear()
    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(enter_breaks, backend=cnt)(x, fail)
    assert_tree_equal(got, expected)
    assert LOG == eager_log
    torch._dynamo.reset()
    tc = torch._dynamo.testing.CompileCounter()
    torch.compile(enter_breaks, backend=tc)(x, fail)
    torch._dynamo.reset()
    assert cnt.frame_count == tc.frame_count


def raises_checker(x: torch.Tensor) -> Any:
    y = x + 1
    with pytest.raises(ZeroDivisionError) as info:
        y = y * 2
        _ = 1 / 0
    return y, info


def test_pytest_raises_runs_natively_with_a_real_traceback() -> None:
    x = torch.ones(2)
    y, info = ferrodyn.compile(raises_checker, backend="eager")(x)
    assert_tree_equal(y, raises_checker(x)[0])
    assert info.type is ZeroDivisionError
    assert len(info.traceback) >= 1
    assert ferrodyn.explain(raises_checker)(x).graph_break_count >= 1
