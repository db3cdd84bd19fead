"""A graph break inside a comprehension or generator expression (nested code objects on
3.11) splits the parent at the call; the comprehension then runs through a compiled wrapper
of itself, whose own frame splits at the break (issue 9 items 2-3). Values equal eager, the
list/dict/set being built survives every split, ops on both sides of the break are in graphs,
and later calls reuse the graphs (a comprehension is a new function object on every call)."""

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


def list_comp(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    ys = [t * 2 + zlib.crc32(b"a") % 2 for t in (y, y + 1, y + 2)]
    return ys[0] + ys[1] + ys[2]


def dict_comp(x: torch.Tensor) -> dict[int, torch.Tensor]:
    y = x.sin()
    return {i: y * i + zlib.crc32(b"b") % 5 for i in range(3)}


def set_comp(x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    y = x.cos()
    s = {zlib.crc32(bytes([i])) % 7 for i in range(4)}
    return y * len(s), sorted(s)


def closure_comp(x: torch.Tensor) -> torch.Tensor:
    scale = x.sum()
    zs = [x * scale * k + zlib.crc32(b"c") % 3 for k in range(2)]
    return zs[0] - zs[1]


def nested_comp(x: torch.Tensor) -> list[list[torch.Tensor]]:
    return [[x * i + j + zlib.crc32(b"d") % 2 for j in range(2)] for i in range(2)]


def mask_in_comp(x: torch.Tensor) -> list[torch.Tensor]:
    y = x * 3
    return [t[t > 0].sum() + 1 for t in (y, -y)]


def genexpr_sum(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    s = sum(t.sum() * (zlib.crc32(b"e") % 3) for t in (y, x))
    return y * s


CASES: dict[str, tuple[Callable[..., Any], tuple[Any, ...]]] = {
    "list_comp": (list_comp, (torch.randn(3),)),
    "dict_comp": (dict_comp, (torch.randn(3),)),
    "set_comp": (set_comp, (torch.randn(3),)),
    "closure_comp": (closure_comp, (torch.randn(3),)),
    "nested_comp": (nested_comp, (torch.randn(3),)),
    "mask_in_comp": (mask_in_comp, (torch.randn(6),)),
    "genexpr_sum": (genexpr_sum, (torch.randn(3),)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_comprehension_break_equals_eager(name: str) -> None:
    fn, args = CASES[name]
    torch._dynamo.reset()
    tc = CompileCounter()
    torch.compile(fn, backend=tc)(*args)
    fd = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=fd)
    for _ in range(3):
        assert_tree_equal(compiled(*args), fn(*args))
    # At least the ops torch.compile puts in graphs (ferrodyn also compiles the
    # comprehension's own frame around its break).
    assert fd.op_count >= tc.op_count


@pytest.mark.parametrize("name", ["list_comp", "dict_comp", "nested_comp", "mask_in_comp"])
def test_comprehension_graphs_are_reused(name: str) -> None:
    fn, args = CASES[name]
    fd = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=fd)
    compiled(*args)
    compiled(*args)
    frames = fd.frame_count
    for _ in range(3):
        assert_tree_equal(compiled(*args), fn(*args))
    assert fd.frame_count == frames


def test_ops_on_both_sides_of_a_comprehension_break() -> None:
    exp = ferrodyn.explain(list_comp, torch.randn(3))
    assert exp.graph_count >= 2
    assert sum(exp.ops_per_graph) >= 3  # y = x + 1 before, the sum after, the body between


def test_list_built_across_splits_keeps_every_item() -> None:
    """Regression: the list a comprehension builds is handed from one resume function to the
    next; appends made in a resume function are applied to it (they were lost)."""

    def fn(x: torch.Tensor) -> int:
        return len([t * 2 + zlib.crc32(b"f") % 2 for t in (x, x + 1, x + 2, x + 3)])

    assert ferrodyn.compile(fn, backend="eager")(torch.randn(2)) == 4


def _builds_then_breaks(x: torch.Tensor) -> list[torch.Tensor]:
    acc = []
    acc.append(x * 2)
    d = {"k": x + 1}
    d["j"] = x - 1
    zlib.crc32(b"helper")  # breaks after mutating only what it built
    acc.append(d["k"] * d["j"])
    return acc


def test_callee_that_mutated_only_its_own_containers_still_splits() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x.sin()
        out = _builds_then_breaks(y)
        return out[0] + out[1] + y

    x = torch.randn(3)
    exp = ferrodyn.explain(fn, x)
    names = dict(zip(exp.graph_names, exp.ops_per_graph, strict=True))
    # The caller split at the call (its graph holds the sin), and the helper ran through
    # its own compiled wrapper (it was refused before: the whole caller ran eagerly).
    assert any(n.endswith("<locals>.fn") and k > 0 for n, k in names.items()), names
    assert any("_builds_then_breaks" in n for n in names), names
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        assert_tree_equal(compiled(x), fn(x))


class _Collector:
    """Like transformers' CompileableContextVar: a global object written while compiling."""

    def __init__(self) -> None:
        self.value: Any = None
        self.active = False


_COLLECTOR = _Collector()


def _sets_state_then_breaks(x: torch.Tensor) -> torch.Tensor:
    _COLLECTOR.value = [1]
    _COLLECTOR.active = True
    zlib.crc32(b"after-store")  # breaks after storing attributes of an existing object
    return x * 3


def test_callee_attribute_stores_are_redone_natively_not_replayed() -> None:
    """The breaking call's own attribute stores are rolled back from the trace (the call
    re-runs natively and makes them once): the caller still splits, state equals eager."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x.cos()
        z = _sets_state_then_breaks(y)
        return z + y

    x = torch.randn(3)
    expected = fn(x)
    _COLLECTOR.value, _COLLECTOR.active = None, False
    exp = ferrodyn.explain(fn, x)
    names = dict(zip(exp.graph_names, exp.ops_per_graph, strict=True))
    assert any(n.endswith("<locals>.fn") and k > 0 for n, k in names.items()), names
    _COLLECTOR.value, _COLLECTOR.active = None, False
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        assert_tree_equal(compiled(x), expected)
        assert _COLLECTOR.value == [1] and _COLLECTOR.active
        _COLLECTOR.value, _COLLECTOR.active = None, False
