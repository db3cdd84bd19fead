"""IntEnum members are numbers guarded by value and type (a tensor operation gets their plain
int), and object's own `__eq__`/`__ne__` called explicitly give identity or NotImplemented,
as eagerly. Values and graph counts checked against eager and across calls."""

from __future__ import annotations

import enum
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Plain:
    pass


def scaled(x: torch.Tensor, lvl: Level) -> Any:
    return x * lvl, lvl, lvl.name, lvl == 2, x + Level.HIGH


def test_int_enum_in_tensor_math_and_guarded_by_member() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(scaled, backend=cnt)
    for lvl in (Level.LOW, Level.HIGH, Level.LOW):
        got = compiled(torch.ones(2), lvl)
        assert_tree_equal(got, scaled(torch.ones(2), lvl))
        assert got[1] is lvl
    assert cnt.frame_count == 2


def test_explicit_object_eq_and_ne() -> None:
    def fn(x: torch.Tensor, a: Plain, b: Plain) -> Any:
        return x + 1, a.__eq__(b), a.__eq__(a), a.__ne__(b), a.__ne__(a), a.__eq__(3)

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    a, b = Plain(), Plain()
    got, expected = compiled(torch.ones(1), a, b), fn(torch.ones(1), a, b)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:]
    assert ferrodyn.explain(fn)(torch.ones(1), a, b).graph_break_count == 0


class _Perm(enum.IntFlag):
    R = 1
    W = 2
    X = 4


class _Mode(enum.Enum):
    TRAIN = "train"
    EVAL = "eval"
    ALIAS = "train"  # noqa: PIE796 - an alias, not listed by iteration


def test_iterating_an_enum_class_lists_its_members() -> None:
    def f(x: torch.Tensor) -> Any:
        p = _Perm.R | _Perm.X
        return (
            x * int(p),
            list(_Perm),
            [m.value for m in _Mode],
            [m.name for m in _Perm],
            len(_Mode),
            _Perm.W in p,
        )

    explained = ferrodyn.explain(f)(torch.ones(2))
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    compiled = ferrodyn.compile(f, backend="eager")
    for _ in range(2):
        assert compiled(torch.ones(2))[1:] == f(torch.ones(2))[1:]
