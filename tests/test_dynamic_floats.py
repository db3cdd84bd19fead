"""Float arguments under automatic dynamic shapes: the first change makes the float a
symbolic graph input (one more graph, then none), as torch.compile unspecialises floats;
every use of it still gives eager's answer."""

from __future__ import annotations

import math
from typing import Any

import ferrodyn
import pytest
import torch

X = torch.arange(3.0)
VALUES = (1.5, 2.5, 3.25, -0.75, 0.0, 1.0)


def _run(fn: Any, values: tuple[float, ...] = VALUES, **kw: Any) -> ferrodyn.testing.CompileCounter:
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, **kw)
    for f in values:
        got, expected = compiled(X, f), fn(X, f)
        assert repr(got) == repr(expected), (f, got, expected)
    return cnt


def test_a_changing_float_becomes_symbolic() -> None:
    def fn(x: torch.Tensor, f: float) -> Any:
        return x * f + 1

    assert _run(fn).frame_count == 2


def test_python_arithmetic_on_the_float_is_returned_exactly() -> None:
    def fn(x: torch.Tensor, f: float) -> Any:
        g = f * 2 + 0.1
        return x * g, g, f / 3

    assert _run(fn).frame_count == 2


@pytest.mark.parametrize(
    "use",
    [
        lambda x, f: x * 2 if f > 2 else x - 1,
        lambda x, f: torch.full((2,), f),
        lambda x, f: (x + math.floor(f), int(f)),
        lambda x, f: (x, f"{f:.2f}", str(f)),
        lambda x, f: x.pow(f) if f > 0 else x,
        lambda x, f: (x * max(f, 2.0), min(f, 0.0)),
        lambda x, f: x.clamp(min=f),
        lambda x, f: (x, "%s" % f, "%.1f|%s" % (f, f), "{}".format(f)),  # noqa: UP031, UP032
        lambda x, f: (max(f, 2), min(f, 2), max(1, f, 3.0)),
        lambda x, f: (x * math.sqrt(abs(f)), math.exp(f), f**2, abs(f), -f),
        lambda x, f: (round(f, 2), round(f), f.is_integer(), divmod(f, 1.0)),
        lambda x, f: (isinstance(f, float), type(f).__name__, f == 1.5, f in (1.5, 2.5)),
        lambda x, f: ({f: 1}, hash(f), repr(f), bool(f)),
        lambda x, f: (math.floor(f), math.ceil(f), math.trunc(f), float(f)),
    ],
)
def test_uses_of_the_float_match_eager(use: Any) -> None:
    def fn(x: torch.Tensor, f: float) -> Any:
        return use(x, f)

    _run(fn)


def test_nan_and_infinity_stay_constants() -> None:
    def fn(x: torch.Tensor, f: float) -> Any:
        return x + f, math.isnan(f)

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for f in (1.0, 2.0, math.inf, float("nan"), -math.inf):
        got, expected = compiled(X, f), fn(X, f)
        torch.testing.assert_close(got[0], expected[0], equal_nan=True)
        assert got[1] == expected[1]


def test_dynamic_false_keeps_floats_specialised() -> None:
    def fn(x: torch.Tensor, f: float) -> Any:
        return x * f

    assert _run(fn, dynamic=False).frame_count == len(VALUES)


def test_floats_stay_constants_for_backends_that_would_specialise_them() -> None:
    # AOTAutograd (and inductor) turn symbolic floats into tensors or ask for a re-trace with
    # the float constant: ferrodyn keeps floats constants (guarded) for them.
    def g(x: torch.Tensor, a: float) -> torch.Tensor:
        return x * a + 1

    for backend in ("aot_eager",):
        f = ferrodyn.compile(g, backend=backend, dynamic=True)
        for v in (2.5, 3.5, 2.5, 7.0):
            assert torch.equal(f(torch.ones(2), v), g(torch.ones(2), v)), (backend, v)


def test_random_draws_with_an_aot_backend_match_eager() -> None:
    import random

    def h(x: torch.Tensor) -> torch.Tensor:
        return x * random.random() + random.randint(1, 5)

    f = ferrodyn.compile(h, backend="aot_eager")
    for s in range(3):
        random.seed(s)
        expected, after = h(torch.ones(2)), random.random()
        random.seed(s)
        assert torch.equal(f(torch.ones(2)), expected)
        assert random.random() == after
