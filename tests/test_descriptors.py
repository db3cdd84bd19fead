"""Descriptors whose `__get__` is Python code: traced as a call of
`type(d).__get__(d, obj, type(obj))`, never run while tracing (checklist items on attribute
lookup: data descriptors before the instance dict, non-data descriptors after it). The
descriptor is guarded through `type(obj).__mro__[i].__dict__[name]`, so a guard never runs
it either."""

from __future__ import annotations

import enum
import functools
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal

CALLS: list[str] = []


class Counted:
    """A non-data descriptor with a visible side effect."""

    def __get__(self, obj: Any, typ: Any = None) -> Any:
        CALLS.append("get")
        if obj is None:
            return self
        return obj.base * 2


class Typed:
    """A data descriptor storing into a private instance attribute."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.private = "_" + name

    def __get__(self, obj: Any, typ: Any = None) -> Any:
        if obj is None:
            return self
        return getattr(obj, self.private)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(obj, self.private, value)


class Holder:
    counted = Counted()
    weight = Typed()

    def __init__(self) -> None:
        self.base = 1.5
        self.weight = 2.0


class Child(Holder):
    pass


class MyProperty(property):
    pass


class WithSubProperty:
    @MyProperty
    def value(self) -> float:
        return 5.0


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def _counter() -> ferrodyn.testing.CompileCounter:
    return ferrodyn.testing.CompileCounter()


def test_descriptor_get_runs_once_per_call_like_eager() -> None:
    h = Holder()

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * h.counted

    x = torch.ones(3)
    CALLS.clear()
    expected = f(x)
    eager_calls = list(CALLS)
    cnt = _counter()
    g = ferrodyn.compile(f, backend=cnt)
    for _ in range(3):
        CALLS.clear()
        assert_tree_equal(g(x), expected)
        assert CALLS == eager_calls
    assert cnt.frame_count == 1
    assert cnt.op_count == 1


def test_data_descriptor_reads_and_recompiles_on_change() -> None:
    h = Holder()

    def f(x: torch.Tensor, obj: Holder) -> torch.Tensor:
        return x * obj.weight

    cnt = _counter()
    g = ferrodyn.compile(f, backend=cnt)
    x = torch.ones(2)
    assert_tree_equal(g(x, h), f(x, h))
    h.weight = 7.0
    assert_tree_equal(g(x, h), f(x, h))
    assert cnt.frame_count == 2


def test_descriptor_inherited_from_a_base_class() -> None:
    c = Child()

    def f(x: torch.Tensor, obj: Holder) -> torch.Tensor:
        return x + obj.weight + obj.counted

    CALLS.clear()
    expected = f(torch.ones(2), c)
    n = len(CALLS)
    CALLS.clear()
    cnt = _counter()
    got = ferrodyn.compile(f, backend=cnt)(torch.ones(2), c)
    assert_tree_equal(got, expected)
    assert len(CALLS) == n
    assert cnt.frame_count == 1


def test_instance_attribute_shadowing_a_non_data_descriptor_recompiles() -> None:
    h = Holder()

    def f(x: torch.Tensor, obj: Holder) -> torch.Tensor:
        return x * obj.counted

    g = ferrodyn.compile(f, backend="eager")
    x = torch.ones(2)
    assert_tree_equal(g(x, h), f(x, h))
    h.counted = 10.0  # the instance dict now wins over the non-data descriptor
    assert_tree_equal(g(x, h), x * 10.0)


def test_replaced_get_recompiles() -> None:
    class D:
        def __get__(self, obj: Any, typ: Any = None) -> float:
            return 2.0

    class O:
        d = D()

    o = O()

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * o.d

    g = ferrodyn.compile(f, backend="eager")
    x = torch.ones(2)
    assert_tree_equal(g(x), x * 2.0)
    D.__get__ = lambda self, obj, typ=None: 3.0  # type: ignore[method-assign,assignment]
    assert_tree_equal(g(x), x * 3.0)


def test_property_subclass_is_traced_like_property() -> None:
    w = WithSubProperty()

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + w.value

    cnt = _counter()
    assert_tree_equal(ferrodyn.compile(f, backend=cnt)(torch.ones(2)), f(torch.ones(2)))
    assert cnt.frame_count == 1


def test_class_level_descriptor_access_is_not_run_while_tracing() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        return x + 1, isinstance(Holder.counted, Counted)

    CALLS.clear()
    expected = f(torch.ones(2))
    n = len(CALLS)
    CALLS.clear()
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2))
    assert_tree_equal(got, expected)
    assert len(CALLS) == n


def test_enum_value_and_cached_property() -> None:
    class Lazy:
        def __init__(self) -> None:
            self.n = 0

        @functools.cached_property
        def scale(self) -> float:
            self.n += 1
            return 3.0

    def f(x: torch.Tensor, lazy: Lazy) -> torch.Tensor:
        y = x * lazy.scale + lazy.scale
        if Color.RED.value == 1:
            y = y + 1
        return y

    a, b = Lazy(), Lazy()
    expected = f(torch.ones(2), a)
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2), b)
    assert_tree_equal(got, expected)
    assert (a.n, a.__dict__) == (b.n, b.__dict__)


class Clamped:
    """A data descriptor written in Python: stores a clamped copy under `_<name>`."""

    def __set_name__(self, owner: Any, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            raise AttributeError("class access runs user code: never at trace time")
        return getattr(obj, self.slot)

    def __set__(self, obj: Any, value: torch.Tensor) -> None:
        setattr(obj, self.slot, value.clamp(min=0))

    def __delete__(self, obj: Any) -> None:
        delattr(obj, self.slot)


class HasClamped:
    level = Clamped()


class ChildOfClamped(HasClamped):
    pass


def _store_and_read(x: torch.Tensor, o: Any) -> torch.Tensor:
    o.level = x - 1
    return o.level * 2


def test_data_descriptor_set_is_traced_once() -> None:
    for cls in (HasClamped, ChildOfClamped):
        o, ref = cls(), cls()
        x = torch.arange(3.0)
        explained = ferrodyn.explain(_store_and_read)(x, cls())
        assert explained.graph_break_count == 0
        got = ferrodyn.compile(_store_and_read, backend="eager")(x, o)
        torch.testing.assert_close(got, _store_and_read(x, ref))
        torch.testing.assert_close(o._level, ref._level)


def test_data_descriptor_delete_is_traced() -> None:
    def fn(x: torch.Tensor, o: HasClamped) -> torch.Tensor:
        del o.level
        return x + 1

    o, ref = HasClamped(), HasClamped()
    o.level = torch.ones(1)
    ref.level = torch.ones(1)
    torch.testing.assert_close(
        ferrodyn.compile(fn, backend="eager")(torch.ones(1), o), fn(torch.ones(1), ref)
    )
    assert not hasattr(o, "_level") and not hasattr(ref, "_level")


def test_replaced_descriptor_setter_recompiles() -> None:
    class Local:
        level = Clamped()

    compiled = ferrodyn.compile(_store_and_read, backend="eager")
    x = torch.arange(3.0)
    compiled(x, Local())
    original = Clamped.__set__
    try:
        Clamped.__set__ = lambda self, obj, v: setattr(obj, self.slot, v * 100)  # type: ignore[method-assign]
        torch.testing.assert_close(compiled(x, Local()), _store_and_read(x, Local()))
    finally:
        Clamped.__set__ = original  # type: ignore[method-assign]


def test_pybind_property_is_read_and_guarded() -> None:
    # A C (pybind11 def_readwrite) property: read directly, no break; its value is guarded.
    def fn(x: torch.Tensor, cfg: Any) -> torch.Tensor:
        return x * cfg.num_iters

    cfg = torch.BenchmarkConfig()
    cfg.num_iters = 4
    compiled = ferrodyn.compile(fn, backend="eager")
    torch.testing.assert_close(compiled(torch.ones(2), cfg), torch.ones(2) * 4)
    assert ferrodyn.explain(fn)(torch.ones(2), cfg).graph_break_count == 0
    cfg.num_iters = 7
    torch.testing.assert_close(compiled(torch.ones(2), cfg), torch.ones(2) * 7)
