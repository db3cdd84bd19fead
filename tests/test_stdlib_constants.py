"""Checklist items 63, 95, 99: function dunders of functions made in the trace, `typing`
aliases and compiled regular expressions used as values (folded, no break), and
`logging` calls breaking at the call (as torch.compile does), all equal to eager."""

from __future__ import annotations

import logging
import re
from typing import Any, Optional, Union

import ferrodyn
import torch
from _helpers import assert_same

X = torch.arange(3.0)
_PAT = re.compile(r"(\w+)-(\d+)")


def test_dunders_of_inner_function() -> None:
    def fn(x: torch.Tensor) -> Any:
        def f(a: int, b: int = 2, *, c: int = 3) -> int:
            return a

        return (
            x + 1,
            f.__name__,
            f.__defaults__,
            f.__kwdefaults__,
            f.__code__.co_argcount,
            sorted(f.__annotations__),
        )

    assert_same(fn, X, frames=1, fullgraph=True)


def test_typing_aliases_as_values() -> None:
    def fn(x: torch.Tensor) -> Any:

        alias = list[int]
        opt = Optional[int]  # noqa: UP045 - the typing alias under test
        return x * 2, alias, opt, Union[int, str], list[float]  # noqa: UP007

    assert_same(fn, X, frames=1, fullgraph=True)


def test_regex_with_constant_arguments_folds() -> None:
    def fn(x: torch.Tensor) -> Any:
        m = _PAT.match("layer-12")
        n = int(m.group(2)) if m else 0
        parts = re.split(r"\.", "a.b.c")
        return x * n, m.groups(), parts, re.sub(r"\d", "#", "a1b2")

    assert_same(fn, X, frames=1, fullgraph=True)


def test_logging_call_breaks_at_the_call() -> None:
    log = logging.getLogger("ferrodyn.test.stdlib")

    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        log.debug("value %s", 3)
        return y * 2

    exp = ferrodyn.explain(fn, X)
    assert exp.graph_break_count == 1
    assert "debug" in exp.break_reasons[0].reason
    assert_same(fn, X, frames=2)
