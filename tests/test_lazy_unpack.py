"""Checklist item 22: a list-like object from the inputs (a list or tuple subclass with the
stock `__len__`/`__getitem__`/`__iter__`) unpacked into locals is guarded on its length; each
item is realized, and guarded, only when the code reads it."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch


class Row(list):
    pass


class Pair(tuple):
    pass


def counted(fn: Any) -> tuple[Any, ferrodyn.testing.CompileCounter]:
    counter = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=counter), counter


def test_unused_items_are_not_guarded() -> None:
    def f(x: torch.Tensor, row: Row) -> torch.Tensor:
        a, _b, _c = row
        return x * a

    g, counter = counted(f)
    x = torch.ones(2)
    for row in (Row([2, 3, 4]), Row([2, 30, "text"]), Row([2, None, 1.5])):
        assert torch.equal(g(x, row), f(x, row))
    assert counter.frame_count == 1
    # the used item is guarded
    assert torch.equal(g(x, Row([5, 3, 4])), f(x, Row([5, 3, 4])))
    assert counter.frame_count == 2


def test_length_is_guarded_and_mismatch_raises_like_eager() -> None:
    def f(x: torch.Tensor, row: Row) -> torch.Tensor:
        a, b = row
        return x * a + b

    g, _ = counted(f)
    x = torch.ones(2)
    assert torch.equal(g(x, Row([2, 3])), f(x, Row([2, 3])))
    for bad in (Row([1, 2, 3]), Row([1])):
        try:
            f(x, bad)
        except ValueError as e:
            expected = str(e)
        try:
            g(x, bad)
        except ValueError as e:
            assert str(e) == expected
        else:
            raise AssertionError("no ValueError")


def test_tuple_subclass_and_tensor_items() -> None:
    def f(p: Pair) -> torch.Tensor:
        a, _b = p
        return a + 1

    g, counter = counted(f)
    for b in (torch.ones(3), "anything", 7):
        p = Pair((torch.arange(3.0), b))
        assert torch.equal(g(p), f(p))
    assert counter.frame_count == 1


def test_item_read_after_a_graph_break_and_after_a_store() -> None:
    def f(x: torch.Tensor, row: Row) -> Any:
        a, b = row
        row[1] = 99  # the unpacked b keeps the value it had
        y = x * a
        torch._dynamo.graph_break()
        return y + b, list(row)

    g, _ = counted(f)
    x = torch.ones(2)
    for vals in ([2, 3], [4, 5]):
        ref_row, row = Row(vals), Row(vals)
        out, ref = g(x, row), f(x, ref_row)
        assert torch.equal(out[0], ref[0])
        assert out[1] == ref[1] and list(row) == list(ref_row)


def test_changed_before_unpacking_is_read_from_the_change() -> None:
    def f(x: torch.Tensor, row: Row) -> torch.Tensor:
        row.append(10)
        a, b, c = row
        return x * a + b + c

    g, _ = counted(f)
    x = torch.ones(2)
    ref_row, row = Row([1, 2]), Row([1, 2])
    assert torch.equal(g(x, row), f(x, ref_row))
    assert list(row) == list(ref_row)
