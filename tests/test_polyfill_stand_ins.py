"""Objects the trace stands in for (`polyfills.TRACE_ONLY`): `warnings.catch_warnings()` and
`nn.CrossEntropyLoss(...)` made inside the compiled region. Used inside it they cost no
break; one that would outlive the trace (returned, stored, or live across a graph break)
breaks, so that eager makes the real object. The warnings filters are never changed by a
compiled call."""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch


def plain(x: torch.Tensor) -> Any:
    with warnings.catch_warnings():
        y = x * 2
    return y + 1


def sets_a_filter(x: torch.Tensor) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = x * 2
    return y + 1


def records(x: torch.Tensor) -> Any:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        warnings.warn("hi", stacklevel=1)
        y = x * 2
    return y + len(w)


def escapes(x: torch.Tensor) -> Any:
    cm = warnings.catch_warnings()
    return x + 1, type(cm).__name__


def breaks_inside(x: torch.Tensor) -> Any:
    with warnings.catch_warnings():
        y = x * 2
        zlib.crc32(b"a")
    return y + 1


@pytest.mark.parametrize(
    ("fn", "graphs"),
    [(plain, 1), (sets_a_filter, 0), (records, 0), (escapes, 0), (breaks_inside, 0)],
)
def test_catch_warnings(fn: Callable[..., Any], graphs: int) -> None:
    ferrodyn.compile(lambda x: x + 1, backend="eager")(torch.ones(1))  # imports settle
    before = list(warnings.filters)
    x = torch.ones(2)
    got = ferrodyn.compile(fn, backend="eager")(x)
    assert list(warnings.filters) == before
    expected = fn(x)
    assert list(warnings.filters) == before
    if isinstance(got, tuple):
        torch.testing.assert_close(got[0], expected[0])
        assert got[1:] == expected[1:]
    else:
        torch.testing.assert_close(got, expected)
    assert ferrodyn.explain(fn)(x).graph_count == graphs
    assert list(warnings.filters) == before


def test_cross_entropy_loss_stored_on_an_object_is_a_module() -> None:
    class Holder:
        loss: Any = None

    def f(h: Holder, inp: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        h.loss = torch.nn.CrossEntropyLoss(label_smoothing=0.2)
        return h.loss(inp, tgt)

    h = Holder()
    inp, tgt = torch.randn(4, 3), torch.arange(4) % 3
    got = ferrodyn.compile(f, backend="eager")(h, inp, tgt)
    torch.testing.assert_close(got, f(Holder(), inp, tgt))
    assert isinstance(h.loss, torch.nn.CrossEntropyLoss)
    assert h.loss.label_smoothing == 0.2


def test_cross_entropy_loss_options_match_eager() -> None:
    weight = torch.tensor([1.0, 2.0, 0.5])

    def f(inp: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        a = torch.nn.CrossEntropyLoss(weight, ignore_index=1)(inp, tgt)
        b = torch.nn.CrossEntropyLoss(reduction="none")(inp, tgt)
        return a + b.sum()

    inp, tgt = torch.randn(5, 3), torch.arange(5) % 3
    torch.testing.assert_close(ferrodyn.compile(f, backend="eager")(inp, tgt), f(inp, tgt))
    assert ferrodyn.explain(f)(inp, tgt).graph_break_count == 0


def test_type_of_a_stand_in_is_eagers() -> None:
    def f(inp: torch.Tensor, tgt: torch.Tensor) -> Any:
        loss = torch.nn.CrossEntropyLoss()
        cm = warnings.catch_warnings()
        return loss(inp, tgt), isinstance(loss, torch.nn.Module), type(cm).__name__

    inp, tgt = torch.randn(4, 3), torch.arange(4) % 3
    got, expected = ferrodyn.compile(f, backend="eager")(inp, tgt), f(inp, tgt)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:] == (True, "catch_warnings")


def test_legacy_tensor_constructors() -> None:
    def fn(x: torch.Tensor) -> Any:
        a = torch.Tensor([1, 2])
        b = torch.FloatTensor([1, 2])
        c = torch.BoolTensor([True, False])
        d = torch.IntTensor([x[0], x[1]])
        return a + x, b, c, d, (a.dtype, b.dtype, c.dtype, d.dtype)

    x = torch.tensor([3, 4])
    compiled = ferrodyn.compile(fn, backend="eager")
    for default in (torch.float32, torch.float64):
        prev = torch.get_default_dtype()
        torch.set_default_dtype(default)
        try:
            got, expected = compiled(x), fn(x)
        finally:
            torch.set_default_dtype(prev)
        for g, e in zip(got[:4], expected[:4], strict=True):
            torch.testing.assert_close(g, e)
        assert got[4] == expected[4]
    assert ferrodyn.explain(fn)(x).graph_break_count == 0


def test_legacy_sizes_form_breaks_and_matches_eager_shape() -> None:
    def fn(x: torch.Tensor) -> Any:
        return torch.Tensor(2, 3).shape, x + 1

    got, expected = ferrodyn.compile(fn, backend="eager")(torch.ones(1)), fn(torch.ones(1))
    assert got[0] == expected[0]
    torch.testing.assert_close(got[1], expected[1])


def test_legacy_constructor_of_tensors_has_no_grad() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x * 2
        f = torch.FloatTensor([y[0], y[1]])
        return f, f.requires_grad

    x = torch.ones(2, requires_grad=True)
    got, expected = ferrodyn.compile(fn, backend="eager")(x), fn(x)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1] is expected[1] is False
