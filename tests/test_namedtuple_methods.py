"""Methods, properties, classmethods, staticmethods and class constants of namedtuple classes
(`typing.NamedTuple` bodies, `collections.namedtuple` subclasses) on values made in the trace
or passed in: traced like torch.compile (one graph, no break), `_asdict`/`_make`/`_fields`
as namedtuple defines them, and a method replaced on the class after compiling is seen."""

from __future__ import annotations

import collections
import typing
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Pair(typing.NamedTuple):
    a: torch.Tensor
    b: int = 1
    LIMIT = 5

    def total(self) -> torch.Tensor:
        return self.a * self.b

    @property
    def double(self) -> int:
        return self.b * 2

    @classmethod
    def make(cls, a: torch.Tensor) -> Pair:
        return cls(a, 7)

    @staticmethod
    def helper(v: int) -> int:
        return v + 1


Pt = collections.namedtuple("Pt", "x y")


class Sub(Pt):
    __slots__ = ()

    def norm2(self) -> Any:
        return self.x * self.x + self.y * self.y


def _check(fn: Any, *args: Any, graphs: int = 1) -> None:
    expected = fn(*args)
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    assert_tree_equal(compiled(*args), expected)
    assert_tree_equal(compiled(*args), expected)
    explained = ferrodyn.explain(fn)(*args)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    assert cnt.frame_count == graphs


def test_methods_property_classmethod_staticmethod_of_a_namedtuple_made_in_the_trace() -> None:
    def f(x: torch.Tensor) -> Any:
        p = Pair(x, 3)
        q = p._replace(b=4)
        r = Pair.make(x)
        return (
            p.total() + q.total() + r.total(),
            q._asdict(),
            Pair._fields,
            p.double,
            p.helper(2),
            p.LIMIT,
            Pair._make([1, 2]),
        )

    _check(f, torch.arange(3.0))


def test_namedtuple_subclass_method_fields_and_asdict() -> None:
    def f(x: torch.Tensor) -> Any:
        s = Sub(x, 2)
        return s.norm2(), s.x, s._fields, s._asdict()

    _check(f, torch.arange(3.0))


def test_methods_of_a_namedtuple_argument() -> None:
    def f(p: Pair) -> Any:
        return p.total() + p.double

    _check(f, Pair(torch.ones(2), 3))


def test_a_method_replaced_on_the_class_is_seen() -> None:
    def f(x: torch.Tensor) -> Any:
        return Pair(x, 3).total()

    x = torch.arange(3.0)
    compiled = ferrodyn.compile(f, backend="eager")
    assert_tree_equal(compiled(x), x * 3)
    original = Pair.total
    try:
        Pair.total = lambda self: self.a - self.b  # type: ignore[method-assign]
        assert_tree_equal(compiled(x), f(x))
        assert_tree_equal(compiled(x), x - 3)
    finally:
        Pair.total = original  # type: ignore[method-assign]
    assert_tree_equal(compiled(x), x * 3)
