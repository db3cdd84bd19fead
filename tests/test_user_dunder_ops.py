"""Operators and comparisons on user objects follow CPython's protocol and are traced, never
run at trace time (checklist items on operator dunders and reflected operators, 1-52): an
object from the frame is a constant to the tracer, yet `a == b` must call its `__eq__` on
every call (its answer depends on state the guards do not see), and objects made in the
trace compare by their `__eq__`, not by identity."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

X = torch.randn(3)


def _torch_graphs(fn: Callable[..., Any], *args: Any) -> int:
    import torch._dynamo
    import torch._dynamo.testing

    torch._dynamo.reset()
    cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=cnt)(*args)
    torch._dynamo.reset()
    return cnt.frame_count


class Box:
    calls = 0

    def __init__(self, v: Any) -> None:
        self.v = v

    def __eq__(self, other: object) -> Any:
        Box.calls += 1
        if not isinstance(other, Box):
            return NotImplemented
        return self.v == other.v

    __hash__ = None  # type: ignore[assignment]

    def __lt__(self, other: Any) -> Any:
        if not isinstance(other, Box):
            return NotImplemented
        return self.v < other.v

    def __add__(self, other: Any) -> Any:
        if isinstance(other, (int, float)):
            return Box(self.v + other)
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, (int, float)):
            return Box(other + self.v)
        return NotImplemented


def test_eq_of_frame_objects_is_called_on_every_call() -> None:
    def fn(x: torch.Tensor, a: Box, b: Box) -> Any:
        return x + 1, a == b, a != b

    a, b = Box(1), Box(1)
    compiled = ferrodyn.compile(fn, backend="eager")
    assert compiled(X, a, b)[1:] == (True, False)
    b.v = 2  # not an attribute the trace guards: the answer must still follow
    assert compiled(X, a, b)[1:] == fn(X, a, b)[1:] == (False, True)


def test_eq_side_effects_happen_as_often_as_in_eager() -> None:
    def fn(x: torch.Tensor, a: Box, b: Box) -> Any:
        return x + 1, a == b

    a, b = Box(1), Box(1)
    Box.calls = 0
    fn(X, a, b)
    eager_calls = Box.calls
    Box.calls = 0
    compiled = ferrodyn.compile(fn, backend="eager")
    compiled(X, a, b)
    compiled(X, a, b)
    assert Box.calls == 2 * eager_calls


class Always:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def made_in_trace_eq(x: torch.Tensor) -> Any:
    return x + 1, Always() == Always(), Always() != Always(), Box(2) == Box(2)


def made_in_trace_lists(x: torch.Tensor) -> Any:
    return x + 1, [Always()] == [Always()], (1, Box(3)) == (1, Box(3)), Box(3) in [Box(1), Box(3)]


@dataclasses.dataclass
class Point:
    x: int
    y: int


def dataclass_eq(x: torch.Tensor) -> Any:
    return x + 1, Point(1, 2) == Point(1, 2), Point(1, 2) == Point(2, 1)


def reflected_add(x: torch.Tensor) -> Any:
    b = 1 + Box(2)
    c = Box(2) + 1.5
    return x + b.v + c.v


class Plain:
    pass


def identity_fallback(x: torch.Tensor) -> Any:
    p = Plain()
    return x + 1, p == p, p == Plain(), p != Plain(), p == 1  # noqa: PLR0124 - identity fallback


CASES = [made_in_trace_eq, made_in_trace_lists, dataclass_eq, reflected_add, identity_fallback]


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_operators_on_objects_made_in_the_trace(fn: Any) -> None:
    expected = fn(X)
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count == 0, explained.break_reasons
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(X), expected)
    assert cnt.frame_count == 1 == _torch_graphs(fn, X)


def test_subclass_reflected_method_goes_first() -> None:
    order: list[str] = []

    class A:
        def __add__(self, other: Any) -> Any:
            order.append("A.__add__")
            return 1

        def __eq__(self, other: object) -> Any:
            order.append("A.__eq__")
            return NotImplemented

    class B(A):
        def __radd__(self, other: Any) -> Any:
            order.append("B.__radd__")
            return 2

        def __eq__(self, other: object) -> Any:
            order.append("B.__eq__")
            return True

    def fn(x: torch.Tensor) -> Any:
        return x + (A() + B()), A() == B(), B() == A()

    expected = fn(X)
    eager_order = list(order)
    order.clear()
    assert_tree_equal(ferrodyn.compile(fn, backend="eager")(X), expected)
    assert order == eager_order


def test_unsupported_ordering_raises_eagers_type_error() -> None:
    def fn(x: torch.Tensor) -> Any:
        return x + 1, Plain() < Plain()

    with pytest.raises(TypeError) as eager:
        fn(X)
    with pytest.raises(TypeError) as compiled:
        ferrodyn.compile(fn, backend="eager")(X)
    assert str(compiled.value) == str(eager.value)


def test_missing_operator_raises_eagers_type_error() -> None:
    def fn(x: torch.Tensor) -> Any:
        return x + 1, Plain() - Plain()

    with pytest.raises(TypeError) as eager:
        fn(X)
    with pytest.raises(TypeError) as compiled:
        ferrodyn.compile(fn, backend="eager")(X)
    assert str(compiled.value) == str(eager.value)


def test_inplace_operator_falls_back_to_the_binary_one() -> None:
    class Acc:
        def __init__(self) -> None:
            self.n = 0

        def __iadd__(self, k: int) -> Acc:  # noqa: PYI034 - a local class
            self.n += k
            return self

    def fn(x: torch.Tensor, acc: Acc) -> Any:
        acc += 2
        b = Box(1)
        b += 5  # no __iadd__: Box.__add__ makes a new Box
        return x + acc.n + b.v

    acc_e, acc_c = Acc(), Acc()
    expected = fn(X, acc_e)
    assert_tree_equal(ferrodyn.compile(fn, backend="eager")(X, acc_c), expected)
    assert acc_c.n == acc_e.n == 2


def test_membership_uses_eq_of_frame_objects() -> None:
    def fn(x: torch.Tensor, items: list, probe: Box) -> Any:
        return x + 1, probe in items

    items = [Box(1), Box(2)]
    probe = Box(2)
    compiled = ferrodyn.compile(fn, backend="eager")
    assert compiled(X, items, probe)[1] is True
    probe.v = 5
    assert compiled(X, items, probe)[1] is fn(X, items, probe)[1] is False


class Num:
    """Every conversion reads `v`, which changes between calls without a guard seeing it."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __neg__(self) -> int:
        return -self.v

    def __abs__(self) -> int:
        return abs(self.v)

    def __repr__(self) -> str:
        return f"Num({self.v})"

    def __format__(self, spec: str) -> str:
        return f"<{self.v}{spec}>"

    def __index__(self) -> int:
        return self.v

    def __hash__(self) -> int:
        return self.v


CONVERSIONS: dict[str, Callable[[torch.Tensor, Num], Any]] = {
    "neg": lambda x, n: (x + 1, -n),
    "abs": lambda x, n: (x + 1, abs(n)),
    "repr": lambda x, n: (x + 1, repr(n)),
    "str": lambda x, n: (x + 1, str(n)),
    "fstring": lambda x, n: (x + 1, f"{n}|{n:>3}|{n!r}"),
    "hash": lambda x, n: (x + 1, hash(n)),
    "range": lambda x, n: (x + 1, list(range(n))),
    "repr_of_list": lambda x, n: (x + 1, repr([n, 1])),
}


@pytest.mark.parametrize("name", list(CONVERSIONS))
def test_conversions_of_frame_objects_follow_their_state(name: str) -> None:
    fn = CONVERSIONS[name]
    n = Num(2)
    compiled = ferrodyn.compile(fn, backend="eager")
    assert_tree_equal(compiled(X, n), fn(X, n))
    n.v = 3  # unguarded state: the compiled call must run the dunder again
    assert_tree_equal(compiled(X, n), fn(X, n))


INSTANCE_FLAG = {"on": True}


class CheckingMeta(type):
    def __instancecheck__(cls, obj: object) -> bool:
        return INSTANCE_FLAG["on"]


class Checked(metaclass=CheckingMeta):
    pass


def test_metaclass_instancecheck_in_python_is_asked_on_every_call() -> None:
    def fn(x: torch.Tensor, p: Any) -> Any:
        return x + 1, isinstance(p, Checked)

    compiled = ferrodyn.compile(fn, backend="eager")
    p = Plain()
    try:
        assert compiled(X, p)[1] is True
        INSTANCE_FLAG["on"] = False
        assert compiled(X, p)[1] is fn(X, p)[1] is False
    finally:
        INSTANCE_FLAG["on"] = True


class Key:
    def __init__(self, v: int) -> None:
        self.v = v

    def __hash__(self) -> int:
        return self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other.v == self.v


def test_dict_keyed_by_objects_with_python_hash_follows_their_state() -> None:
    def fn(x: torch.Tensor, k: Key) -> Any:
        d = {k: 1}
        return x + 1, d.get(Key(3), 0)

    k = Key(2)
    compiled = ferrodyn.compile(fn, backend="eager")
    assert compiled(X, k)[1] == fn(X, k)[1] == 0
    k.v = 3
    assert compiled(X, k)[1] == fn(X, k)[1] == 1


def test_dict_update_from_pairs() -> None:
    lin = torch.nn.Linear(3, 2)

    def fn(x: torch.Tensor) -> Any:
        d: dict[str, Any] = {}
        d.update(lin.named_parameters())
        d.update([("x", x)])
        d.update((k + "_2", v) for k, v in [("w", 2)])
        return sum(v.sum() for k, v in d.items() if k != "w_2") + d["w_2"]

    expected = fn(X)
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert_tree_equal(ferrodyn.compile(fn, backend="eager")(X), expected)
    assert _torch_graphs(fn, X) == 1
