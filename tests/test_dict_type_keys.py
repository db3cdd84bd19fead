"""Dicts keyed by classes (dispatch tables, registries) read inside a compiled function:
each item is guarded through its class key, so a change recompiles instead of going stale."""

from __future__ import annotations

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter


class Foo:
    pass


class Bar:
    pass


REG: dict[object, int] = {}


def lookup(x: torch.Tensor) -> torch.Tensor:
    return x + REG[Foo] + REG.get(Bar, 10) + REG.get(int, 0)


def test_class_keyed_dict_is_read_and_guarded() -> None:
    REG.clear()
    REG.update({int: 1, Foo: 2, "s": 3})
    cnt = CompileCounter()
    f = ferrodyn.compile(lookup, backend=cnt)
    x = torch.zeros(1)
    assert torch.equal(f(x), lookup(x))
    assert cnt.frame_count == 1 and cnt.op_count > 0  # no break: one graph with the adds
    REG[Foo] = 5  # an item changed: recompile, new value
    assert torch.equal(f(x), lookup(x)) and f(x).item() == 16
    assert cnt.frame_count == 2
    REG[Bar] = 7  # a key added: recompile
    assert torch.equal(f(x), lookup(x)) and f(x).item() == 13
    assert cnt.frame_count == 3
    assert torch.equal(f(x), lookup(x)) and cnt.frame_count == 3


def test_class_with_custom_hash_is_not_a_key() -> None:
    class Meta(type):
        def __hash__(cls) -> int:
            return 1

        def __eq__(cls, other: object) -> bool:
            return cls is other

    class Odd(metaclass=Meta):
        pass

    table = {Odd: 4}

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + table[Odd]

    x = torch.zeros(1)
    # Not modelled (its hash runs Python code): still the eager answer.
    assert torch.equal(ferrodyn.compile(f, backend="eager")(x), f(x))
