"""Pure-Python equivalents of `itertools`, traced in place of the C originals (registered in
`ferrodyn.polyfills.POLYFILLS`): same values, same order of consuming their inputs (lazy where
the original is lazy), same exceptions; iterator types become generators."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_MISSING: Any = object()


def chain(*iterables: Iterable[Any]) -> Iterator[Any]:
    for it in iterables:
        yield from it


def _chain_from(iterables: Iterable[Iterable[Any]]) -> Iterator[Any]:
    for it in iterables:
        yield from it


def chain_from_iterable(iterables: Iterable[Iterable[Any]]) -> Iterator[Any]:
    return _chain_from(iter(iterables))


def _count(n: Any, step: Any) -> Iterator[Any]:
    while True:
        yield n
        n += step


def count(start: Any = 0, step: Any = 1) -> Iterator[Any]:
    for v in (start, step):
        if not isinstance(v, (int, float, complex)):
            raise TypeError("a number is required")
    return _count(start, step)


def _repeat_forever(obj: Any) -> Iterator[Any]:
    while True:
        yield obj


def _repeat_n(obj: Any, times: int) -> Iterator[Any]:
    for _ in range(times):
        yield obj


def repeat(object: Any, times: Any = _MISSING) -> Iterator[Any]:
    if times is _MISSING:
        return _repeat_forever(object)
    return _repeat_n(object, max(operator.index(times), 0))


def _islice(it: Iterator[Any], start: int, stop: int | None, step: int) -> Iterator[Any]:
    if stop is not None and start >= stop:
        for _ in zip(range(stop), it):
            pass
        return
    nxt = start
    for i, element in enumerate(it, 1):
        if i - 1 == nxt:
            yield element
            nxt += step
        if stop is not None and i >= stop:
            return


def islice(iterable: Iterable[Any], *args: Any) -> Iterator[Any]:
    if len(args) == 1:
        start, stop, step = None, args[0], None
    elif len(args) in (2, 3):
        start, stop = args[0], args[1]
        step = args[2] if len(args) == 3 else None
    else:
        raise TypeError(f"islice expected at most 4 arguments, got {len(args) + 1}")
    if start is not None and (not isinstance(start, int) or start < 0):
        raise ValueError("Indices for islice() must be None or an integer: 0 <= x <= sys.maxsize.")
    if stop is not None and (not isinstance(stop, int) or stop < 0):
        raise ValueError(
            "Stop argument for islice() must be None or an integer: 0 <= x <= sys.maxsize."
        )
    if step is None:
        step = 1
    if not isinstance(step, int) or step <= 0:
        raise ValueError("Step for islice() must be a positive integer or None.")
    return _islice(iter(iterable), 0 if start is None else start, stop, step)


def _accumulate(it: Iterator[Any], func: Any, initial: Any) -> Iterator[Any]:
    total = initial
    if total is None:
        try:
            total = next(it)
        except StopIteration:
            return
    yield total
    for element in it:
        total = total + element if func is None else func(total, element)
        yield total


def accumulate(iterable: Iterable[Any], func: Any = None, *, initial: Any = None) -> Iterator[Any]:
    return _accumulate(iter(iterable), func, initial)


def _zip_longest(iterators: list[Iterator[Any]], fillvalue: Any) -> Iterator[Any]:
    active = len(iterators)
    if not active:
        return
    while True:
        values = []
        for i, it in enumerate(iterators):
            try:
                value = next(it)
            except StopIteration:
                active -= 1
                if not active:
                    return
                iterators[i] = repeat(fillvalue)
                value = fillvalue
            values.append(value)
        yield tuple(values)


def zip_longest(*iterables: Iterable[Any], fillvalue: Any = None) -> Iterator[Any]:
    return _zip_longest([iter(it) for it in iterables], fillvalue)


def _pairwise(it: Iterator[Any]) -> Iterator[Any]:
    try:
        a = next(it)
    except StopIteration:
        return
    for b in it:
        yield a, b
        a = b


def pairwise(iterable: Iterable[Any]) -> Iterator[Any]:
    return _pairwise(iter(iterable))


def product(*iterables: Iterable[Any], repeat: int = 1) -> Iterator[Any]:
    if repeat < 0:
        raise ValueError("repeat argument cannot be negative")
    pools = [tuple(pool) for pool in iterables] * repeat
    result: list[list[Any]] = [[]]
    for pool in pools:
        result = [x + [y] for x in result for y in pool]
    return iter([tuple(p) for p in result])


def _takewhile(predicate: Any, it: Iterator[Any]) -> Iterator[Any]:
    for x in it:
        if not predicate(x):
            return
        yield x


def takewhile(predicate: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    return _takewhile(predicate, iter(iterable))


def _dropwhile(predicate: Any, it: Iterator[Any]) -> Iterator[Any]:
    for x in it:
        if not predicate(x):
            yield x
            break
    yield from it


def dropwhile(predicate: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    return _dropwhile(predicate, iter(iterable))


def _starmap(function: Any, it: Iterator[Any]) -> Iterator[Any]:
    for args in it:
        yield function(*args)


def starmap(function: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    return _starmap(function, iter(iterable))


def _filterfalse(predicate: Any, it: Iterator[Any]) -> Iterator[Any]:
    for x in it:
        if not (bool(x) if predicate is None else predicate(x)):
            yield x


def filterfalse(predicate: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    return _filterfalse(predicate, iter(iterable))


def _compress(data: Iterator[Any], selectors: Iterator[Any]) -> Iterator[Any]:
    for d, s in zip(data, selectors):
        if s:
            yield d


def compress(data: Iterable[Any], selectors: Iterable[Any]) -> Iterator[Any]:
    return _compress(iter(data), iter(selectors))


def combinations(iterable: Iterable[Any], r: int) -> Iterator[Any]:
    if r < 0:
        raise ValueError("r must be non-negative")
    pool = tuple(iterable)
    n = len(pool)
    out: list[tuple[Any, ...]] = []
    if r <= n:
        indices = list(range(r))
        out.append(tuple(pool[i] for i in indices))
        while True:
            for i in reversed(range(r)):
                if indices[i] != i + n - r:
                    break
            else:
                break
            indices[i] += 1
            for j in range(i + 1, r):
                indices[j] = indices[j - 1] + 1
            out.append(tuple(pool[i] for i in indices))
    return iter(out)


def groupby(iterable: Iterable[Any], key: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Consecutive runs of equal keys, each with an iterator over its run that shares the
    input iterator (advancing to the next group leaves the previous one exhausted), as
    `itertools.groupby` does."""
    keyfunc = (lambda v: v) if key is None else key
    iterator = iter(iterable)
    state: dict[str, Any] = {"exhausted": False}

    def grouper(target: Any) -> Iterator[Any]:
        yield state["value"]
        for value in iterator:
            state["value"] = value
            state["key"] = keyfunc(value)
            if state["key"] != target:
                return
            yield value
        state["exhausted"] = True

    try:
        state["value"] = next(iterator)
    except StopIteration:
        return
    state["key"] = keyfunc(state["value"])
    while not state["exhausted"]:
        target = state["key"]
        group = grouper(target)
        yield target, group
        if state["key"] == target:
            for _ in group:
                pass


def permutations(iterable: Iterable[Any], r: int | None = None) -> Iterator[Any]:
    pool = tuple(iterable)
    n = len(pool)
    r = n if r is None else r
    if r < 0:
        raise ValueError("r must be non-negative")
    out: list[tuple[Any, ...]] = []
    for idx in product(range(n), repeat=r):
        if len(set(idx)) == r:
            out.append(tuple(pool[i] for i in idx))
    return iter(out)


def _cycle(it: Iterator[Any]) -> Iterator[Any]:
    saved = []
    for element in it:
        yield element
        saved.append(element)
    if not saved:
        return
    while True:
        yield from saved


def cycle(iterable: Iterable[Any]) -> Iterator[Any]:
    return _cycle(iter(iterable))
