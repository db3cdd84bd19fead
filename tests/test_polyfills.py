"""`itertools` and `functools.reduce` traced through ferrodyn's Python polyfills
(checklist item 71): one graph with no break, the same values and exceptions as eager."""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Callable
from typing import Any

import pytest
import torch
from _helpers import assert_same

X = torch.arange(4.0)


def _reduce_lambda(x: torch.Tensor) -> Any:
    return functools.reduce(lambda a, b: a + b, [x, x * 2, x * 3])


def _reduce_initial(x: torch.Tensor) -> Any:
    return functools.reduce(operator.mul, [2, 3], x), functools.reduce(operator.add, [], 5)


def _chain(x: torch.Tensor) -> Any:
    return sum(itertools.chain([x], (x * 2, x * 3), [])), list(itertools.chain("ab", [1]))


def _chain_from_iterable(x: torch.Tensor) -> Any:
    return list(itertools.chain.from_iterable([[x * 2, 1], (2,)]))


def _count(x: torch.Tensor) -> Any:
    for i, c in zip(range(3), itertools.count(5, 2), strict=False):
        x = x + c * i
    return x, next(itertools.count(1.5))


def _repeat(x: torch.Tensor) -> Any:
    return (
        sum(itertools.repeat(x, 3)),
        list(itertools.repeat(1, -2)),
        list(zip(range(2), itertools.repeat("r"), strict=False)),
    )


def _islice(x: torch.Tensor) -> Any:
    items = [x, x * 2, x * 3, x * 4, x * 5]
    return (
        list(itertools.islice(items, 2)),
        list(itertools.islice(items, 1, 4)),
        list(itertools.islice(items, 0, None, 2)),
        list(itertools.islice(itertools.count(), 3, 9, 3)),
    )


def _accumulate(x: torch.Tensor) -> Any:
    return (
        list(itertools.accumulate([x, x, x])),
        list(itertools.accumulate([1, 2, 3], operator.mul, initial=10)),
        list(itertools.accumulate([])),
    )


def _zip_longest(x: torch.Tensor) -> Any:
    return list(itertools.zip_longest([x, x + 1], [1], fillvalue=0)), list(
        itertools.zip_longest("ab", "xyz")
    )


def _pairwise(x: torch.Tensor) -> Any:
    return [a + b for a, b in itertools.pairwise([x, x * 2, x * 3])], list(itertools.pairwise([1]))


def _product(x: torch.Tensor) -> Any:
    return [a * b for a, b in itertools.product([1, 2], [x])], list(
        itertools.product("ab", repeat=2)
    )


def _combinatorics(x: torch.Tensor) -> Any:
    return (
        list(itertools.combinations(range(4), 2)),
        list(itertools.permutations("abc", 2)),
        [a + b for a, b in itertools.combinations([x, x * 2, x * 3], 2)],
    )


def _filters(x: torch.Tensor) -> Any:
    vals = [1, 4, 6, 3, 8]
    return (
        list(itertools.takewhile(lambda v: v < 5, vals)),
        list(itertools.dropwhile(lambda v: v < 5, vals)),
        list(itertools.filterfalse(lambda v: v % 2, vals)),
        list(itertools.compress("abcdef", [1, 0, 1, 0, 1])),
        list(itertools.starmap(pow, [(2, 3), (3, 2)])),
        x * sum(itertools.starmap(operator.mul, [(1, 2), (3, 4)])),
    )


def _cycle(x: torch.Tensor) -> Any:
    out = []
    for i, v in zip(range(5), itertools.cycle([x, x * 2]), strict=False):
        out.append(v + i)
    return out


def _groupby(x: torch.Tensor) -> Any:
    runs = [(k, len(list(g))) for k, g in itertools.groupby("aabbbc")]
    by = [(k, list(g)) for k, g in itertools.groupby([1, 3, 2, 4, 5], key=lambda v: v % 2)]
    # Groups share the input: taking all groups first leaves all but the last empty.
    late = [list(g) for _, g in list(itertools.groupby("aab"))]
    return x + len(runs), runs, by, late, list(itertools.groupby([]))


CASES: dict[str, Callable[[torch.Tensor], Any]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _reduce_lambda,
        _reduce_initial,
        _chain,
        _chain_from_iterable,
        _count,
        _repeat,
        _islice,
        _accumulate,
        _zip_longest,
        _pairwise,
        _product,
        _combinatorics,
        _filters,
        _cycle,
        _groupby,
    )
}


@pytest.mark.parametrize("name", list(CASES))
def test_polyfill_in_one_graph(name: str) -> None:
    # fullgraph=True: any break raises, so the call is traced, not run natively.
    assert_same(CASES[name], X, frames=1, fullgraph=True)


def _reduce_empty(x: torch.Tensor) -> Any:
    try:
        functools.reduce(operator.add, [])
    except TypeError as e:
        return x + 1, str(e)
    return x


def _islice_bad(x: torch.Tensor) -> Any:
    msgs = []
    for args in ((-1,), (1, 2, 0), ("a", 3)):
        try:
            itertools.islice([x], *args)
        except ValueError as e:
            msgs.append(str(e))
    return x * 2, msgs


def _product_negative(x: torch.Tensor) -> Any:
    try:
        itertools.product([1], repeat=-1)
    except ValueError as e:
        return x - 1, str(e)
    return x


@pytest.mark.parametrize("fn", [_reduce_empty, _islice_bad, _product_negative])
def test_polyfill_errors_are_eagers(fn: Callable[[torch.Tensor], Any]) -> None:
    assert_same(fn, X, frames=1, fullgraph=True)


def test_lazy_consumption_order() -> None:
    # chain and islice pull from a generator lazily, as the C versions do: the side effects
    # in the generator interleave with the loop body in the same order as eagerly.
    def fn(x: torch.Tensor) -> Any:
        log: list[str] = []

        def gen() -> Any:
            for i in range(3):
                log.append(f"gen{i}")
                yield x * i

        out = []
        for v in itertools.islice(itertools.chain(gen(), [x]), 1, 4):
            log.append("body")
            out.append(v)
        return out, log

    assert_same(fn, X, frames=1, fullgraph=True)


@functools.lru_cache
def _cached_scale(n: int) -> int:
    return n + 1


class _WithCachedMethod:
    def __init__(self) -> None:
        self.k = 3

    @functools.lru_cache  # noqa: B019 - the pattern under test
    def factor(self, n: int) -> int:
        return n * self.k


_OBJ = _WithCachedMethod()


def test_lru_cache_function_traces_wrapped() -> None:
    # Checklist item 14: the undecorated function is traced, the cache ignored (a warning
    # says so once), no break.
    def fn(x: torch.Tensor) -> Any:
        return x * _cached_scale(3) + _OBJ.factor(2)

    with pytest.warns(UserWarning, match="cache is ignored"):
        assert_same(fn, X, frames=1, fullgraph=True)
