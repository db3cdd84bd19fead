"""Counter's own readers (`most_common`, `total`, `elements`) on a Counter made in the trace,
and `is` between values of different types (dataclasses' `default_factory is not MISSING`
over a list): traced without a break, as torch.compile, with eager's results."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal

X = torch.arange(3.0)


def _same_no_breaks(fn: Any, *args: Any) -> None:
    explained = ferrodyn.explain(fn)(*args)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        assert_tree_equal(compiled(*args), fn(*args))


def test_counter_most_common_total_elements() -> None:
    def f(x: torch.Tensor) -> Any:
        c = collections.Counter("abracadabra")
        return (
            x * c["a"],
            c.most_common(),
            c.most_common(2),
            c.most_common(0),
            c.total(),
            sorted(c.elements()),
            list(c.elements()),
        )

    _same_no_breaks(f, X)


def test_counter_most_common_keeps_insertion_order_among_ties() -> None:
    def f(x: torch.Tensor) -> Any:
        c = collections.Counter(["z", "y", "x", "y", "z", "w"])
        return x + 1, c.most_common(), c.most_common(3)

    _same_no_breaks(f, X)


@dataclasses.dataclass(frozen=True)
class Cfg:
    a: int = 2
    tags: list = dataclasses.field(default_factory=list)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.a


def test_dataclasses_replace_asdict_astuple() -> None:
    def f(x: torch.Tensor) -> Any:
        c = Cfg(3, [1])
        c2 = dataclasses.replace(c, a=5)
        return c.scaled(x) + c2.scaled(x), dataclasses.asdict(c2), dataclasses.astuple(c)

    _same_no_breaks(f, X)


def test_is_between_values_of_different_types() -> None:
    sentinel = object()

    def f(x: torch.Tensor, items: list[int]) -> Any:
        pair = (1, 2)
        return x + 1, items is sentinel, items is not sentinel, pair is sentinel

    _same_no_breaks(f, X, [1, 2])
