"""Tuple identity as eager sees it: one tuple object passed through two arguments is one
value (`t is u`, guarded on later calls both ways), a tuple held by two locals across a
graph break is one object after it, and one returned through several references is one
object."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch


def same(x: torch.Tensor, t: tuple[int, ...], u: tuple[int, ...]) -> Any:
    return x + 1, t is u


def test_is_between_two_tuple_arguments_is_guarded_both_ways() -> None:
    g = ferrodyn.compile(same, backend="eager")
    t = (1, 2)
    others = [tuple(range(1, 3)), t, tuple(range(1, 3)), t]
    got = [g(torch.ones(1), t, u)[1] for u in others]
    assert got == [u is t for u in others] == [False, True, False, True]


def across_a_break(x: torch.Tensor) -> Any:
    t = (x, 1)
    u = t
    torch._dynamo.graph_break()
    return t is u, u[0] + 1


def test_a_tuple_held_twice_across_a_break_stays_one_object() -> None:
    x = torch.ones(2)
    got = ferrodyn.compile(across_a_break, backend="eager")(x)
    assert got[0] is True
    torch.testing.assert_close(got[1], across_a_break(x)[1])


def concat_empty(x: torch.Tensor, t: tuple[Any, ...]) -> Any:
    a = t + ()
    b = () + t
    made = (x, 2)
    return a is t, b is t, (made + ()) is made, a[0] + 1


def test_concatenating_an_empty_tuple_gives_the_same_object() -> None:
    x = torch.ones(2)
    t = (x, 1)
    got = ferrodyn.compile(concat_empty, backend="eager")(x, t)
    expected = concat_empty(x, t)
    assert got[:3] == expected[:3] == (True, True, True)
    torch.testing.assert_close(got[3], expected[3])
