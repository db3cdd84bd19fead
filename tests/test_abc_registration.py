"""`isinstance`/`issubclass` against an ABC is answered at trace time, so the graph must not
outlive a later `ABC.register(...)`: eager sees the registration at once, and so must the
compiled function (a guard on `abc.get_cache_token()`, which every registration changes).
Checks against plain classes add no such guard."""

from __future__ import annotations

import abc
import collections.abc

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter


def _fresh_abc() -> type:
    class Shape(abc.ABC):  # an ABC without abstract methods, as register() uses
        pass

    return Shape


class Plain:
    pass


def test_isinstance_sees_a_registration_made_after_compiling() -> None:
    shape = _fresh_abc()

    def f(x: torch.Tensor, obj: object) -> torch.Tensor:
        if isinstance(obj, shape):
            return x + 1
        return x - 1

    cnt = CompileCounter()
    cf = ferrodyn.compile(f, backend=cnt)
    x = torch.randn(3)
    obj = Plain()
    assert torch.equal(cf(x, obj), f(x, obj))
    assert torch.equal(cf(x, obj), x - 1)
    shape.register(Plain)
    assert torch.equal(f(x, obj), x + 1)
    assert torch.equal(cf(x, obj), x + 1)
    assert cnt.frame_count == 2


def test_issubclass_and_class_tuples_see_registrations() -> None:
    shape = _fresh_abc()

    class Other:
        pass

    def f(x: torch.Tensor, cls: type) -> torch.Tensor:
        if issubclass(cls, (int, shape)):
            return x * 2
        return x

    cf = ferrodyn.compile(f, backend=CompileCounter())
    x = torch.randn(3)
    assert torch.equal(cf(x, Other), x)
    shape.register(Other)
    assert torch.equal(cf(x, Other), f(x, Other))
    assert torch.equal(cf(x, Other), x * 2)


def test_an_unrelated_registration_recompiles_once_and_stays_correct() -> None:
    # Every registration anywhere changes the token: the graph is re-traced once, with the
    # same answer, and then reused.
    def f(x: torch.Tensor, obj: object) -> torch.Tensor:
        if isinstance(obj, collections.abc.Sized):
            return x + len(obj)
        return x

    cnt = CompileCounter()
    cf = ferrodyn.compile(f, backend=cnt)
    x = torch.randn(3)
    assert torch.equal(cf(x, [1, 2]), x + 2)
    assert torch.equal(cf(x, [1, 2]), x + 2)
    assert cnt.frame_count == 1
    _fresh_abc().register(Plain)
    assert torch.equal(cf(x, [1, 2]), x + 2)
    assert torch.equal(cf(x, [1, 2]), x + 2)
    assert cnt.frame_count == 2


def test_plain_class_checks_do_not_guard_on_registrations() -> None:
    def f(x: torch.Tensor, obj: object) -> torch.Tensor:
        if isinstance(obj, Plain):
            return x + 1
        return x

    cnt = CompileCounter()
    cf = ferrodyn.compile(f, backend=cnt)
    x = torch.randn(3)
    assert torch.equal(cf(x, Plain()), x + 1)
    _fresh_abc().register(int)
    assert torch.equal(cf(x, Plain()), x + 1)
    assert cnt.frame_count == 1
