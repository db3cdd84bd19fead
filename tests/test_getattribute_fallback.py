"""A class's Python `__getattribute__` that calls `object.__getattribute__(self, name)`, and
one whose AttributeError falls back to the class's `__getattr__` (CPython's slot order), are
traced without a graph break. Values equal eager; no user code runs at trace time beyond
what is traced."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch


class Direct:
    def __init__(self) -> None:
        self.s = 3

    def __getattribute__(self, n: str) -> Any:
        return object.__getattribute__(self, n)


class Hiding:
    def __init__(self) -> None:
        self.s = 2

    def __getattribute__(self, n: str) -> Any:
        if n.startswith("hidden"):
            raise AttributeError(n)
        return super().__getattribute__(n)

    def __getattr__(self, n: str) -> Any:
        return len(n)


def test_object_getattribute_inside_custom_getattribute() -> None:
    def fn(x: torch.Tensor, o: Direct) -> torch.Tensor:
        return x * o.s

    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(compiled(torch.ones(2), Direct()), fn(torch.ones(2), Direct()))
    assert ferrodyn.explain(fn)(torch.ones(2), Direct()).graph_break_count == 0


def test_attribute_error_falls_back_to_getattr() -> None:
    def fn(x: torch.Tensor, o: Hiding) -> torch.Tensor:
        return x * o.s + o.hidden_abc + o.missing

    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(compiled(torch.ones(2), Hiding()), fn(torch.ones(2), Hiding()))
    assert ferrodyn.explain(fn)(torch.ones(2), Hiding()).graph_break_count == 0
