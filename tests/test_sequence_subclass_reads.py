"""A list or tuple subclass from the inputs whose class keeps the stock `__len__`,
`__getitem__` and `__iter__` is read like a plain sequence (iteration, unpacking, `len`,
indexing) under a length guard, without a graph break; an unpacking of the wrong length is
CPython's ValueError, catchable in the trace. Values equal eager."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter


class Row(list):
    pass


class Pair(tuple):
    pass


def reads(x: torch.Tensor, r: Any) -> torch.Tensor:
    a, b = r
    return x * a + b + len(r) + r[-1] + sum(v for v in r)


@pytest.mark.parametrize("cls", [Row, Pair])
def test_stock_sequence_subclass_reads(cls: type) -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(reads, backend=cnt)
    for items in ([2, 3], [4, 5]):
        torch.testing.assert_close(
            compiled(torch.ones(1), cls(items)), reads(torch.ones(1), cls(items))
        )
    assert ferrodyn.explain(reads)(torch.ones(1), cls([2, 3])).graph_break_count == 0
    with pytest.raises(ValueError, match="too many values to unpack"):
        compiled(torch.ones(1), cls([1, 2, 3]))


def test_wrong_length_unpack_is_catchable() -> None:
    def fn(x: torch.Tensor, r: Row) -> Any:
        try:
            a, b = r
        except ValueError as e:
            return x - 1, e.args
        return x * a + b, ()

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for items in ([1, 2, 3], [5], [1, 2]):
        got, expected = compiled(torch.ones(1), Row(items)), fn(torch.ones(1), Row(items))
        torch.testing.assert_close(got[0], expected[0])
        assert got[1] == expected[1]


class Overridden(list):
    def __getitem__(self, i: Any) -> Any:
        return 100


def test_overridden_item_access_is_not_read_past() -> None:
    def fn(x: torch.Tensor, r: Overridden) -> torch.Tensor:
        return x * r[0]

    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(
        compiled(torch.ones(1), Overridden([1])), fn(torch.ones(1), Overridden([1]))
    )


def methods(x: torch.Tensor, r: Any) -> Any:
    return x * r.count(2) + r.index(3), 3 in r, 7 not in r, r.__len__(), r.__getitem__(0)


@pytest.mark.parametrize("cls", [Row, Pair])
def test_stock_read_methods_are_traced(cls: type) -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(methods, backend=cnt)
    for items in ([2, 3, 2], [3, 2, 7]):
        got, expected = compiled(torch.ones(1), cls(items)), methods(torch.ones(1), cls(items))
        torch.testing.assert_close(got[0], expected[0])
        assert got[1:] == expected[1:]
    assert ferrodyn.explain(methods)(torch.ones(1), cls([2, 3])).graph_break_count == 0
    # index() of a missing item raises eager's ValueError.
    with pytest.raises(ValueError):
        compiled(torch.ones(1), cls([1, 2]))


class Counting(tuple):
    def count(self, v: Any) -> int:  # type: ignore[override]
        return 42


def test_overridden_read_method_is_called() -> None:
    def fn(x: torch.Tensor, r: Counting) -> torch.Tensor:
        return x * r.count(1)

    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(
        compiled(torch.ones(1), Counting((1, 1))), fn(torch.ones(1), Counting((1, 1)))
    )


def test_instance_attribute_shadowing_a_method_is_seen() -> None:
    def fn(x: torch.Tensor, r: Row) -> torch.Tensor:
        return x * r.count(1)

    compiled = ferrodyn.compile(fn, backend="eager")
    r = Row([1, 1])
    torch.testing.assert_close(compiled(torch.ones(1), r), fn(torch.ones(1), r))
    r.count = lambda v: 9  # type: ignore[method-assign]
    torch.testing.assert_close(compiled(torch.ones(1), r), fn(torch.ones(1), r))
