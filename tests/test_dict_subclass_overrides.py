"""Item assignment on a dict subclass object whose `__setitem__` is written in Python traces
the override; its `super().__setitem__` (and dict's own methods called explicitly, e.g.
`dict.__getitem__(d, k)`) work on the object's contents and are replayed on the real
object with dict's own methods. Also: zero-argument `super()` in a method whose `self` an
inner function captures."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal


class Scaled(dict):
    def __setitem__(self, k: Any, v: Any) -> None:
        super().__setitem__(k, v * 10)

    def __delitem__(self, k: Any) -> None:
        super().__delitem__(k)
        super().__setitem__("deleted", k)

    def __getitem__(self, k: Any) -> Any:
        return super().__getitem__(k) + 1


def writes(d: Scaled, x: torch.Tensor) -> Any:
    d["a"] = x
    d["b"] = x + 1
    d["c"] = x
    del d["c"]
    return d["a"], dict.__getitem__(d, "b"), dict.get(d, "zz", -1), len(d)


def test_python_setitem_override_is_traced_and_replayed() -> None:
    cnt = ferrodyn.testing.CompileCounter()
    g = ferrodyn.compile(writes, backend=cnt)
    d1, d2 = Scaled(), Scaled()
    x = torch.ones(2)
    assert_tree_equal(g(d1, x), writes(d2, x))
    assert type(d1) is Scaled
    assert_tree_equal(dict(d1), dict(d2))
    assert cnt.frame_count == 1
    assert ferrodyn.explain(writes)(Scaled(), x).graph_break_count == 0


class Base:
    def scale(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


class Captures(Base):
    def scale(self, x: torch.Tensor) -> torch.Tensor:
        def inner() -> Any:
            return self  # makes `self` a cell variable

        assert inner() is self
        return super().scale(x) + 1


def test_zero_argument_super_with_a_captured_self() -> None:
    def f(obj: Captures, x: torch.Tensor) -> torch.Tensor:
        return obj.scale(x)

    obj, x = Captures(), torch.ones(2)
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(f, backend=cnt)(obj, x), f(obj, x))
    assert cnt.frame_count == 1


def test_zero_argument_super_with_a_captured_self_after_a_break() -> None:
    class AfterBreak(Base):
        def scale(self, x: torch.Tensor) -> torch.Tensor:
            def inner() -> Any:
                return self

            y = x.sum()
            if y > 0:  # data-dependent: the rest is a resume function
                y = y + 1
            return super().scale(x) + y + (inner() is self)

    obj, x = AfterBreak(), torch.ones(2)
    assert_tree_equal(ferrodyn.compile(obj.scale, backend="eager")(x), obj.scale(x))
