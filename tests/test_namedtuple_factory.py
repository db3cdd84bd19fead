"""`collections.namedtuple(...)` called inside the compiled region on constants (checklist
37): the class is made at trace time, no graph break; instances made from it and the class
itself may escape."""

from __future__ import annotations

import collections
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def test_class_made_in_the_trace_escapes_with_the_callers_module() -> None:
    def f(x: torch.Tensor) -> Any:
        P = collections.namedtuple("P", ["a", "b"], defaults=[3])
        return P(x, 2), P(x + 1), P

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    x = torch.ones(2)
    p, q, cls = g(x)
    ep, eq, ecls = f(x)
    assert_tree_equal(tuple(p), tuple(ep))
    assert_tree_equal(tuple(q), tuple(eq))
    assert type(p) is cls and cls._fields == ecls._fields == ("a", "b")
    assert cls.__module__ == ecls.__module__ == __name__
    assert q.b == 3 and repr(p).startswith("P(a=")
    assert cnt.frame_count == 1


def test_non_constant_field_names_break() -> None:
    def f(x: torch.Tensor, names: list[str]) -> Any:
        P = collections.namedtuple("P", names)
        return P(x, 1)

    x = torch.ones(2)
    ours = ferrodyn.compile(f, backend="eager")(x, ["a", "b"])
    assert_tree_equal(tuple(ours), tuple(f(x, ["a", "b"])))
