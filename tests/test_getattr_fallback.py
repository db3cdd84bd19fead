"""A class's ``__getattr__`` written in Python is traced when the normal lookup fails.

``obj.name`` where ``name`` is in neither the instance dict nor the class calls
``type(obj).__getattr__(obj, name)``; ferrodyn traces that call (never runs it at trace
time) and guards that the name stays absent, so an attribute set on the instance or the
class later is seen on the next call. An ``AttributeError`` raised by ``__getattr__`` is
eager's (``hasattr``/``getattr`` with a default see it). Each test compares with eager and
counts graphs and breaks.
"""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal


class Namespace:
    def __init__(self, **fields: Any) -> None:
        self._fields = dict(fields)

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__["_fields"]
        if name in fields:
            return fields[name]
        raise AttributeError(f"no field {name}")


class Wrapper:
    """Forwards unknown attributes to a wrapped object (a common proxy pattern)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Inner:
    def __init__(self) -> None:
        self.scale = 3.0


class Calls:
    def __init__(self) -> None:
        self.n = 0

    def __getattr__(self, name: str) -> Any:
        self.n += 1
        return len(name)


def test_fallback_value_in_one_graph() -> None:
    def f(x, ns):
        return x * ns.alpha + ns.beta

    ns = Namespace(alpha=2.0, beta=1.0)
    x = torch.arange(3.0)
    e = ferrodyn.explain(f)(x, ns)
    assert (e.graph_count, e.graph_break_count) == (1, 0)
    assert_tree_equal(ferrodyn.compile(f, backend="eager", fullgraph=True)(x, ns), f(x, ns))


def test_proxy_forwards_to_inner_object() -> None:
    def f(x, w):
        return x * w.scale

    w = Wrapper(Inner())
    x = torch.ones(2)
    compiled = ferrodyn.compile(f, backend="eager", fullgraph=True)
    assert_tree_equal(compiled(x, w), f(x, w))
    w.inner.scale = 5.0
    assert_tree_equal(compiled(x, w), f(x, w))


def test_attribute_added_later_is_seen() -> None:
    def f(x, ns):
        return x * ns.alpha

    ns = Namespace(alpha=2.0)
    x = torch.ones(2)
    compiled = ferrodyn.compile(f, backend="eager")
    assert_tree_equal(compiled(x, ns), x * 2.0)
    ns.alpha = 7.0  # now in the instance dict: __getattr__ is no longer called
    assert_tree_equal(compiled(x, ns), x * 7.0)
    del ns.alpha
    Namespace.alpha = 9.0  # a class attribute shadows the fallback too
    try:
        assert_tree_equal(compiled(x, ns), x * 9.0)
    finally:
        del Namespace.alpha
    assert_tree_equal(compiled(x, ns), x * 2.0)


def test_attribute_error_from_getattr_is_eagers() -> None:
    def f(x, ns):
        a = getattr(ns, "missing", 4.0)
        b = hasattr(ns, "missing")
        try:
            ns.other  # noqa: B018 - the lookup is what is tested
        except AttributeError as err:
            return x * a, b, str(err)
        return x, b, ""

    ns = Namespace(alpha=1.0)
    x = torch.ones(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x, ns), f(x, ns))


def test_side_effects_inside_getattr_happen_once() -> None:
    def f(x, c):
        return x + c.abc + c.de

    a, b = Calls(), Calls()
    x = torch.zeros(2)
    expected = f(x, a)
    got = ferrodyn.compile(f, backend="eager")(x, b)
    assert_tree_equal(got, expected)
    assert a.n == b.n == 2


def test_object_getattribute_does_not_fall_back() -> None:
    def f(x, ns):
        try:
            object.__getattribute__(ns, "alpha")
        except AttributeError:
            return x - 1
        return x + 1

    ns = Namespace(alpha=1.0)
    x = torch.zeros(2)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x, ns), f(x, ns))


def test_thread_local_attributes_are_read_per_call() -> None:
    import threading

    loc = threading.local()
    loc.scale = 2.0

    def f(x):
        return x * loc.scale

    x = torch.ones(2)
    compiled = ferrodyn.compile(f, backend="eager")
    e = ferrodyn.explain(f)(x)
    assert (e.graph_count, e.graph_break_count) == (1, 0)
    assert_tree_equal(compiled(x), x * 2.0)
    loc.scale = 5.0
    assert_tree_equal(compiled(x), x * 5.0)
    seen: list[Any] = []

    def other_thread() -> None:
        loc.scale = 11.0  # this thread's own value
        seen.append(compiled(x))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert_tree_equal(seen[0], x * 11.0)
    assert_tree_equal(compiled(x), x * 5.0)


class Lazy:
    def __init__(self, base: float) -> None:
        self.base = base

    def __getattr__(self, name: str) -> Any:
        if name == "double":
            return self.base * 2
        raise AttributeError(name)


def test_getattr_on_an_object_made_in_the_trace() -> None:
    def f(x):
        obj = Lazy(1.5)
        first = obj.double
        obj.double = 10.0  # now an instance attribute: __getattr__ is no longer reached
        return x * first + obj.double, hasattr(obj, "nothing")

    x = torch.ones(2)
    e = ferrodyn.explain(f)(x)
    assert (e.graph_count, e.graph_break_count) == (1, 0)
    assert_tree_equal(ferrodyn.compile(f, backend="eager", fullgraph=True)(x), f(x))
