"""Inputs that once crashed the interpreter: they must behave as in eager Python."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter


class Count:
    """A user iterator whose __iter__ returns self."""

    def __init__(self, n: int) -> None:
        self.i, self.n = 0, n

    def __iter__(self) -> Count:
        return self

    def __next__(self) -> int:
        if self.i >= self.n:
            raise StopIteration
        self.i += 1
        return self.i


def test_user_iterator_returning_self_is_traced() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        for k in Count(3):
            x = x + k
        return x

    cnt = CompileCounter()
    torch.testing.assert_close(
        ferrodyn.compile(fn, backend=cnt)(torch.zeros(2)), fn(torch.zeros(2))
    )
    assert cnt.frame_count == 1


def test_cyclic_list_argument() -> None:
    a: list[Any] = [1]
    a.append(a)

    def fn(x: torch.Tensor, a: list[Any]) -> torch.Tensor:
        return x + a[0]

    torch.testing.assert_close(
        ferrodyn.compile(fn, backend="eager")(torch.ones(2), a), fn(torch.ones(2), a)
    )


def test_cyclic_list_built_in_the_trace() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        lst: list[Any] = [1]
        lst.append(lst)
        return x + len(lst), lst == lst  # noqa: PLR0124 - comparing a cyclic list

    got, expected = ferrodyn.compile(fn, backend="eager")(torch.ones(2)), fn(torch.ones(2))
    torch.testing.assert_close(got[0], expected[0])
    assert got[1] == expected[1]


def test_bool_returning_non_bool_raises_like_eager() -> None:
    class Weird:
        def __bool__(self) -> Any:
            return self

    def fn(x: torch.Tensor, b: Any) -> torch.Tensor:
        return x + 1 if b else x

    with pytest.raises(TypeError, match="__bool__ should return bool"):
        ferrodyn.compile(fn, backend="eager")(torch.ones(2), Weird())


def test_deeply_nested_argument() -> None:
    a: Any = 1
    for _ in range(20000):
        a = [a]

    def fn(x: torch.Tensor, a: Any) -> torch.Tensor:
        return x + len(a)

    torch.testing.assert_close(
        ferrodyn.compile(fn, backend="eager")(torch.ones(2), a), fn(torch.ones(2), a)
    )
