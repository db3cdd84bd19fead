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


SENTINEL = object()


class Token:
    """Hashed and compared by identity (object's own __hash__/__eq__)."""


def test_identity_hashed_objects_are_keys_too() -> None:
    import typing

    tok = object()
    table: dict[object, int] = {typing.Union: 1, SENTINEL: 2, tok: 3, list: 4}

    def f(x: torch.Tensor, origin: object) -> torch.Tensor:
        return x + table.get(origin, 0) + table[SENTINEL] + table[tok]

    cnt = CompileCounter()
    g = ferrodyn.compile(f, backend=cnt)
    x = torch.zeros(1)
    for origin in (typing.Union, list, typing.Literal):
        assert torch.equal(g(x, origin), f(x, origin))
    assert cnt.op_count > 0
    table[tok] = 30  # an item changed: recompile, new value
    assert torch.equal(g(x, list), f(x, list)) and g(x, list).item() == 36
    del table[SENTINEL]  # a key removed: the eager KeyError
    try:
        f(x, list)
    except KeyError as e:
        expected = e
    try:
        g(x, list)
    except KeyError as e:
        assert e.args == expected.args
    else:
        raise AssertionError("no KeyError")


def test_user_objects_as_keys_give_eagers_answer() -> None:
    # Not modelled as keys (they would be kept alive by the guards): eager's answer.
    a, b = Token(), Token()
    table = {a: 1, b: 2}

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + table[a] * 10 + table[b]

    x = torch.zeros(1)
    assert torch.equal(ferrodyn.compile(f, backend="eager")(x), f(x))


def test_object_with_its_own_eq_is_not_a_key() -> None:
    class Named:
        def __init__(self, n: str) -> None:
            self.n = n

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Named) and other.n == self.n

        def __hash__(self) -> int:
            return hash(self.n)

    table = {Named("a"): 1}

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + len(table)

    x = torch.zeros(1)
    assert torch.equal(ferrodyn.compile(f, backend="eager")(x), f(x))
