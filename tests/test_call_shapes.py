"""Every way of calling a compiled function gives eager's result or eager's exception.

A compiled function is called through CPython's vectorcall protocol: a call with exactly
the positional parameters (and any ``*args``) binds the frame straight from the argument
array; every other shape (keywords, defaults, ``**kwargs``, a wrong count) is packed into a
tuple and dict first. Each shape is checked here against eager, called directly, through
``f(*args, **kwargs)``, as a bound method, through ``functools.partial`` and from C
(``map``), including after ``__code__`` is replaced.
"""

from __future__ import annotations

import functools
import operator
import weakref
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

X = torch.tensor([1.0, -2.0, 3.0])
Y = torch.tensor([0.5, 0.25, -1.0])


def plain(x, y):
    return x * y + 1


def with_default(x, y=None, *, scale=2.0):
    return x * scale if y is None else (x + y) * scale


def star(x, *rest):
    out = x
    for r in rest:
        out = out + r
    return out, len(rest)


def star_only(*xs):
    return functools.reduce(operator.add, xs)


def kw_only(*, a, b=3):
    return a * b


def star_star(x, **kw):
    return x + sum(kw.values()), sorted(kw)


def no_args():
    return torch.ones(2) * 3


CASES: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    ("plain positional", plain, (X, Y), {}),
    ("plain keywords", plain, (), {"x": X, "y": Y}),
    ("plain mixed", plain, (X,), {"y": Y}),
    ("default omitted", with_default, (X,), {}),
    ("default given", with_default, (X, Y), {}),
    ("kwonly given", with_default, (X, Y), {"scale": 0.5}),
    ("varargs none", star, (X,), {}),
    ("varargs some", star, (X, Y, Y), {}),
    ("varargs only", star_only, (X, Y, X, Y), {}),
    ("kwonly required", kw_only, (), {"a": X}),
    ("kwonly both", kw_only, (), {"a": X, "b": 5}),
    ("varkw", star_star, (X,), {"p": 1.0, "q": 2.0}),
    ("no arguments", no_args, (), {}),
]


@pytest.mark.parametrize(("name", "fn", "args", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_call_shapes_match_eager(
    name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = fn(*args, **kwargs)
    c = ferrodyn.compile(fn, backend="eager")
    for _ in range(3):
        assert_tree_equal(c(*args, **kwargs), expected)
    # Unpacked from a tuple/dict (CALL_FUNCTION_EX) and called from C.
    assert_tree_equal(c(*list(args), **dict(kwargs)), expected)
    assert_tree_equal(functools.partial(c, *args)(**kwargs), expected)
    if not kwargs and args:
        assert_tree_equal(next(iter(map(c, *([a] for a in args)))), expected)


BAD_CALLS: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    ("too few", plain, (X,), {}),
    ("too many", plain, (X, Y, X), {}),
    ("unknown keyword", plain, (X, Y), {"z": 1}),
    ("duplicate argument", plain, (X,), {"x": Y}),
    ("missing kwonly", kw_only, (), {}),
    ("positional to kwonly", kw_only, (X,), {}),
    ("args to no-arg function", no_args, (X,), {}),
]


@pytest.mark.parametrize(("name", "fn", "args", "kwargs"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_calls_raise_eagers_type_error(
    name: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError) as eager:
        fn(*args, **kwargs)
    c = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        with pytest.raises(TypeError) as got:
            c(*args, **kwargs)
        assert str(got.value) == str(eager.value)


def test_exception_from_the_body_propagates() -> None:
    def f(x):
        if x.sum() > 0:
            raise ValueError("positive")
        return x

    c = ferrodyn.compile(f, backend="eager")
    with pytest.raises(ValueError, match="positive"):
        c(torch.ones(2))
    assert_tree_equal(c(-torch.ones(2)), -torch.ones(2))


def test_bound_method_and_weakref() -> None:
    class M:
        def __init__(self) -> None:
            self.k = 3.0

        def go(self, x):
            return x * self.k

    M.go = ferrodyn.compile(M.go, backend="eager")  # type: ignore[method-assign]
    m = M()
    assert_tree_equal(m.go(X), X * 3.0)
    assert_tree_equal(m.go(x=X), X * 3.0)
    c = ferrodyn.compile(plain, backend="eager")
    r = weakref.ref(c)
    assert r() is c


def test_code_replaced_between_positional_calls() -> None:
    def f(x, y):
        return x + y

    def g(x, y):
        return x - y

    c = ferrodyn.compile(f, backend="eager")
    assert_tree_equal(c(X, Y), X + Y)
    f.__code__ = g.__code__
    assert_tree_equal(c(X, Y), X - Y)
    assert_tree_equal(c(X, y=Y), X - Y)


def test_argument_count_changes_recompile_like_eager() -> None:
    c = ferrodyn.compile(star, backend="eager")
    for n in range(4):
        args = (X,) + (Y,) * n
        assert_tree_equal(c(*args), star(*args))
