"""Frames with cell variables (a function that defines a closure) split at a graph break like
any other (issue 9 item 2): the continuation receives the cell objects themselves, so inner
functions created before the break keep sharing them with the code after it. Values and
side effects equal eager, and graph/op counts equal torch.compile's on the same function."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
from _helpers import assert_tree_equal
from torch._dynamo.testing import CompileCounter


def store_after_break(x: torch.Tensor) -> torch.Tensor:
    y = x + 1

    def g() -> torch.Tensor:
        return y * 2

    n = zlib.crc32(b"a")  # graph break
    y = y + n % 3  # STORE_DEREF after the break: g sees it
    return g() + x


def lambda_in_list(x: torch.Tensor) -> torch.Tensor:
    scale = 3
    fns = [lambda t: t * scale]
    zlib.crc32(b"b")
    scale = 5
    return fns[0](x) + scale


def argument_cell(x: torch.Tensor, k: int) -> torch.Tensor:
    def inner(t: torch.Tensor) -> torch.Tensor:
        return t + k  # k is an argument captured by a closure

    a = inner(x)
    zlib.crc32(b"c")
    b = inner(a)
    k = k + 1
    return b + inner(x) + k


def nonlocal_counter(x: torch.Tensor) -> torch.Tensor:
    acc = x

    def add(t: torch.Tensor) -> None:
        nonlocal acc
        acc = acc + t

    add(x)
    zlib.crc32(b"d")
    add(x * 2)
    return acc


def default_captures(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    total = x * 0
    fs = []
    for i in range(3):
        fs.append(lambda i=i: x * i)
    zlib.crc32(b"e")
    for fn in fs:
        total = total + fn()
    return total, len(locals())


def returns_closure(x: torch.Tensor) -> tuple[Callable[[], torch.Tensor], torch.Tensor]:
    y = x.sin()
    h = lambda: y
    zlib.crc32(b"f")
    return h, y.cos()


def break_at_subscript(x: torch.Tensor) -> torch.Tensor:
    w = x * 3

    def f() -> torch.Tensor:
        return w + 1

    m = w[w > 0]  # data-dependent subscript: a non-call break
    return f() + m.sum()


def two_breaks(x: torch.Tensor) -> torch.Tensor:
    c = x + 1

    def get() -> torch.Tensor:
        return c

    zlib.crc32(b"g")
    c = get() * 2
    zlib.crc32(b"h")
    return get() + 1


CASES: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "store_after_break": (store_after_break, (torch.randn(3),)),
    "lambda_in_list": (lambda_in_list, (torch.randn(3),)),
    "argument_cell": (argument_cell, (torch.randn(3), 2)),
    "nonlocal_counter": (nonlocal_counter, (torch.randn(3),)),
    "default_captures": (default_captures, (torch.randn(3),)),
    "break_at_subscript": (break_at_subscript, (torch.randn(4),)),
    "two_breaks": (two_breaks, (torch.randn(3),)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_cells_split_like_torch_compile(name: str) -> None:
    fn, args = CASES[name]
    torch._dynamo.reset()
    tc = CompileCounter()
    expected_tc = torch.compile(fn, backend=tc)
    fd = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=fd)
    for _ in range(3):  # later calls reuse the graphs: closures are matched by code
        assert_tree_equal(compiled(*args), fn(*args))
        expected_tc(*args)
    assert fd.op_count > 0
    assert (fd.frame_count, fd.op_count) == (tc.frame_count, tc.op_count)


def test_returned_closure_sees_the_same_cell() -> None:
    x = torch.randn(3)
    h, out = ferrodyn.compile(returns_closure, backend="eager")(x)
    h2, out2 = returns_closure(x)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(h(), h2())


def test_break_is_not_a_whole_frame_fallback() -> None:
    """Before: 'graph break in a function whose locals are captured by inner functions' ran
    the whole frame eagerly; now both sides of the break are graphs."""
    exp = ferrodyn.explain(store_after_break, torch.randn(3))
    assert exp.graph_count == 2
    assert all("captured by inner functions" not in b.reason for b in exp.break_reasons)


def test_closure_with_different_defaults_not_reused() -> None:
    """Closures are matched by code, so their defaults are guarded where read."""

    def make(k: int) -> Callable[[torch.Tensor], torch.Tensor]:
        c = 1
        return lambda t, k=k: t * k * c  # a closure (over c) with a default

    def apply(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return f(x) + 1

    cnt = CompileCounter()
    compiled = ferrodyn.compile(apply, backend=cnt)
    x = torch.randn(3)
    for k in (2, 2, 3, 3):
        torch.testing.assert_close(compiled(make(k), x), apply(make(k), x))
    assert cnt.frame_count == 2


def test_closure_with_different_cell_contents_not_reused() -> None:
    def make(k: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda t: t * k

    def apply(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return f(x) + 1

    compiled = ferrodyn.compile(apply, backend="eager")
    x = torch.randn(3)
    for k in (torch.ones(3), torch.ones(3) * 2, torch.ones(2, 3)):
        torch.testing.assert_close(compiled(make(k), x), apply(make(k), x))


def test_locals_in_resume_function_equal_eager() -> None:
    def f(x: torch.Tensor) -> list[str]:
        y = x + 1

        def g() -> torch.Tensor:
            return y

        zlib.crc32(b"z")
        return sorted(locals())

    assert ferrodyn.compile(f, backend="eager")(torch.randn(2)) == f(torch.randn(2))


class _Base(torch.nn.Module):
    def f(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class _Derived(_Base):
    def f(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        y = super().f(x) * 2
        zlib.crc32(b"q")
        z = super().f(y)  # zero-argument super() after a break: needs the __class__ cell
        sf = super().f
        return [sf(t) + zlib.crc32(b"r") % 2 for t in (z, y)]


def test_zero_argument_super_across_breaks() -> None:
    d = _Derived()
    compiled = ferrodyn.compile(d.f, backend="eager")
    x = torch.randn(3)
    for _ in range(3):
        assert_tree_equal(compiled(x), d.f(x))
