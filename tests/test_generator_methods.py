"""`send`, `throw` and `close` on generators made in the trace (checklist item 122-125):
traced without a graph break, with eager's values, exceptions and `finally` effects."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _helpers import assert_same

X = torch.arange(3.0)


def _send(x: torch.Tensor) -> Any:
    def acc() -> Any:
        total = 0
        while True:
            v = yield total
            if v is None:
                return total
            total += v

    g = acc()
    next(g)
    a = g.send(2)
    b = g.send(5)
    try:
        g.send(None)
    except StopIteration as e:
        done = e.value
    return x * a + b, done


def _send_to_new_generator(x: torch.Tensor) -> Any:
    def gen() -> Any:
        yield 1

    g = gen()
    try:
        g.send(3)
    except TypeError as e:
        msg = str(e)
    first = g.send(None)
    return x + first, msg


def _throw_caught(x: torch.Tensor) -> Any:
    log = []

    def gen() -> Any:
        for i in range(3):
            caught = False
            try:
                yield i
            except ValueError as e:
                log.append(str(e))
                caught = True
            if caught:
                yield -1

    g = gen()
    a = next(g)
    b = g.throw(ValueError("boom"))
    c = next(g)
    return x * (a + b + c), log


def _throw_uncaught(x: torch.Tensor) -> Any:
    def gen() -> Any:
        yield 1
        yield 2

    g = gen()
    next(g)
    try:
        g.throw(KeyError, "k")
    except KeyError as e:
        caught = (type(e).__name__, e.args)
    after = next(g, "finished")
    return x - 1, caught, after


def _close_runs_finally(x: torch.Tensor) -> Any:
    log = []

    def gen() -> Any:
        try:
            yield 1
            yield 2
        finally:
            log.append("cleanup")

    g = gen()
    v = next(g)
    g.close()
    g.close()
    after = next(g, None)
    unstarted = gen()
    unstarted.close()
    return x * v, log, after


def _close_ignored(x: torch.Tensor) -> Any:
    def gen() -> Any:
        try:
            yield 1
        except GeneratorExit:
            pass
        yield 2

    g = gen()
    next(g)
    try:
        g.close()
    except RuntimeError as e:
        return x + 1, str(e)
    return x


@pytest.mark.parametrize(
    "fn",
    [
        _send,
        _send_to_new_generator,
        _throw_caught,
        _throw_uncaught,
        _close_runs_finally,
        _close_ignored,
    ],
)
def test_generator_method(fn: Any) -> None:
    assert_same(fn, X, frames=1, fullgraph=True)
