"""Objects whose classes have `__slots__` somewhere in their MRO but keep an instance
`__dict__` (every `abc.ABC` and `collections.abc` subclass: their `__slots__ = ()`):
attribute stores to non-slot names are plain dict stores, traced and replayed without a
graph break (transformers' cache layers: `self.keys = ...` on a `DynamicLayer`); a store to a
real slot is recorded and replayed too (the slot's C descriptor stores it)."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import ferrodyn
import torch
import torch._dynamo
from _helpers import assert_tree_equal


class LayerBase(abc.ABC):
    __slots__ = ()


class Layer(LayerBase):
    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.ready = False

    def update(self, k: torch.Tensor) -> torch.Tensor:
        if not self.ready:
            self.keys = k
            self.ready = True
        else:
            assert self.keys is not None
            self.keys = torch.cat([self.keys, k])
        return self.keys


class Slotted:
    __slots__ = ("__dict__", "a")

    def __init__(self) -> None:
        self.a = 0


class View(Sequence):
    def __init__(self, items: list[torch.Tensor]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]


def _counts(fn: Any, make_args: Any) -> tuple[Any, Any]:
    """Graph counters of ferrodyn and torch.compile, each called on fresh arguments."""
    torch._dynamo.reset()
    fd = ferrodyn.testing.CompileCounter()
    tc = ferrodyn.testing.CompileCounter()  # the same op count on both sides
    ferrodyn.compile(fn, backend=fd)(*make_args())
    torch.compile(fn, backend=tc)(*make_args())
    return fd, tc


def test_stores_on_an_abc_subclass_instance_are_traced_and_replayed() -> None:
    def step(layer: Layer, k: torch.Tensor) -> torch.Tensor:
        return layer.update(k * 2).sum(0)

    x = torch.randn(2, 3)
    eager, compiled = Layer(), Layer()
    cf = ferrodyn.compile(step, backend="eager")
    for _ in range(3):
        assert_tree_equal(cf(compiled, x), step(eager, x))
        assert compiled.ready == eager.ready
        assert_tree_equal(compiled.keys, eager.keys)
    assert ferrodyn.explain(step)(Layer(), x).graph_break_count == 0
    fd, tc = _counts(step, lambda: (Layer(), x))
    assert fd.frame_count == tc.frame_count == 1
    assert fd.op_count == tc.op_count


def test_store_to_a_real_slot_equals_eager() -> None:
    def f(o: Slotted, x: torch.Tensor) -> torch.Tensor:
        o.a = o.a + 1
        o.b = x.sum()  # a dict attribute next to the slot
        return x * o.a

    x = torch.randn(3)
    eager, compiled = Slotted(), Slotted()
    cf = ferrodyn.compile(f, backend="eager")
    for _ in range(2):
        assert_tree_equal(cf(compiled, x), f(eager, x))
        assert compiled.a == eager.a
        assert_tree_equal(compiled.b, eager.b)


def test_collections_abc_subclass_built_in_the_trace() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        v = View([x, x + 1])
        return v[0] * v[1], len(v)

    x = torch.randn(3)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))
    fd, tc = _counts(f, lambda: (x,))
    assert fd.frame_count <= tc.frame_count
    assert fd.op_count >= tc.op_count


class OnlySlots:
    __slots__ = ("a",)


def test_slot_store_without_a_dict_is_traced_and_other_names_raise_like_eager() -> None:
    def f(o: OnlySlots, x: torch.Tensor) -> torch.Tensor:
        o.a = x.sum()
        return x * o.a

    x = torch.randn(3)
    o = OnlySlots()
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(o, x), f(OnlySlots(), x))
    assert_tree_equal(o.a, x.sum())
    assert ferrodyn.explain(f)(OnlySlots(), x).graph_break_count == 0

    def g(o: OnlySlots, x: torch.Tensor) -> torch.Tensor:
        o.b = 1  # no slot, no __dict__: AttributeError, as eager
        return x

    try:
        ferrodyn.compile(g, backend="eager")(OnlySlots(), x)
    except AttributeError as e:
        assert "'b'" in str(e)
    else:
        raise AssertionError("expected AttributeError")
