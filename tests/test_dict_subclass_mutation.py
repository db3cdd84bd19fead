"""Changing a dict-subclass object from the inputs with dict's own methods (checklist 23):
traced on a mirror of its contents, replayed on the real object after the graph; the
subclass's `__missing__` is traced, a Python `__setitem__` runs (at a graph break)."""

from __future__ import annotations

import collections
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


class Defaults(dict):
    def __missing__(self, key: str) -> int:
        return -1


class Upper(dict):
    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key.upper(), value)


class Ordered(collections.OrderedDict):
    pass


def test_mutations_replayed_and_missing_still_used() -> None:
    def f(x: torch.Tensor, d: Defaults) -> Any:
        d["a"] = d["a"] + 1
        d.update({"b": 2}, c=3)
        del d["c"]
        gone = d.pop("zz", 0)
        return x * d["a"] + d["nope"] + gone, len(d), sorted(d.items())

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    for _ in range(2):
        ours, ref = Defaults(a=1), Defaults(a=1)
        assert_tree_equal(g(torch.ones(2), ours), f(torch.ones(2), ref))
        assert type(ours) is Defaults and ours == ref
    assert cnt.frame_count == 1


def test_python_setitem_override_is_not_bypassed() -> None:
    def f(x: torch.Tensor, d: Upper) -> Any:
        d["k"] = 5
        return x + d["K"]

    ours, ref = Upper(), Upper()
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2), ours)
    assert_tree_equal(got, f(torch.ones(2), ref))
    assert ours == ref == {"K": 5}


def test_ordered_dict_subclass_mutation_is_correct() -> None:
    def f(x: torch.Tensor, d: Ordered) -> Any:
        d["z"] = 1
        d["a"] = 2
        return x + len(d), list(d)

    ours, ref = Ordered(a=0), Ordered(a=0)
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2), ours)
    assert_tree_equal(got, f(torch.ones(2), ref))
    assert list(ours.items()) == list(ref.items())


def test_plain_dict_update_with_keywords() -> None:
    def f(x: torch.Tensor, d: dict[str, int]) -> Any:
        d.update(a=1, b=2)
        d.update({"c": 3}, d=4)
        return x + sum(d.values()), d

    ours, ref = {}, {}
    cnt = CompileCounter()
    got = ferrodyn.compile(f, backend=cnt, fullgraph=True)(torch.ones(2), ours)
    assert_tree_equal(got, f(torch.ones(2), ref))
    assert ours == ref
