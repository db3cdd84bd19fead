"""The side-effect store: mutations of Python state inside a compiled region are recorded,
visible to later reads in the same trace, and applied after the graph runs — in program
order, once, and never when the trace is abandoned. Objects created in the trace keep their
identity and are rebuilt only when they escape.

Every test runs the function eagerly and compiled on fresh, equal inputs, then compares
the return value, the state of every object the function touched, and what it printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal


class Box:
    """A plain object: attribute stores go through object.__setattr__."""

    def __init__(self, v: Any = None) -> None:
        self.v = v

    def get(self) -> Any:
        return self.v

    def state(self) -> dict[str, Any]:
        return dict(vars(self))


class Point:
    kind = "point"

    def __init__(self, x: Any, y: Any = 0) -> None:
        self.x = x
        self.y = y

    def norm1(self) -> Any:
        return self.x + self.y

    @property
    def doubled(self) -> Any:
        return self.x * 2


class Slotted:
    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v = 1


class Guarded:
    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)


G_COUNTER = 0
G_LIST: list[Any] = []
G_CONFIG: dict[str, Any] = {}


def t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _state(obj: Any) -> Any:
    """A comparable snapshot of an argument after the call."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, list | tuple):
        return type(obj)(_state(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _state(v) for k, v in obj.items()}
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return (type(obj).__name__, list(vars(obj)), {k: _state(v) for k, v in vars(obj).items()})
    if hasattr(type(obj), "__slots__"):
        return (type(obj).__name__, {k: getattr(obj, k, "<unset>") for k in type(obj).__slots__})
    return obj


def check(
    fn: Callable[..., Any],
    make_args: Callable[[], tuple[Any, ...]],
    capsys: pytest.CaptureFixture[str] | None = None,
    frames: int | None = 1,
    calls: int = 2,
) -> ferrodyn.testing.CompileCounter:
    """Eager vs compiled on fresh equal inputs: result, argument state, printed text."""
    torch.manual_seed(0)
    eager_args = make_args()
    expected = fn(*eager_args)
    expected_state = _state(eager_args)
    expected_out = capsys.readouterr().out if capsys else None
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for call in range(calls):
        torch.manual_seed(0)
        args = make_args()
        got = compiled(*args)
        assert_tree_equal(_state(got), _state(expected), f"call {call}: result")
        assert_tree_equal(_state(args), expected_state, f"call {call}: args after call")
        if capsys:
            assert capsys.readouterr().out == expected_out, f"call {call}: printed text"
    if frames is not None:
        assert cnt.frame_count == frames, f"frame_count {cnt.frame_count} != {frames}"
    return cnt


# --------------------------------------------------------------------------- attributes


def test_item_4_attribute_store_visible_and_applied() -> None:
    def fn(x: torch.Tensor, b: Box) -> torch.Tensor:
        b.v = x + 1
        b.w = b.v * 2  # reads the pending store
        return b.w + b.get()  # method reads it too

    check(fn, lambda: (t(3), Box(0)))


def test_item_4_attribute_store_order_of_new_names() -> None:
    def fn(x: torch.Tensor, b: Box) -> torch.Tensor:
        b.zeta = 1
        b.alpha = 2
        b.v = 3
        return x * b.alpha

    check(fn, lambda: (t(2), Box(0)))


def test_item_5_delete_then_read_raises_attribute_error() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        del b.v
        try:
            return b.v
        except AttributeError:
            return x + 1

    # The AttributeError is observed: the `try/except` is traced into one graph.
    check(fn, lambda: (t(2), Box(5)))


def test_item_5_delete_applied_after_graph() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        b.tmp = x
        del b.v
        return x * 2, hasattr(b, "v"), getattr(b, "v", "gone"), b.tmp

    check(fn, lambda: (t(2), Box(5)))


def test_delete_missing_attribute_raises_like_eager() -> None:
    def fn(x: torch.Tensor, b: Box) -> torch.Tensor:
        del b.missing
        return x

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    with pytest.raises(AttributeError):
        fn(t(2), Box())
    with pytest.raises(AttributeError):
        compiled(t(2), Box())


def test_unsupported_setattr_breaks_and_matches_eager() -> None:
    def fn(x: torch.Tensor, s: Any) -> torch.Tensor:
        s.v = 3
        return x + s.v

    # The store splits the frame (it runs natively); `x + s.v` is a graph, as torch.compile.
    check(fn, lambda: (t(2), Slotted()), frames=1)
    check(fn, lambda: (t(2), Guarded()), frames=1)


def test_nested_object_attribute_store() -> None:
    def fn(x: torch.Tensor, b: Box) -> torch.Tensor:
        b.v.v = x * 3
        return b.v.v + 1

    check(fn, lambda: (t(2), Box(Box(1))))


# --------------------------------------------------------------------------- containers


def test_list_mutations_on_existing_list() -> None:
    def fn(x: torch.Tensor, lst: list[Any]) -> torch.Tensor:
        lst.append(x + 1)
        lst.insert(0, "head")
        lst.extend([1, 2])
        lst.pop(1)
        lst[0] = "HEAD"
        del lst[-1]
        lst += [x]
        return x * len(lst)

    check(fn, lambda: (t(2), [1, "a"]))


def test_dict_mutations_on_existing_dict() -> None:
    def fn(x: torch.Tensor, d: dict[str, Any]) -> Any:
        d["new"] = x * 2
        d.update({"a": 10})
        v = d.setdefault("b", 7)
        d.pop("c")
        del d["z"]
        return x + v, d.get("a"), len(d)

    check(fn, lambda: (t(2), {"z": 0, "a": 1, "c": 3}))


def test_dict_clear_and_list_clear() -> None:
    def fn(x: torch.Tensor, d: dict[str, Any], lst: list[Any]) -> torch.Tensor:
        d.clear()
        lst.clear()
        d["k"] = 1
        return x + len(d) + len(lst)

    check(fn, lambda: (t(2), {"a": 1, "b": 2}, [1, 2, 3]))


def test_mutated_existing_list_returned_is_the_same_object() -> None:
    def fn(x: torch.Tensor, lst: list[Any]) -> list[Any]:
        lst.append(x)
        return lst

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    lst: list[Any] = []
    x = t(2)
    out = compiled(x, lst)
    assert out is lst
    assert len(lst) == 1
    torch.testing.assert_close(lst[0], x)


def test_aliased_containers_are_not_confused() -> None:
    def fn(x: torch.Tensor, a: list[Any], b: list[Any]) -> Any:
        a.append(1)
        return x + len(b)

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    a, b = [0], [0]
    compiled(t(1), a, b)  # traced with distinct lists
    assert (a, b) == ([0, 1], [0])
    same = [0]
    x = t(1)
    out = compiled(x, same, same)  # now aliased: must see its own append
    assert same == [0, 1]
    torch.testing.assert_close(out, x + 2)
    # traced with aliases, then called with distinct lists
    ferrodyn.reset()
    compiled = ferrodyn.compile(fn, backend=cnt)
    same = [0]
    torch.testing.assert_close(compiled(x, same, same), x + 2)
    a, b = [0], [0]
    torch.testing.assert_close(compiled(x, a, b), x + 1)
    assert (a, b) == ([0, 1], [0])


# --------------------------------------------------------------------------- globals, cells


def test_item_107_global_write_visible_and_applied() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        global G_COUNTER
        G_COUNTER = G_COUNTER + 1
        G_LIST.append(G_COUNTER)
        G_CONFIG["last"] = G_COUNTER
        return x * G_COUNTER  # sees the new value

    def reset() -> tuple[torch.Tensor]:
        global G_COUNTER
        G_COUNTER = 0
        G_LIST.clear()
        G_CONFIG.clear()
        return (torch.ones(2),)

    x = reset()[0]
    expected = fn(x)
    state = (G_COUNTER, list(G_LIST), dict(G_CONFIG))
    x = reset()[0]
    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(fn, backend=cnt)(x)
    assert_tree_equal(got, expected)
    assert (G_COUNTER, G_LIST, G_CONFIG) == state
    assert cnt.frame_count == 1


def test_global_delete_and_new_global() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        global _SE_NEW
        _SE_NEW = x.sum() * 0 + 1
        y = x + _SE_NEW
        del _SE_NEW
        return y

    cnt = ferrodyn.testing.CompileCounter()
    x = t(2)
    torch.testing.assert_close(ferrodyn.compile(fn, backend=cnt)(x), x + 1)
    assert "_SE_NEW" not in globals()
    assert cnt.frame_count == 1


def test_item_58_nonlocal_write_to_existing_cell() -> None:
    count = 0

    def fn(x: torch.Tensor) -> torch.Tensor:
        nonlocal count
        count += 1
        y = x * count
        count += 1
        return y + count

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    x = t(2)
    torch.testing.assert_close(compiled(x), x * 1 + 2)
    assert count == 2
    torch.testing.assert_close(compiled(x), x * 3 + 4)  # recompiles on the new value
    assert count == 4


def test_cell_shared_by_two_functions_sees_writes() -> None:
    state = {"unused": 0}
    total = 0

    def bump(v: int) -> None:
        nonlocal total
        total += v

    def read() -> int:
        return total

    def fn(x: torch.Tensor) -> torch.Tensor:
        bump(2)
        bump(3)
        return x * read()

    x = t(2)
    out = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(x)
    torch.testing.assert_close(out, x * 5)
    assert total == 5 and state == {"unused": 0}


# --------------------------------------------------------------------------- print


def test_item_94_print_replayed_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        print("start", 1, 2.5, None, sep="|")
        y = x + 1
        print(y, end="!\n")
        print("shape", y.shape, y.dtype)
        return y * 2

    check(fn, lambda: (torch.arange(3.0),), capsys=capsys)


def test_print_of_object_breaks(capsys: pytest.CaptureFixture[str]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        print("value", [1, 2])
        return x + 1

    # print of a list breaks the graph; the rest of the frame resumes in a compiled graph
    check(fn, lambda: (t(2),), capsys=capsys, frames=1)


# --------------------------------------------------------------------------- order


def test_item_134_replay_order_matches_program_order(capsys: pytest.CaptureFixture[str]) -> None:
    def fn(x: torch.Tensor, b: Box, d: dict[str, Any]) -> torch.Tensor:
        global G_COUNTER
        b.v = 1
        print("one")
        del b.v
        G_COUNTER = 5
        d["k"] = 1
        b.v = 2
        print("two", b.v)
        G_COUNTER = G_COUNTER * 2
        d.pop("k")
        d["k"] = 3
        b.w = 0
        del b.w
        b.w = 1
        return x + G_COUNTER

    def make() -> tuple[Any, ...]:
        global G_COUNTER
        G_COUNTER = 0
        return (torch.ones(2), Box("orig"), {"a": 0})

    check(fn, make, capsys=capsys)
    assert G_COUNTER == 10


# --------------------------------------------------------------------------- abandoned traces


def test_item_135_no_partial_mutation_on_abandoned_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def fn(x: torch.Tensor, b: Box, lst: list[Any], d: dict[str, Any]) -> torch.Tensor:
        global G_COUNTER
        b.v = b.v + 1
        lst.append(len(lst))
        d["n"] = d.get("n", 0) + 1
        G_COUNTER += 1
        print("before break")
        s = x.sum().item()  # graph break: mutations before it are applied once, then resume
        return x + b.v + s

    def make() -> tuple[Any, ...]:
        global G_COUNTER
        G_COUNTER = 0
        return (t(2), Box(1), [], {})

    check(fn, make, capsys=capsys, frames=2)
    # mutated exactly once per call, as eager leaves them
    b, lst, d = Box(1), [], {}
    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    compiled(t(2), b, lst, d)
    assert (b.v, lst, d) == (2, [0], {"n": 1})
    assert capsys.readouterr().out == "before break\n"


# --------------------------------------------------------------------------- new objects


def test_item_26_construct_user_object_in_graph() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        p = Point(x, y=2)
        p.x = p.x + 1
        return p.norm1() + p.doubled + len(p.kind)

    check(fn, lambda: (t(3),))


def test_item_137_reconstruct_user_object_created_in_graph() -> None:
    def fn(x: torch.Tensor) -> Point:
        p = Point(x + 1)
        p.extra = [x, "tag"]
        del p.y
        return p

    check(fn, lambda: (t(3),))
    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    p = compiled(t(2))
    assert type(p) is Point and not hasattr(p, "y") and p.extra[1] == "tag"


def test_item_137_reconstruct_object_stored_into_existing_state() -> None:
    def fn(x: torch.Tensor, b: Box, lst: list[Any]) -> torch.Tensor:
        p = Point(x)
        b.v = p
        lst.append(p)
        global G_LIST
        G_LIST = [p]
        return x + 1

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    b, lst = Box(), []
    compiled(t(2), b, lst)
    assert type(b.v) is Point
    assert b.v is lst[0] is G_LIST[0]  # built once, referenced three times


def test_item_136_identity_of_new_objects() -> None:
    def fn(x: torch.Tensor) -> Any:
        a = Point(x)
        b = a
        c = Point(x)
        shared: list[Any] = [a]
        return a is b, a is c, a is not c, (a, b, c), [shared, shared], {"k": a}

    got = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t(2))
    expected = fn(t(2))
    assert got[:3] == expected[:3] == (True, False, True)
    a, b, c = got[3]
    assert a is b and a is not c and got[5]["k"] is a
    assert got[4][0] is got[4][1] and got[4][0][0] is a


def test_item_136_cycles_and_self_reference() -> None:
    def fn(x: torch.Tensor) -> Any:
        a = Box(x)
        b = Box(a)
        a.peer = b
        lst: list[Any] = [a]
        lst.append(lst)
        return a, lst

    a, lst = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t(2))
    assert a.peer.v is a and lst[0] is a and lst[1] is lst


def test_user_object_not_escaping_is_not_rebuilt() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        acc = Box(0)
        for i in range(3):
            acc.v = acc.v + x * i
        return acc.v

    check(fn, lambda: (t(2),))


def test_construct_unsupported_classes_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        return Slotted().v + x

    # constructing it breaks the graph; the addition after it resumes in a graph
    check(fn, lambda: (t(2),), frames=1)

    class Local:
        def __init__(self) -> None:
            self.v = 1

    def fn2(x: torch.Tensor) -> Any:
        return Local().v + x

    check(fn2, lambda: (t(2),))  # a class defined outside the compiled function is fine

    def fn3(x: torch.Tensor) -> Any:
        class Inner:
            pass

        return Inner, x + 1

    cnt = ferrodyn.testing.CompileCounter()
    cls, _ = ferrodyn.compile(fn3, backend=cnt)(t(2))
    assert cls.__name__ == "Inner" and cnt.frame_count == 0  # item 29: graph break


# --------------------------------------------------------------------------- nested functions


def test_item_137_reconstruct_nested_functions() -> None:
    def fn(x: torch.Tensor) -> Any:
        k = 5
        scale = [2]

        def add_k(v: int, extra: int = 1, *, mul: int = 3) -> int:
            return (v + k + extra) * mul

        def bump() -> int:
            nonlocal k
            k += 1
            return k

        bump()
        return x + k, add_k, bump, scale

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    x = t(2)
    out, add_k, bump, scale = compiled(x)
    torch.testing.assert_close(out, x + 6)
    assert scale == [2]
    _, e_add_k, e_bump, _ = fn(x)
    assert add_k(1) == e_add_k(1) == (1 + 6 + 1) * 3
    assert add_k.__name__ == "add_k" and add_k.__qualname__ == e_add_k.__qualname__
    assert add_k.__defaults__ == (1,) and add_k.__kwdefaults__ == {"mul": 3}
    assert bump() == 7 and add_k(0, 0, mul=1) == 7  # the two closures share one cell
    assert e_bump() == 7


# --------------------------------------------------------------------------- tuples, returns


def test_new_list_returned_twice_is_one_object() -> None:
    def fn(x: torch.Tensor) -> Any:
        lst = [x]
        d = {"l": lst}
        return lst, lst, d

    a, b, d = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t(2))
    assert a is b and d["l"] is a


def test_global_write_in_inlined_function_seen_through_module_attribute() -> None:
    import sys

    this = sys.modules[__name__]

    def set_counter(v: int) -> None:
        global G_COUNTER
        G_COUNTER = v

    def fn(x: torch.Tensor) -> torch.Tensor:
        set_counter(7)
        return x * this.G_COUNTER

    cnt = ferrodyn.testing.CompileCounter()
    x = t(2)
    torch.testing.assert_close(ferrodyn.compile(fn, backend=cnt)(x), x * 7)
    assert G_COUNTER == 7


def test_dict_of_object_with_pending_stores_breaks() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        b.v = 3
        return x + b.__dict__["v"]

    check(fn, lambda: (t(2), Box(1)), frames=1)  # split after the store, as torch.compile

    def fn2(x: torch.Tensor) -> Any:
        p = Point(1)
        return x + len(p.__dict__)

    check(fn2, lambda: (t(2),), frames=1)


class _Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1  # in place on the buffer, then setattr of the same tensor
        return x * self.calls


@pytest.mark.parametrize("backend", ["counter", "aot_eager"])
def test_module_buffer_inplace_update_then_store_back(backend: str) -> None:
    eager, mod = _Counting(), _Counting()
    cnt = (
        ferrodyn.testing.CompileCounter()
        if backend == "counter"
        else ferrodyn.testing.CompileCounterWithBackend(backend)
    )
    compiled = ferrodyn.compile(mod, backend=cnt)
    buf = mod.calls
    for _ in range(3):
        x = t(2)
        torch.testing.assert_close(compiled(x), eager(x))
    assert int(mod.calls) == int(eager.calls) == 3
    assert mod.calls is buf
    assert cnt.frame_count == 1


def test_module_attribute_store_of_new_value_breaks() -> None:
    class Remember(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.last = x + 1
            return x

    mod = Remember()
    cnt = ferrodyn.testing.CompileCounter()
    x = t(2)
    ferrodyn.compile(mod, backend=cnt)(x)
    torch.testing.assert_close(mod.last, x + 1)
    assert cnt.frame_count == 1  # `x + 1` before the store, as torch.compile
