"""A break inside ``for i in range(n)`` resumes with the live range iterator, traced.

The resume function receives the real ``range_iterator``; its items are read relative to
its position (like tuple and list iterators), so the rest of the loop is traced instead of
splitting at every ``next()``, and the real iterator is advanced after the graph. Results,
and the graph/break counts, are compared with eager and with the tuple-iterator case.
"""

from __future__ import annotations

import ferrodyn
import torch
from _helpers import assert_tree_equal


def f(x, n):
    for i in range(n):
        x = x + i
        torch._dynamo.graph_break()
        x = x * 2
    return x


def test_break_in_range_loop_matches_eager() -> None:
    x = torch.ones(3)
    compiled = ferrodyn.compile(f, backend="eager")
    for n in (1, 3, 4):
        assert_tree_equal(compiled(x, n), f(x, n))


def test_no_split_at_next_of_a_range_iterator() -> None:
    e = ferrodyn.explain(f)(torch.ones(3), 4)
    reasons = [str(r) for r in e.break_reasons]
    assert not any("next() on" in r for r in reasons), reasons


def test_range_with_step_and_start() -> None:
    def g(x):
        out = []
        for i in range(7, 1, -2):
            out.append(i)
            torch._dynamo.graph_break()
            x = x + i
        return x, out

    x = torch.zeros(2)
    assert_tree_equal(ferrodyn.compile(g, backend="eager")(x), g(x))
