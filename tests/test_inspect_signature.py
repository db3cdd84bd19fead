"""`inspect.signature(f)` of a plain function or bound method read from the frame is traced
(transformers' `apply_chunking_to_forward`): its parameters are counted and iterated in the
graph's frame, guarded on the function's code, defaults and annotations; escaping, it is
computed again; a function with `__wrapped__`/`__signature__` breaks with eager's answer."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal


def two(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a + b


class Block(torch.nn.Module):
    def chunk(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(inspect.signature(self.chunk).parameters)
        return self.chunk(x) * n


def count(fn: Any, *args: Any) -> ferrodyn.testing.CompileCounter:
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(*args), fn(*args))
    return cnt


def test_parameter_count_of_a_bound_method_is_traced() -> None:
    m = Block()
    x = torch.randn(3)
    assert count(m, x).frame_count == 1
    assert ferrodyn.explain(m)(x).graph_break_count == 0


def test_parameter_names_of_a_function() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, list[str], bool]:
        params = inspect.signature(two).parameters
        names = list(params)
        return two(x, x) * len(params), names, bool(params)

    x = torch.randn(3)
    assert count(f, x).frame_count == 1


def test_an_escaping_signature_equals_eagers() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, inspect.Signature, Any]:
        sig = inspect.signature(two)
        return x + 1, sig, sig.parameters

    x = torch.randn(3)
    out, sig, params = ferrodyn.compile(f, backend="eager")(x)
    assert sig == inspect.signature(two)
    assert list(params) == ["a", "b"]
    assert_tree_equal(out, x + 1)


def test_changing_the_functions_code_recompiles() -> None:
    def g(a: Any, b: Any) -> Any:
        return a

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * len(inspect.signature(g).parameters)

    x = torch.ones(2)
    cf = ferrodyn.compile(f, backend="eager")
    assert_tree_equal(cf(x), f(x))
    original = g.__code__
    g.__code__ = (lambda a, b, c: a).__code__
    try:
        assert_tree_equal(cf(x), x * 3)
    finally:
        g.__code__ = original
    assert_tree_equal(cf(x), x * 2)


def test_a_wrapped_function_breaks_with_eagers_answer() -> None:
    @functools.wraps(two)
    def wrapper(*args: Any) -> Any:
        return two(*args)

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * len(inspect.signature(wrapper).parameters)

    x = torch.ones(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), x * 2)
