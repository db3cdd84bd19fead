"""A class attribute resolved by a metaclass's Python `__getattr__` (checklist 31): the
call is traced, and guarded on the name staying absent from the class's MRO."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Meta(type):
    def __getattr__(cls, name: str) -> int:
        return len(name) * cls.scale


class Base(metaclass=Meta):
    scale = 1


class Child(Base):
    pass


def f(x: torch.Tensor, c: Any) -> Any:
    return x * c.abcd


def test_traced_and_recompiled_when_the_name_appears_on_a_base() -> None:
    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    x = torch.ones(2)
    assert_tree_equal(g(x, Child), x * 4)
    assert_tree_equal(g(x, Child), x * 4)
    assert cnt.frame_count == 1
    Base.abcd = 10  # now found by the normal lookup: no __getattr__
    try:
        assert_tree_equal(g(x, Child), x * 10)
    finally:
        del Base.abcd
    assert_tree_equal(g(x, Child), x * 4)
    Child.scale = 3
    try:
        assert_tree_equal(g(x, Child), x * 12)
    finally:
        del Child.scale
