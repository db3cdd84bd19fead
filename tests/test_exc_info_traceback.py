"""`sys.exc_info()[2]` inside `except` in a trace stands for the real traceback: it is not
None (as eagerly), and any other use of it (type, attributes, str, print, returning it)
breaks the graph so that the real object is used. Values equal eager."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter


def _with_traceback(use: Callable[[Any], Any]) -> Callable[[torch.Tensor], Any]:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError("v")
        except ValueError:
            tb = sys.exc_info()[2]
            r = use(tb)
        return x * 2, r

    return fn


USES: dict[str, tuple[Callable[[Any], Any], int]] = {
    "is_not_none": (lambda tb: tb is not None, 1),
    "equals_none": (lambda tb: tb == None, 1),
    "truthy": (lambda tb: bool(tb), 1),
    "in_a_list": (lambda tb: [tb][0] is tb, 1),
    "type_name": (lambda tb: type(tb).__name__, 0),
    "isinstance": (lambda tb: isinstance(tb, types.TracebackType), 0),
    "str": (lambda tb: str(tb)[:10], 0),
    "format": (lambda tb: f"{tb}"[:10], 0),
    "attribute": (lambda tb: tb.tb_lineno > 0, 0),
    "returned_type": (lambda tb: type(tb), 0),
}


@pytest.mark.parametrize("name", sorted(USES))
def test_traceback_stand_in(name: str) -> None:
    use, graphs = USES[name]
    fn = _with_traceback(use)
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        got, expected = compiled(torch.ones(1)), fn(torch.ones(1))
        torch.testing.assert_close(got[0], expected[0])
        assert got[1] == expected[1]
    assert cnt.frame_count == graphs


def test_returned_traceback_is_the_real_one() -> None:
    fn = _with_traceback(lambda tb: [tb])
    _, (tb,) = ferrodyn.compile(fn, backend="eager")(torch.ones(1))
    assert isinstance(tb, types.TracebackType)
