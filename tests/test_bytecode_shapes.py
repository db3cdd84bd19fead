"""Code shapes whose bytecode differs between CPython versions (3.13: two-slot
superinstructions, NULL after the callable, `CALL_KW`, `SET_FUNCTION_ATTRIBUTE`, `TO_BOOL`,
split f-string formatting, `FOR_ITER` skipping `END_FOR` + `POP_TOP`): each is traced, split
at a graph break where it can be, and gives eager's result, on every supported version."""

from __future__ import annotations

import sys
from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter

from tests._helpers import assert_tree_equal


def run(fn: Any, *args: Any, calls: int = 2) -> CompileCounter:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(calls):
        assert_tree_equal(compiled(*args), fn(*args))
    return cnt


def test_many_locals_across_a_break() -> None:
    # More than 16 locals, read in pairs (3.13 packs both slots in one instruction's four-bit
    # halves): the resume function after the break renumbers them.
    def fn(x: torch.Tensor) -> Any:
        a0, a1, a2, a3, a4, a5, a6, a7 = x, x + 1, x + 2, x + 3, x + 4, x + 5, x + 6, x + 7
        b0, b1, b2, b3, b4, b5, b6, b7 = a7, a6, a5, a4, a3, a2, a1, a0
        c0, c1, c2, c3 = b0 * b1, b2 * b3, b4 * b5, b6 * b7
        torch._dynamo.graph_break()
        d = c0 + c1 + c2 + c3 + a0 + a7 + b0 + b7
        e, f = d, c0
        f, e = e, f
        return e - f, [a1, a2, a3, a4, a5, a6, b1, b2, b3, b4, b5, b6]

    cnt = run(fn, torch.randn(3))
    assert cnt.frame_count == 2


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_branch_on_a_tensor_splits_at_the_jump(sign: float) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        if y.sum():
            y = y + 1
        if not (y.sum() > 0):
            return y - 10
        return y + 10

    cnt = run(fn, torch.full((3,), sign))
    # One graph before the first branch, one per resume function on the path taken.
    assert cnt.frame_count == 3


def test_method_call_with_keywords_breaking_in_the_callee() -> None:
    class Acc:
        def __init__(self) -> None:
            self.k = 3

        def step(self, x: torch.Tensor, *, scale: float, shift: float = 0.0) -> torch.Tensor:
            y = x * scale
            torch._dynamo.graph_break()
            return y + shift + self.k

    acc = Acc()

    def fn(x: torch.Tensor) -> torch.Tensor:
        z = x.sin()
        kw = {"scale": 3.0}
        return acc.step(z, scale=2.0, shift=1.0) + acc.step(z, **kw)

    run(fn, torch.randn(4))


def test_functions_made_in_the_trace_keep_their_parts() -> None:
    def fn(x: torch.Tensor) -> Any:
        k = 5

        def inner(a: torch.Tensor, b: int = 2, *, c: int = 3) -> torch.Tensor:
            return a * b + c + k

        return inner(x), inner(x, 4, c=1), inner

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    x = torch.randn(3)
    r0, r1, made = compiled(x)
    e0, e1, _ = fn(x)
    assert_tree_equal([r0, r1], [e0, e1])
    # The escaping function is rebuilt with its defaults, keyword defaults, annotations and
    # closure.
    assert made.__defaults__ == (2,)
    assert made.__kwdefaults__ == {"c": 3}
    assert made.__annotations__["b"] == "int"
    assert_tree_equal(made(x), x * 2 + 3 + 5)


def test_f_strings_of_constants_and_values_that_break() -> None:
    def fn(x: torch.Tensor, n: int) -> Any:
        label = f"{n!r:>4}|{n:03d}|{'s'!s}|{n}"
        shown = f"{x.sum()!r:.3}"
        return x * len(label), label, len(shown) > 0

    run(fn, torch.ones(2), 7)


def test_loop_over_a_generator_splits_at_its_for_iter() -> None:
    def numbers() -> Any:
        yield 1
        yield 2

    def fn(x: torch.Tensor, it: Any) -> torch.Tensor:
        acc = x
        for v in it:
            acc = acc * v
        return acc + 1

    x = torch.randn(3)
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    assert_tree_equal(compiled(x, numbers()), fn(x, numbers()))


def test_comprehension_with_a_data_dependent_break() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        picked = [v * 2 for v in y if v.sum() > 0]
        return y, picked

    run(fn, torch.tensor([1.0, -2.0, 3.0]))


def test_sys_exception_in_a_handler() -> None:
    def fn(x: torch.Tensor) -> Any:
        before = sys.exception()
        try:
            raise ValueError("v")
        except ValueError:
            inside = sys.exception()
            return x + 1, before is None, type(inside).__name__, str(inside)

    cnt = run(fn, torch.randn(2))
    assert cnt.frame_count == 1


def test_generator_close_returns_like_eager() -> None:
    # From 3.13, close() returns the value a generator returns on GeneratorExit.
    def fn(x: torch.Tensor) -> Any:
        def g() -> Any:
            try:
                yield 1
            except GeneratorExit:
                return "ret"

        it = g()
        next(it)
        return x + 1, it.close()

    run(fn, torch.randn(2))


def _throw_scenarios(x: torch.Tensor) -> Any:
    log: list = []

    def inner(tag: str) -> Any:
        try:
            yield 1
        except ValueError:
            log.append(f"{tag} inner caught")
            yield 10
        except KeyError:
            log.append(f"{tag} inner returns")
            return 7
        finally:
            log.append(f"{tag} inner finally")
        return 5

    def outer(tag: str) -> Any:
        try:
            r = yield from inner(tag)
        except TypeError:
            log.append(f"{tag} outer caught")
            r = -1
        log.append(r)
        yield r * 2

    caught = outer("a")
    first = next(caught)
    resumed = caught.throw(ValueError("v"))
    after = next(caught)
    returned = outer("b")
    next(returned)
    finished = returned.throw(KeyError("k"))
    passed = outer("c")
    next(passed)
    through = passed.throw(TypeError("t"))
    closed = outer("d")
    next(closed)
    closed.close()
    return x + first + resumed + after + finished + through, log


def test_throw_into_a_traced_yield_from_reaches_the_delegate() -> None:
    cnt = run(_throw_scenarios, torch.zeros(2))
    assert cnt.frame_count == 1


def test_throw_into_a_plain_yield_inside_an_except_block() -> None:
    # 3.13 flags a yield inside `except` in its RESUME's argument: not a `yield from`.
    def fn(x: torch.Tensor) -> Any:
        log: list = []

        def g() -> Any:
            try:
                raise KeyError("k")
            except KeyError:
                try:
                    yield 1
                except ValueError:
                    log.append("caught")
                    yield 2

        it = g()
        next(it)
        return x + it.throw(ValueError("v")), log

    run(fn, torch.zeros(2))
