"""Reads of an existing dict subclass's own storage (dict/OrderedDict methods it does not
override: keys, items, values, get, [], in, len, and `super().get(...)` inside the
subclass) are traced with guards on its keys (in order) and on each value read, instead of
breaking the graph. transformers' ModelOutput (an OrderedDict subclass) and its model
registries are read this way. Also `id()` of an input object: a constant, identity guarded."""

from __future__ import annotations

import collections
from typing import Any

import ferrodyn
import torch
from torch._dynamo.testing import CompileCounter


class Output(collections.OrderedDict):  # type: ignore[type-arg]
    """Like transformers' ModelOutput: a Python __getitem__ over the dict's own items."""

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, str):
            return dict(self.items())[k]
        return tuple(self[key] for key in self.keys())[k]


class Registry(dict):  # type: ignore[type-arg]
    def get(self, key: Any) -> Any:  # type: ignore[override]
        return super().get(str(key)) or {}


def reads(x: torch.Tensor, out: Output) -> torch.Tensor:
    a = out[0] + out["b"]
    n = len(out) + ("b" in out) + len(list(out.values()))
    return a * n + sum(v.sum() for k, v in out.items() if k != "a")


def run(fn: Any, *args: Any) -> CompileCounter:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    torch.testing.assert_close(compiled(*args), fn(*args))
    return cnt


def make() -> Output:
    o = Output()
    o["a"] = torch.randn(3)
    o["b"] = torch.randn(3)
    return o


def test_ordered_dict_subclass_reads_in_one_graph() -> None:
    assert run(reads, torch.randn(3), make()).frame_count == 1


def test_new_key_or_order_recompiles() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(reads, backend=cnt)
    x, o = torch.randn(3), make()
    compiled(x, o)
    o["c"] = torch.randn(3)
    torch.testing.assert_close(compiled(x, o), reads(x, o))
    o.move_to_end("a")  # OrderedDict order, not the dict storage's
    torch.testing.assert_close(compiled(x, o), reads(x, o))
    assert cnt.frame_count == 3


def test_value_change_is_seen() -> None:
    compiled = ferrodyn.compile(reads, backend="eager")
    x, o = torch.randn(3), make()
    compiled(x, o)
    o["b"] = torch.randn(3)
    torch.testing.assert_close(compiled(x, o), reads(x, o))
    o["b"] = torch.randn(2, 3)  # a new shape
    torch.testing.assert_close(compiled(x, o), reads(x, o))


def test_super_get_in_a_dict_subclass() -> None:
    def fn(x: torch.Tensor, r: Registry) -> torch.Tensor:
        return x * len(r.get("model")) + len(r.get("other"))

    r = Registry()
    r["model"] = {"a": 1, "b": 2}
    assert run(fn, torch.randn(2), r).frame_count == 1
    compiled = ferrodyn.compile(fn, backend="eager")
    compiled(torch.randn(2), r)
    r["other"] = {"z": 0}
    x = torch.randn(2)
    torch.testing.assert_close(compiled(x, r), fn(x, r))


def test_id_of_an_input_is_guarded() -> None:
    class Box:
        pass

    def fn(x: torch.Tensor, a: Box, b: Box) -> torch.Tensor:
        return x + (1 if id(a) == id(b) else 2)

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    a, b = Box(), Box()
    x = torch.randn(2)
    for args in ((a, b), (a, a), (b, b), (a, b)):
        torch.testing.assert_close(compiled(x, *args), fn(x, *args))


def test_is_between_inputs_is_guarded_both_ways() -> None:
    """`a is b` between two input objects: sameness and difference both hold on later
    calls (a trace made with two objects is not reused with one, nor the reverse)."""

    class Box:
        pass

    def fn(x: torch.Tensor, a: Box, b: Box) -> torch.Tensor:
        return x + (1 if a is b else 2)

    compiled = ferrodyn.compile(fn, backend="eager")
    a, b = Box(), Box()
    x = torch.zeros(2)
    for args in ((a, b), (a, a), (b, b), (a, b), (b, a)):
        torch.testing.assert_close(compiled(x, *args), fn(x, *args))
