"""`inspect.signature(f)` of a plain function or bound method read from the frame is traced
(transformers' `apply_chunking_to_forward`): its parameters are counted and iterated in the
graph's frame, guarded on the function's code, defaults and annotations; escaping, it is
computed again; a `functools.wraps` chain is followed to the wrapped function (each `__wrapped__` link
guarded); a function with `__signature__` breaks with eager's answer."""

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


def test_a_wrapped_function_gives_eagers_answer() -> None:
    @functools.wraps(two)
    def wrapper(*args: Any) -> Any:
        return two(*args)

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * len(inspect.signature(wrapper).parameters)

    x = torch.ones(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), x * 2)


def _decorate(f: Any) -> Any:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **kwargs)

    return wrapper


class Generating(torch.nn.Module):
    @_decorate
    def prepare(self, input_ids: Any, mask: Any = None, **kwargs: Any) -> Any:
        return input_ids

    def forward(self, x: torch.Tensor) -> Any:
        names = set(inspect.signature(self.prepare).parameters)
        return x * len(names), sorted(names)


def test_signature_through_functools_wraps_is_traced_and_guarded() -> None:
    # transformers' generate() reads the signature of a decorated method this way.
    m = Generating()
    cnt = ferrodyn.testing.CompileCounter()
    f = ferrodyn.compile(m, backend=cnt, fullgraph=True)
    got, exp = f(torch.ones(2)), m(torch.ones(2))
    assert torch.equal(got[0], exp[0]) and got[1] == exp[1] == ["input_ids", "kwargs", "mask"]
    assert cnt.frame_count == 1

    # Re-pointing __wrapped__ changes the signature: a guard fails, the new one is read.
    def other(self: Any, a: Any) -> None:
        pass

    original = Generating.prepare.__wrapped__
    Generating.prepare.__wrapped__ = other
    try:
        got, exp = f(torch.ones(2)), m(torch.ones(2))
        assert got[1] == exp[1] == ["a"]
        assert cnt.frame_count == 2
    finally:
        Generating.prepare.__wrapped__ = original


def test_parameters_keys() -> None:
    def fn(x: torch.Tensor) -> Any:
        keys = inspect.signature(two).parameters.keys()
        return x * ("a" in set(keys)), list(keys)

    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(fn, backend=cnt, fullgraph=True)(torch.ones(1))
    assert_tree_equal(got, fn(torch.ones(1)))
    assert cnt.frame_count == 1
