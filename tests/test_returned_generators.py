"""A generator made in the compiled region and returned from it is run to its end in the
trace (as torch.compile does) and leaves as an iterator over what it had left to yield,
when that is pure graph work; otherwise the frame keeps eager's lazy semantics."""

from __future__ import annotations

import sys
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal


def _run(fn: Any, *args: Any) -> tuple[Any, int]:
    cnt = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=cnt)(*args), cnt.frame_count


def partly_consumed(x: torch.Tensor) -> Any:
    def gen() -> Any:
        yield x + 1
        yield x * 2
        yield x - 3

    g = gen()
    first = next(g)
    return first, g, {"again": g}


def test_the_rest_leaves_as_one_iterator_in_one_graph() -> None:
    x = torch.arange(3.0)
    (first, it, d), graphs = _run(partly_consumed, x)
    e_first, e_gen, _ = partly_consumed(x)
    assert graphs == 1
    assert d["again"] is it, "one object wherever it is returned"
    assert_tree_equal(first, e_first)
    assert_tree_equal(list(it), list(e_gen))
    assert list(d["again"]) == []


def with_side_effect(x: torch.Tensor, log: list[str]) -> Any:
    def gen() -> Any:
        log.append("first")
        yield x + 1
        log.append("second")
        yield x + 2

    return gen()


def test_a_generator_with_side_effects_stays_lazy() -> None:
    log: list[str] = []
    g, _ = _run(with_side_effect, torch.ones(2), log)
    assert log == [], "nothing ran before the caller iterates"
    assert_tree_equal(list(g), [torch.ones(2) + 1, torch.ones(2) + 2])
    assert log == ["first", "second"]


def raises_late(x: torch.Tensor) -> Any:
    def gen() -> Any:
        yield x + 1
        raise KeyError("late")

    return gen()


def test_a_generator_that_raises_later_raises_only_when_consumed() -> None:
    g, _ = _run(raises_late, torch.ones(2))
    assert_tree_equal(next(g), torch.ones(2) + 1)
    try:
        next(g)
    except KeyError as e:
        assert e.args == ("late",)
    else:
        raise AssertionError("the KeyError was lost")


def _exc() -> Any:
    e = sys.exc_info()[1]
    return None if e is None else (type(e).__name__, e.args)


def yields_inside_except(x: torch.Tensor) -> Any:
    seen = []

    def gen() -> Any:
        try:
            raise KeyError("inner")
        except KeyError:
            yield 1
            seen.append(("gen", _exc()))
            yield 2

    g = gen()
    a = next(g)
    seen.append(("caller", _exc()))
    b = next(g)
    try:
        raise ValueError("outer")
    except ValueError:
        seen.append(("caller in except", _exc()))
    return x * (a + b), seen, next(g, "done")


def resumed_from_another_context(x: torch.Tensor) -> Any:
    seen = []

    def gen() -> Any:
        try:
            raise KeyError("inner")
        except KeyError:
            yield 1
        seen.append(("after except", _exc()))
        yield 2

    g = gen()
    a = next(g)
    try:
        raise ValueError("outer")
    except ValueError:
        b = next(g)
        seen.append(("caller", _exc()))
    return x * (a + b), seen


def test_a_generator_paused_in_except_keeps_its_own_exception_state() -> None:
    for fn in (yields_inside_except, resumed_from_another_context):
        x = torch.ones(2)
        out, graphs = _run(fn, x)
        assert_tree_equal(out, fn(x))
    _, graphs = _run(yields_inside_except, torch.ones(2))
    assert graphs == 1


def returns_one_tuple_twice(x: torch.Tensor) -> Any:
    t = (x + 1, "k")
    return t, {"again": t}, [t]


def test_a_tuple_returned_through_several_references_is_one_object() -> None:
    (a, d, lst), _ = _run(returns_one_tuple_twice, torch.ones(2))
    assert a is d["again"] is lst[0], "eager returns one tuple object three times"
    assert_tree_equal(a, returns_one_tuple_twice(torch.ones(2))[0])
