"""Verbs answered by a family that used to break: slice attributes, the type of a
generator made in the trace, a method's receiver; and unmodelled verbs break with a
reason naming the family."""

from __future__ import annotations

import types
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_same

X = torch.arange(8.0)


def _slice_attributes(x: torch.Tensor) -> Any:
    s = slice(1, 6, 2)
    return x[s.start : s.stop : s.step] * 2, (s.start, s.stop, s.step)


def _slice_missing_attribute(x: torch.Tensor) -> Any:
    s = slice(1, 6)
    try:
        s.width  # noqa: B018
    except AttributeError as e:
        return x + 1, str(e)
    return x


def _generator_type(x: torch.Tensor) -> Any:
    def gen() -> Any:
        yield x + 1

    g = gen()
    return next(g), type(g) is types.GeneratorType, isinstance(g, types.GeneratorType)


def _builtin_method_self(x: torch.Tensor) -> Any:
    items: list[Any] = []
    append = items.append
    append(x + 1)
    return append.__self__ is items, items


@pytest.mark.parametrize(
    "fn",
    [_slice_attributes, _slice_missing_attribute, _generator_type, _builtin_method_self],
)
def test_family_verb(fn: Any) -> None:
    assert_same(fn, X, frames=1, fullgraph=True)


class _IterMeta(type):
    def __iter__(cls) -> Any:
        return iter([1, 2])


class _IterableClass(metaclass=_IterMeta):
    pass


def test_unmodelled_verb_breaks_with_the_family_name() -> None:
    # Iterating a class through its metaclass's own Python `__iter__` is not modelled
    # (an Enum class's stock iteration is).
    def f(x: torch.Tensor) -> Any:
        y = x + 1
        total = 0
        for c in _IterableClass:
            total += c
        return y * total

    expected = f(X)
    compiled = ferrodyn.compile(f, backend="eager")
    assert torch.equal(compiled(X), expected)
    explanation = ferrodyn.explain(f)(X)
    reasons = " ".join(str(b) for b in explanation.break_reasons)
    assert "iteration over a class" in reasons, reasons
