"""Counter's own readers (`most_common`, `total`, `elements`) on a Counter made in the trace,
and `is` between values of different types (dataclasses' `default_factory is not MISSING`
over a list): traced without a break, as torch.compile, with eager's results."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import torch
from _helpers import assert_no_breaks

X = torch.arange(3.0)


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

    assert_no_breaks(f, X)


def test_counter_most_common_keeps_insertion_order_among_ties() -> None:
    def f(x: torch.Tensor) -> Any:
        c = collections.Counter(["z", "y", "x", "y", "z", "w"])
        return x + 1, c.most_common(), c.most_common(3)

    assert_no_breaks(f, X)


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

    assert_no_breaks(f, X)


def test_is_between_values_of_different_types() -> None:
    sentinel = object()

    def f(x: torch.Tensor, items: list[int]) -> Any:
        pair = (1, 2)
        return x + 1, items is sentinel, items is not sentinel, pair is sentinel

    assert_no_breaks(f, X, [1, 2])


def _counter_items(c: Any) -> Any:
    return type(c).__name__, list(c.items())


def test_counter_arithmetic() -> None:
    """`+ - | &` of Counters made in the region: positive counts only, in collections'
    order (the left operand's keys first, then the right's new ones)."""

    def f(x: torch.Tensor) -> Any:
        a = collections.Counter(a=3, b=1, c=-2, d=0)
        b = collections.Counter({"b": 2, "c": 1, "e": 4, "f": -5})
        out = [a + b, a - b, b - a, a | b, a & b, b | a, b & a]
        return x + (a + b)["e"], [_counter_items(c) for c in out]

    assert_no_breaks(f, X)


def test_counter_in_place_arithmetic() -> None:
    def f(x: torch.Tensor) -> Any:
        results = []
        for op in ("iadd", "isub", "ior", "iand"):
            a = collections.Counter(a=3, b=1, c=-2, d=0)
            b = collections.Counter({"b": 2, "c": 1, "e": 4, "f": -5})
            same = a
            if op == "iadd":
                a += b
            elif op == "isub":
                a -= b
            elif op == "ior":
                a |= b
            else:
                a &= b
            results.append((a is same, _counter_items(a)))
        return x * len(results), results

    assert_no_breaks(f, X)


def test_counter_update_and_subtract() -> None:
    def f(x: torch.Tensor) -> Any:
        c = collections.Counter()
        c["a"] += 2
        c.update("abb")
        c.update({"z": 5, "a": -1})
        c.subtract("bz")
        c.subtract({"q": 2})
        d = collections.Counter()
        d.update({"k": 0, "m": -1})  # an empty Counter copies a mapping as it is
        c.update(None)
        return x * c["b"], _counter_items(c), _counter_items(d)

    assert_no_breaks(f, X)


def test_counter_counts_from_tensor_shapes() -> None:
    def f(x: torch.Tensor) -> Any:
        c = collections.Counter({"rows": x.shape[0]})
        c.update(["rows", "cols"])
        total = c + collections.Counter(cols=x.dim())
        return x.sum() * total["rows"], _counter_items(total)

    assert_no_breaks(f, torch.ones(4, 2))
