"""Checklist group A (classes and objects), items 1-21: one small program per item.

Each test runs a *scenario* three times: eagerly, through ``ferrodyn.compile`` and through
``torch.compile`` (both with a counting backend).  The scenario builds fresh objects (and
classes, where the test mutates them), makes the calls the item is about, and returns the
results plus the objects' state, so ferrodyn's run is compared with eager's value by value;
ferrodyn's graph count must equal torch.compile's on the same scenario.  Items 22-41 are in
``test_checklist_classes_2.py``, 42-52 in ``test_checklist_classes_3.py``.
"""

from __future__ import annotations

import collections
import functools
import threading
import warnings
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal

# compares ferrodyn with torch.compile itself: nothing to check against the reference run
pytestmark = pytest.mark.ferrodyn_contract
from torch._dynamo.utils import counters

TorchCounter = torch._dynamo.testing.CompileCounter


def outcome(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or ``("raised", type name, message)`` if it raises."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001
        return ("raised", type(e).__name__, str(e))


def check(
    scenario: Any,
    *,
    graphs: int | None = None,
    breaks: int | None = None,
    ops: bool = False,
    torch_differs: bool = False,
) -> Any:
    """Run ``scenario(compile)`` eagerly, with ferrodyn and with torch.compile.

    ``compile`` maps a function to the function to call.  ferrodyn's returned tree must
    equal eager's, its graph / break counts ``graphs`` / ``breaks`` (the item's statement) and
    torch.compile's, unless ``torch_differs`` (torch.compile is wrong or falls back there;
    the test says how).
    """
    expected = scenario(lambda f: f)
    fd = ferrodyn.testing.CompileCounter()
    fd_breaks: list[str] = []
    unsubscribe = ferrodyn.observe.subscribe(
        lambda kind, p: fd_breaks.append(str(p.get("reason"))) if kind == "break" else None
    )
    try:
        got = scenario(lambda f: ferrodyn.compile(f, backend=fd))
    finally:
        unsubscribe()
    th = TorchCounter()
    torch._dynamo.reset()
    counters.clear()
    try:
        ref = outcome(scenario, lambda f: torch.compile(f, backend=th))
    finally:
        torch._dynamo.reset()
    th_breaks = sum(counters["graph_break"].values())
    assert_tree_equal(got, expected, "ferrodyn")
    counts = (
        f"graphs: ferrodyn {fd.frame_count}, torch.compile {th.frame_count}; "
        f"breaks: ferrodyn {len(fd_breaks)} {fd_breaks}, torch.compile {th_breaks}"
    )
    if graphs is not None:
        assert fd.frame_count == graphs, counts
    if breaks is not None:
        assert len(fd_breaks) == breaks, counts
    if not torch_differs:
        assert_tree_equal(ref, expected, "torch.compile")
        assert fd.frame_count == th.frame_count, counts
        assert len(fd_breaks) == th_breaks, counts
        if ops:
            assert fd.op_count == th.op_count, f"ops: ferrodyn {fd.op_count}, torch {th.op_count}"
    fd.breaks = fd_breaks
    return fd, th


# -- 1. a method reading self.attr is inlined into one graph; its code is guarded ---------------


class Affine:
    def __init__(self, scale: float, bias: torch.Tensor) -> None:
        self.scale = scale
        self.bias = bias

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * self.scale + self.bias)


def test_item_01_method_inlined_single_graph() -> None:
    def scenario(c: Any) -> Any:
        f = c(lambda x, o: o.apply(x) + 1)
        return f(torch.arange(-2.0, 2.0), Affine(2.0, torch.ones(4)))

    fd, _ = check(scenario, graphs=1)
    assert fd.op_count >= 3  # mul, add, relu, add: the body is in the graph


def test_item_01_replacing_the_method_recompiles() -> None:
    def scenario(c: Any) -> Any:
        class A:
            def __init__(self) -> None:
                self.k = 3

            def m(self, x: torch.Tensor) -> torch.Tensor:
                return x * self.k

        f = c(lambda x, o: o.m(x))
        obj, x = A(), torch.ones(2)
        r1 = f(x, obj)
        A.m = lambda self, x: x - self.k
        return r1, f(x, obj)

    # torch.compile returns the stale result here (no guard on the local class's method)
    check(scenario, graphs=2, torch_differs=True)


# -- 2. a used instance attribute is guarded; an unused one is not -------------------------------


class Holder:
    def __init__(self) -> None:
        self.n = 2
        self.unused = "a"


def test_item_02_changing_used_attribute_recompiles() -> None:
    def scenario(c: Any) -> Any:
        f = c(lambda x, o: x * o.n)
        o, x = Holder(), torch.ones(2)
        r1 = f(x, o)
        o.n = 5
        return r1, f(x, o)

    check(scenario, graphs=2)


def test_item_02_changing_unused_attribute_does_not_recompile() -> None:
    def scenario(c: Any) -> Any:
        f = c(lambda x, o: x * o.n)
        o, x = Holder(), torch.ones(2)
        r1 = f(x, o)
        o.unused = ["something", "else"]
        o.other = 1
        return r1, f(x, o)

    check(scenario, graphs=1)


# -- 3. inherited method: guards on the instance dict and on MRO classes before the definer -----


def test_item_03_method_added_to_intermediate_class_recompiles() -> None:
    def scenario(c: Any) -> Any:
        class A:
            def m(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1

        class B(A):
            pass

        class C(B):
            pass

        f = c(lambda x, o: o.m(x) * 2)
        o, x = C(), torch.ones(2)
        r1 = f(x, o)
        B.m = lambda self, x: x - 10
        r2 = f(x, o)
        o.m = lambda x: x * 100  # instance dict shadows the class now
        return r1, r2, f(x, o)

    check(scenario, graphs=3)


# -- 4. a store on a pre-existing object is deferred, seen by later reads, applied after -------


class Plain:
    pass


def test_item_04_store_seen_in_trace_and_applied_after() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Plain) -> torch.Tensor:
            o.attr = x * 2
            o.count = o.count + 1
            return o.attr + o.count

        o = Plain()
        o.count = 1
        return c(f)(torch.ones(2), o), vars(o)

    check(scenario, graphs=1)


def test_item_04_store_before_a_break_is_visible_after_it() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Plain) -> torch.Tensor:
            o.attr = 5
            y = x.sin()
            torch._dynamo.graph_break()
            return y + o.attr

        o = Plain()
        return c(f)(torch.ones(2), o), vars(o)

    check(scenario, graphs=2)


def test_item_04_failed_fullgraph_trace_leaves_object_untouched() -> None:
    def f(x: torch.Tensor, o: Plain) -> torch.Tensor:
        o.attr = 99
        torch._dynamo.graph_break()
        return x + 1

    o = Plain()
    o.attr = 1
    with pytest.raises(ferrodyn.exc.Unsupported):
        ferrodyn.compile(f, backend="eager", fullgraph=True)(torch.ones(2), o)
    assert o.attr == 1


# -- 5. del obj.attr then obj.attr: observed AttributeError; the attribute is gone after -----


def test_item_05_delete_then_read_raises_observed_attribute_error() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Plain) -> Any:
            del o.attr
            try:
                return x + o.attr, ""
            except AttributeError as e:
                return x - 1, str(e)

        o = Plain()
        o.attr = 3
        return c(f)(torch.ones(2), o), hasattr(o, "attr")

    check(scenario, graphs=1)


# -- 6. missing attribute message; try/except AttributeError has no break -------------------


class T:
    def __init__(self) -> None:
        self.y = 1


def test_item_06_missing_attribute_caught_in_one_graph() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: T) -> Any:
            try:
                return x + o.x, ""
            except AttributeError as e:
                return x * 2, str(e)

        return c(f)(torch.ones(2), T())

    check(scenario, graphs=1)


def test_item_06_missing_attribute_uncaught_message() -> None:
    def scenario(c: Any) -> Any:
        return outcome(c(lambda x, o: x.cos() + o.x), torch.ones(2), T())

    # torch.compile runs this frame eagerly (0 graphs); only the outcome is compared
    check(scenario, torch_differs=True)


# -- 7. hasattr installs a guard; False is not a break -------------------------------------------


def test_item_07_hasattr_guard_and_no_break() -> None:
    def scenario(c: Any) -> Any:
        f = c(lambda x, o: x + 1 if hasattr(o, "x") else x - 1)
        o, x = T(), torch.ones(2)
        r1 = f(x, o)
        r2 = f(x, o)
        o.x = 0
        return r1, r2, f(x, o)

    check(scenario, graphs=2)


# -- 8. __getattr__ traced on a miss; a non-function __getattr__ breaks ----------------------


class Lazy:
    def __init__(self) -> None:
        self.misses: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.misses.append(name)
        if name.startswith("w_"):
            return len(name)
        raise AttributeError(name)


class CallableHook:
    def __call__(self, name: str) -> int:  # not a descriptor: called without the object
        return len(name) * 10


class OddGetattr:
    __getattr__ = CallableHook()


def test_item_08_getattr_traced_on_miss() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Lazy) -> Any:
            return x * o.w_abc + getattr(o, "zzz", 5)

        o = Lazy()
        return c(f)(torch.ones(2), o), o.misses

    # torch.compile fails here: "Guard failed on the same frame it was created"
    check(scenario, graphs=1, torch_differs=True)


def test_item_08_non_function_getattr() -> None:
    def scenario(c: Any) -> Any:
        return c(lambda x, o: x.sin() * o.abc + 1)(torch.ones(2), OddGetattr())

    # the item: a graph break (torch.compile runs the whole frame eagerly: 0 graphs)
    check(scenario, graphs=2, torch_differs=True)


# -- 9. __getattribute__ traced for every lookup; AttributeError falls back to __getattr__ --


class Audited:
    """Logs every lookup (the common ``object.__getattribute__`` idiom)."""

    def __init__(self) -> None:
        self.scale = 3

    def __getattribute__(self, name: str) -> Any:
        if name != "log":
            object.__getattribute__(self, "log").append(name)
        return object.__getattribute__(self, name)


class Hiding:
    """``super().__getattribute__``; an AttributeError from it falls back to __getattr__."""

    def __init__(self) -> None:
        self.scale = 3

    def __getattribute__(self, name: str) -> Any:
        if name == "hidden":
            raise AttributeError("hidden")
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        return -1


def test_item_09_getattribute_traced_for_every_lookup() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Audited) -> Any:
            return x.cos() * o.scale + 1

        o = Audited()
        object.__setattr__(o, "log", [])
        return c(f)(torch.ones(2), o), o.log

    check(scenario, graphs=1, torch_differs=True)


def test_item_09_getattribute_error_falls_back_to_getattr() -> None:
    def scenario(c: Any) -> Any:
        return c(lambda x, o: x.cos() * o.scale + o.hidden)(torch.ones(2), Hiding())

    # torch.compile runs this frame eagerly (0 graphs)
    check(scenario, graphs=1, torch_differs=True)


# -- 10. property getters are traced, side effects and tensor ops included -----------------


class Temp:
    def __init__(self, t: torch.Tensor) -> None:
        self._t = t
        self.reads = 0

    @property
    def kelvin(self) -> torch.Tensor:
        self.reads += 1
        return self._t.exp() + 273.0


def test_item_10_property_getter_traced() -> None:
    def scenario(c: Any) -> Any:
        o = Temp(torch.ones(2))
        return c(lambda x, o: x + o.kelvin + o.kelvin)(torch.ones(2), o), o.reads

    fd, _ = check(scenario, graphs=1)
    assert fd.op_count >= 4


# -- 11. pybind def_readwrite properties and __slots__ members are read directly ----------


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = 2
        self.b = torch.ones(2)


def test_item_11_slots_members_read_without_break() -> None:
    def scenario(c: Any) -> Any:
        o = Slotted()
        f = c(lambda x, o: x * o.a + o.b)
        return f(torch.ones(2), o)

    check(scenario, graphs=1)


def test_item_11_pybind_readwrite_property() -> None:
    def scenario(c: Any) -> Any:
        cfg = torch.BenchmarkConfig()
        cfg.num_iters = 4
        return c(lambda x, cfg: x * cfg.num_iters)(torch.ones(2), cfg)

    check(scenario, graphs=1)


# -- 12. user descriptors: __get__ traced on reads, __set__ traced on stores ---------------


class Doubled:
    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return obj.base * 2


class NonNegative:
    def __set_name__(self, owner: Any, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return getattr(obj, self.slot)

    def __set__(self, obj: Any, value: torch.Tensor) -> None:
        setattr(obj, self.slot, value.clamp(min=0))


class Described:
    double = Doubled()
    level = NonNegative()

    def __init__(self) -> None:
        self.base = 3


def test_item_12_descriptor_get_traced() -> None:
    def scenario(c: Any) -> Any:
        return c(lambda x, o: x.cos() * o.double)(torch.arange(3.0), Described())

    check(scenario, graphs=1)


def test_item_12_data_descriptor_set_traced() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Described) -> torch.Tensor:
            o.level = x - 1
            return o.level * o.double

        o = Described()
        return c(f)(torch.arange(3.0), o), o._level

    check(scenario, graphs=1)


# -- 13. staticmethod via instance is the function; classmethod binds type(obj) ------------


class Base:
    SCALE = 1

    @staticmethod
    def twice(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @classmethod
    def scaled(cls, x: torch.Tensor) -> Any:
        return x * cls.SCALE, cls.__name__


class Sub(Base):
    SCALE = 5


def test_item_13_staticmethod_and_classmethod_binding() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Base) -> Any:
            return o.twice(x), o.scaled(x), o.twice is Sub.twice

        return c(f)(torch.ones(2), Sub())

    check(scenario, graphs=1)


# -- 14. lru_cache-decorated methods trace the wrapped function ---------------------------


class Table:
    @functools.cache  # noqa: B019
    def factor(self, n: int) -> int:
        return n * 3 + 1


def test_item_14_lru_cache_method_traced() -> None:
    def scenario(c: Any) -> Any:
        t = Table()
        f = c(lambda x, t: x * t.factor(2) + t.factor(3))
        return f(torch.ones(2), t), f(torch.ones(2), t)

    check(scenario, graphs=1)


def test_item_14_lru_cache_warning() -> None:
    @functools.cache
    def factor(n: int) -> int:
        return n * 3

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = ferrodyn.compile(lambda x: x * factor(2), backend="eager")(torch.ones(2))
    assert_tree_equal(got, torch.ones(2) * 6)
    assert any("lru_cache" in str(w.message) for w in seen), [str(w.message) for w in seen]


# -- 15. namedtuple field access does not go through __getitem__ -------------------------


class LoudPoint(collections.namedtuple("LoudPoint", "x y")):
    __slots__ = ()

    def __getitem__(self, i: Any) -> Any:
        raise RuntimeError("__getitem__ must not be used for field access")


def test_item_15_namedtuple_field_access() -> None:
    def scenario(c: Any) -> Any:
        p = LoudPoint(torch.ones(2), 3)
        return c(lambda p: p.x * p.y + 1)(p)

    check(scenario, graphs=1)


# -- 16. __class__, type(obj) is C and isinstance fold under a type guard ------------------


class Cat:
    pass


class Lion(Cat):
    pass


def test_item_16_type_checks_fold_under_type_guard() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Any) -> Any:
            if type(o) is Cat:
                return x + 1, o.__class__.__name__
            if isinstance(o, Cat):
                return x + 2, o.__class__ is Lion
            return x, None

        g = c(f)
        x = torch.ones(2)
        return g(x, Cat()), g(x, Cat()), g(x, Lion())

    check(scenario, graphs=2)


# -- 17. obj.__dict__ reads honour pending stores; writes bypass __setattr__ / descriptors --


class Logged:
    level = NonNegative()

    def __init__(self) -> None:
        object.__setattr__(self, "log", [])

    def __setattr__(self, k: str, v: Any) -> None:
        self.log.append(k)
        object.__setattr__(self, k, v)


def test_item_17_instance_dict_reads_see_pending_stores() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Plain) -> Any:
            o.a = 1
            d = o.__dict__
            return x + d["a"], d.get("zz", -1), "a" in d, "b" in d

        return c(f)(torch.ones(2), Plain())

    check(scenario, graphs=1)


def test_item_17_instance_dict_write_bypasses_setattr_and_descriptor() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Logged) -> Any:
            o.__dict__["b"] = 7
            o.__dict__["level"] = -5  # stored in the dict; the data descriptor still wins
            return x + o.b + o.level

        o = Logged()
        o._level = torch.zeros(1)
        return c(f)(torch.ones(2), o), sorted(vars(o).items(), key=lambda kv: kv[0])

    check(scenario, graphs=1)


def test_item_17_instance_dict_mirror_write_is_seen_through_every_path() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Logged) -> Any:
            d = o.__dict__
            d["b"] = 2
            d["b"] = d["b"] + 1
            return x * o.b + len(d), "b" in d, d.get("b"), o.__dict__["b"]

        o = Logged()
        return c(f)(torch.ones(2), o), o.log, sorted(vars(o).items(), key=lambda kv: kv[0])

    check(scenario, graphs=1)


def test_item_17_instance_dict_write_after_setattr() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, o: Logged) -> Any:
            o.a = 1
            o.__dict__["b"] = 7
            return x + o.b + o.a

        o = Logged()
        return c(f)(torch.ones(2), o), sorted(vars(o).items(), key=lambda kv: kv[0])

    check(scenario, graphs=1)


# -- 18. threading.local attributes can be read and written ---------------------------------


def test_item_18_threading_local_read() -> None:
    def scenario(c: Any) -> Any:
        loc = threading.local()
        loc.scale = 3
        return c(lambda x: x * loc.scale)(torch.ones(2))

    check(scenario, graphs=1)


def test_item_18_threading_local_write() -> None:
    def scenario(c: Any) -> Any:
        loc = threading.local()
        loc.scale = 3

        def f(x: torch.Tensor) -> torch.Tensor:
            loc.last = x.sum()
            return x * loc.scale + loc.last

        return c(f)(torch.ones(2)), loc.last, loc.scale

    check(scenario, graphs=1)


# -- 19. default __eq__ is identity; NotImplemented triggers the reflected path ------------


class AlwaysEqual:
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_item_19_default_eq_identity_and_reflection() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, a: Plain, b: Plain, w: AlwaysEqual) -> Any:
            flags = (
                a == a,  # noqa: PLR0124
                a == b,
                a != b,
                a == 3,
                a == w,
            )
            return x + sum(flags), flags

        return c(f)(torch.ones(2), Plain(), Plain(), AlwaysEqual())

    check(scenario, graphs=1)


def test_item_19_explicit_eq_returns_not_implemented() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, a: Plain) -> Any:
            return x + 1, a.__eq__(3) is NotImplemented, a.__eq__(a)

        return c(f)(torch.ones(2), Plain())

    check(scenario, graphs=1)


# -- 20. callable objects trace type(obj).__call__, guarded ---------------------------------


def test_item_20_callable_object_and_call_guard() -> None:
    def scenario(c: Any) -> Any:
        class Scale:
            def __init__(self, k: float) -> None:
                self.k = k

            def __call__(self, x: torch.Tensor) -> torch.Tensor:
                return x * self.k

        f = c(lambda x, s: s(x) + 1)
        s, x = Scale(2.0), torch.ones(2)
        r1 = f(x, s)
        Scale.__call__ = lambda self, x: x - self.k
        return r1, f(x, s)

    check(scenario, graphs=2)


# -- 21. user iterators: __next__ traced until StopIteration; unpacking ------------------


class Countdown:
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Countdown:
        return self

    def __next__(self) -> int:
        if self.n <= 0:
            raise StopIteration
        self.n -= 1
        return self.n


def test_item_21_user_iterator_loop_and_unpack() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, it: Countdown) -> Any:
            for i in it:
                x = x + i
            a, b = Countdown(2)
            return x * a + b

        it = Countdown(3)
        return c(f)(torch.ones(2), it), it.n

    check(scenario, graphs=1)
