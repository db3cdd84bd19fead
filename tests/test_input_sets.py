"""Sets of plain constants passed in (or read from objects and modules): `len` and `in`
traced under an equality guard on their contents, changes (`add`, `discard`, `remove`,
`update`, `clear`) replayed on the real set after the graph; iterating one (equal sets may
iterate in different orders) is a graph break (the step runs natively)."""

from __future__ import annotations

from typing import Any, ClassVar

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def reads(x: torch.Tensor, s: set[Any]) -> Any:
    y = x * len(s) if 2 in s else x
    return y + len(s), "a" in s, 3 not in s


def test_reads_under_a_contents_guard() -> None:
    cnt = CompileCounter()
    f = ferrodyn.compile(reads, backend=cnt, fullgraph=True)
    x = torch.ones(2)
    for s in ({1, 2}, {1, 2}, {1, 5}, {2, 7}):
        assert_tree_equal(f(x, set(s)), reads(x, set(s)))
    assert cnt.frame_count == 3  # {1, 2} reused; other contents recompile


def test_mutation_is_replayed_on_the_real_set() -> None:
    def f(x: torch.Tensor, s: set[int], alias: set[int]) -> Any:
        s.add(3)
        s.discard(1)
        s.update((4, 5))
        s.remove(5)
        return x + len(s), 3 in alias, 1 in alias, s is alias

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    for _ in range(2):
        ours, ref = {1, 2}, {1, 2}
        assert_tree_equal(g(torch.ones(2), ours, ours), f(torch.ones(2), ref, ref))
        assert ours == ref == {2, 3, 4}
    assert cnt.frame_count == 1


def test_adding_a_tensor_to_an_input_set_stays_correct() -> None:
    def f(x: torch.Tensor, s: set[Any]) -> Any:
        s.add(x)
        return len(s)

    x = torch.ones(2)
    ours = {1}
    assert ferrodyn.compile(f, backend="eager")(x, ours) == 2
    assert x in ours


class Cfg:
    skip: ClassVar[set[int]] = {1, 3}


def test_set_attribute_of_an_object() -> None:
    def f(x: torch.Tensor, cfg: Cfg) -> torch.Tensor:
        for i in range(4):
            if i not in cfg.skip:
                x = x * 2
        return x

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    assert_tree_equal(g(torch.ones(2), Cfg()), f(torch.ones(2), Cfg()))
    Cfg.skip = {0}
    try:
        assert_tree_equal(g(torch.ones(2), Cfg()), f(torch.ones(2), Cfg()))
    finally:
        Cfg.skip = {1, 3}
    assert cnt.frame_count == 2


def test_iteration_breaks_and_matches_eager() -> None:
    def f(x: torch.Tensor, s: set[int]) -> Any:
        return x + 1, sorted(s), [v for v in s if v > 1]

    s = {5, 1, 9}
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(torch.ones(2), s), f(torch.ones(2), s))


def test_iteration_follows_the_real_sets_order_under_a_guard() -> None:
    def f(x: torch.Tensor, s: set[int]) -> Any:
        out = x
        for v in s:
            out = out * 10 + v
        return out, list(s), sorted(s), [v for v in s if v > 1]

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt)
    # equal contents, different iteration orders (1 and 9 collide in an 8-slot table)
    first, second = {1, 9}, {9, 1}
    assert list(first) != list(second)
    for s in (first, second, first):
        assert_tree_equal(g(torch.zeros(2), s), f(torch.zeros(2), s))
    assert cnt.frame_count == 2, "one graph per iteration order, each reused"
    e = ferrodyn.explain(f)(torch.zeros(2), first)
    assert e.graph_break_count == 0, e.break_reasons


def test_iterating_after_a_change_in_the_trace_still_breaks() -> None:
    def f(x: torch.Tensor, s: set[int]) -> Any:
        s.add(4)
        return x + 1, list(s)

    a, b = {1, 2}, {1, 2}
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(torch.ones(2), a), f(torch.ones(2), b))
    assert a == b
