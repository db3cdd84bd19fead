"""`tuple.__new__(cls, items)` for a tuple subclass (a Python `__new__` calling
`super().__new__(cls, (a, b))`, checklist 85): a tuple value of that class, rebuilt by the
same C call when it escapes; the subclass's own methods are not modelled (a break)."""

from __future__ import annotations

from typing import Any, Self

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Span(tuple):
    def __new__(cls, lo: Any, hi: Any) -> Self:
        return super().__new__(cls, (lo, hi))

    def width(self) -> Any:
        return self[1] - self[0]


def test_escaping_instance_is_rebuilt_without_running_new() -> None:
    def f(x: torch.Tensor) -> Any:
        s = Span(x, x + 2)
        return s, isinstance(s, Span), s[1] * 2

    cnt = CompileCounter()
    got = ferrodyn.compile(f, backend=cnt, fullgraph=True)(torch.ones(2))
    expected = f(torch.ones(2))
    assert type(got[0]) is Span
    assert_tree_equal(tuple(got[0]), tuple(expected[0]))
    assert_tree_equal(got[1:], expected[1:])
    assert cnt.frame_count == 1


def test_subclass_method_breaks_and_stays_correct() -> None:
    def f(x: torch.Tensor) -> Any:
        return Span(x, x * 3).width()

    assert_tree_equal(ferrodyn.compile(f, backend="eager")(torch.ones(2)), f(torch.ones(2)))
