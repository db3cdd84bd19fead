"""Mutating a list-subclass object from the inputs with list's own methods (checklist 24):
traced on a mirror of its contents, replayed on the real object after the graph."""

from __future__ import annotations

from typing import Any, ClassVar

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Bag(list):
    def total(self) -> Any:
        return sum(self)


class Logged(list):
    calls: ClassVar[list[str]] = []

    def append(self, v: Any) -> None:  # a Python override: traced, not list's own
        Logged.calls.append("append")
        super().append(v * 10)


def mutate(x: torch.Tensor, b: Bag) -> Any:
    b.append(x.sum())
    b[0] = b[0] + 1
    last = b.pop()
    b.insert(0, 7)
    b.extend([1, 2])
    b.remove(1)
    return x * len(b) + last + b.total(), list(b)


def test_mutations_are_replayed_on_the_real_object() -> None:
    cnt = CompileCounter()
    f = ferrodyn.compile(mutate, backend=cnt, fullgraph=True)
    for start in ([1, 2], [1, 2], [1, 2, 3]):
        ours, ref = Bag(start), Bag(start)
        x = torch.ones(2)
        assert_tree_equal(f(x, ours), mutate(x, ref))
        assert type(ours) is Bag and list(ours) == list(ref)
    assert cnt.frame_count == 2  # a new length recompiles


def test_python_override_of_a_mutator_is_not_bypassed() -> None:
    def g(x: torch.Tensor, lg: Logged) -> Any:
        lg.append(2)
        return x + len(lg)

    Logged.calls.clear()
    ours, ref = Logged([1]), Logged([1])
    got = ferrodyn.compile(g, backend="eager")(torch.ones(2), ours)
    expected = g(torch.ones(2), ref)
    assert_tree_equal(got, expected)
    assert list(ours) == list(ref) == [1, 20]
    assert Logged.calls == ["append", "append"]
