"""Set algebra on sets made in the trace: `|`, `&`, `-`, `^`, their in-place forms and the
methods (`union`, `intersection_update`, ...) with any iterable, as transformers'
`generate()` does with `model_args |= set(inspect.signature(self.forward).parameters)`.
The results (members and iteration order) equal eager's, in one graph."""

from __future__ import annotations

import inspect
from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter


def algebra(x: torch.Tensor, names: list[str]) -> Any:
    a = set(names)
    b = {"b", "c", "z"}
    out = [sorted(a | b), sorted(a & b), sorted(a - b), sorted(a ^ b)]
    a |= {"q"}
    a -= {"a"}
    a &= {"b", "q", "c"}
    a ^= {"c", "new"}
    out.append(sorted(a))
    c = {1, 2, 3}
    out.append(c.union([3, 4], (5,)))
    out.append(c.intersection(range(2, 10)))
    out.append(c.difference({1}, [2]))
    out.append(c.symmetric_difference([3, 9]))
    c.intersection_update([1, 2, 7])
    c.difference_update({1})
    c.symmetric_difference_update({8})
    out.append(c)
    return x * len(out), out


def with_tensors(x: torch.Tensor, y: torch.Tensor) -> Any:
    s = {x, 1}
    t = {y, 1, 2}
    u = s | t
    v = s & t
    return len(u), len(v), x in u, y in (u - s), 1 in v


def test_set_algebra_equals_eager_in_one_graph() -> None:
    cnt = CompileCounter()
    f = ferrodyn.compile(algebra, backend=cnt, fullgraph=True)
    args = (torch.ones(2), ["a", "b", "x"])
    got, exp = f(*args), algebra(*args)
    assert torch.equal(got[0], exp[0]) and got[1] == exp[1]
    assert cnt.frame_count == 1


def test_set_algebra_with_identity_members() -> None:
    x, y = torch.ones(1), torch.zeros(1)
    got = ferrodyn.compile(with_tensors, backend="eager", fullgraph=True)(x, y)
    assert got == with_tensors(x, y)


def test_union_of_signature_parameters() -> None:
    def prepare(input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> None:
        pass

    def forward(input_ids: Any, labels: Any = None) -> None:
        pass

    def fn(x: torch.Tensor) -> Any:
        args = set(inspect.signature(prepare).parameters)
        if "kwargs" in args:
            args |= set(inspect.signature(forward).parameters)
        return x + len(args), sorted(args)

    cnt = CompileCounter()
    got = ferrodyn.compile(fn, backend=cnt, fullgraph=True)(torch.ones(1))
    exp = fn(torch.ones(1))
    assert torch.equal(got[0], exp[0]) and got[1] == exp[1] and cnt.frame_count == 1


def test_in_place_algebra_on_an_input_set_breaks_and_matches_eager() -> None:
    def fn(x: torch.Tensor, s: set[int]) -> Any:
        s |= {5}
        return x + len(s)

    ours, ref = {1, 2}, {1, 2}
    got = ferrodyn.compile(fn, backend="eager")(torch.ones(1), ours)
    assert torch.equal(got, fn(torch.ones(1), ref)) and ours == ref


def test_type_errors_like_eager() -> None:
    def fn(x: torch.Tensor) -> Any:
        return {1} | [2]

    with pytest.raises(TypeError):
        fn(torch.ones(1))
    with pytest.raises(TypeError):
        ferrodyn.compile(fn, backend="eager")(torch.ones(1))
