"""`min`/`max` with `key=`/`default=` are traced through a Python equivalent (CPython's
semantics: the first of equal candidates wins, `default` for an empty iterable, the same
errors), and `hash(obj)` of an object whose class defines `__hash__` in Python (a frozen
dataclass) is traced: no graph break, as with torch.compile."""

from __future__ import annotations

import dataclasses
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal


@dataclasses.dataclass(frozen=True)
class Spec:
    a: int
    b: int = 2


def with_key(x: torch.Tensor) -> Any:
    words = ("bb", "a", "cc", "d")
    longest = max(words, key=len)  # "bb": the first of the longest
    shortest = min(words, key=len)
    rows = [x[:1], x, x[:2]]
    biggest = max(rows, key=lambda t: t.shape[0])
    return longest, shortest, biggest + 1, max(2, 7, 5, key=lambda v: -v)


def defaults(x: torch.Tensor) -> Any:
    a = max([], default=x)
    b = min((), key=len, default="none")
    try:
        max([], key=len)
    except ValueError as e:
        msg = str(e)
    return a * 2, b, msg


def hashes(x: torch.Tensor) -> Any:
    s = Spec(1)
    same = hash(s) == hash(Spec(1))
    return x + s.a, same, hash(s) == hash((1, 2))


@pytest.mark.parametrize("fn", [with_key, defaults, hashes])
def test_traced_like_eager_without_breaks(fn: Any) -> None:
    x = torch.arange(3.0)
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(x), fn(x))
    assert ferrodyn.explain(fn)(x).graph_break_count == 0
    torch._dynamo.reset()
    tc = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=tc)(x)
    torch._dynamo.reset()
    assert cnt.frame_count == tc.frame_count


def test_errors_match_eager() -> None:
    def bad(x: torch.Tensor) -> Any:
        try:
            max(1, 2, default=0)
        except TypeError as e:
            return x + 1, str(e)
        return x, ""

    x = torch.ones(2)
    got = ferrodyn.compile(bad, backend="eager")(x)
    assert_tree_equal(got, bad(x))


def dict_union(x: torch.Tensor, cfg: dict[str, Any]) -> Any:
    merged = cfg | {"b": x * 2, "a": 0}
    local = {"k": 1}
    local |= {"k": 2, "z": x}
    cfg |= {"added": 1}
    return merged, local, list(merged)


def test_dict_union_operators() -> None:
    x = torch.ones(2)
    c1, c2 = {"a": 1, "b": 2}, {"a": 1, "b": 2}
    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(dict_union, backend=cnt)(x, c1)
    assert_tree_equal(got, dict_union(x, c2))
    assert c1 == c2
    assert ferrodyn.explain(dict_union)(x, {"a": 1, "b": 2}).graph_break_count == 0
