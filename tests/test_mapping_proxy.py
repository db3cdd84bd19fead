"""`types.MappingProxyType` made in the trace (checklist 40) and `in` on user objects
with a Python `__contains__`."""

from __future__ import annotations

import types
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def test_escaping_proxy_is_the_real_one() -> None:
    def f(x: torch.Tensor) -> Any:
        d = {"a": 1}
        mp = types.MappingProxyType(d)
        return x + mp["a"], mp

    out, mp = ferrodyn.compile(f, backend="eager")(torch.ones(2))
    assert type(mp) is types.MappingProxyType and dict(mp) == {"a": 1}
    assert_tree_equal(out, torch.ones(2) + 1)


class Bag:
    def __init__(self, *items: Any) -> None:
        self.items = list(items)

    def __contains__(self, v: Any) -> bool:
        return v in self.items


def test_in_calls_a_python_contains() -> None:
    def f(x: torch.Tensor, b: Bag) -> Any:
        return x * (2 if 3 in b else 5), "z" in b

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt, fullgraph=True)
    for b in (Bag(1, 3), Bag(1, 4)):
        assert_tree_equal(g(torch.ones(2), b), f(torch.ones(2), b))
