"""`obj.__dict__` in a trace: for an object with attribute stores pending in the trace (or
made there) it is a live view, so reads see the stores and writes are attribute stores;
for an untouched object from the inputs it mirrors the real dict, and a later attribute
store on that object breaks the graph rather than leaving the mirror stale. Values and
object state equal eager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal


class Obj:
    def __init__(self) -> None:
        self.b = 2


class Described:
    @property
    def p(self) -> int:
        return 1


def mirror_then_store(x: torch.Tensor, o: Obj) -> Any:
    d = o.__dict__
    o.a = 1
    return x * d.get("a", 5)


def store_then_view(x: torch.Tensor, o: Obj) -> Any:
    o.a = 3
    d = o.__dict__
    return x * d["a"] + d.get("b") + ("a" in d) + ("zz" in d), d.get("zz", 7)


def view_write(x: torch.Tensor, o: Obj) -> Any:
    o.a = 1
    o.__dict__["c"] = 4
    o.__dict__.update({"e": 5})
    return x * o.c + o.e + o.a


def new_object_namespace(x: torch.Tensor) -> Any:
    o = Obj()
    o.z = 3
    d = o.__dict__
    return x * len(d), [k for k, _ in d.items()], list(d.keys()), o


def missing_key(x: torch.Tensor, o: Obj) -> Any:
    o.a = 1
    try:
        return o.__dict__["nope"]
    except KeyError as e:
        return x + 1, e.args


CASES: dict[str, Callable[..., Any]] = {
    "mirror_then_store": mirror_then_store,
    "store_then_view": store_then_view,
    "view_write": view_write,
    "missing_key": missing_key,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_instance_dict_equals_eager(name: str) -> None:
    fn = CASES[name]
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        o_eager, o_fd = Obj(), Obj()
        expected = fn(torch.ones(1), o_eager)
        got = compiled(torch.ones(1), o_fd)
        assert_tree_equal(got, expected)
        assert vars(o_fd) == vars(o_eager)


def test_namespace_of_an_object_made_in_the_trace() -> None:
    compiled = ferrodyn.compile(new_object_namespace, backend="eager")
    y, items, keys, o = compiled(torch.ones(1))
    ey, eitems, ekeys, eo = new_object_namespace(torch.ones(1))
    torch.testing.assert_close(y, ey)
    assert items == eitems and keys == ekeys and vars(o) == vars(eo)


def test_no_break_when_reads_see_pending_stores() -> None:
    assert ferrodyn.explain(store_then_view)(torch.ones(1), Obj()).graph_break_count == 0


def test_write_under_a_data_descriptor_matches_eager() -> None:
    def fn(x: torch.Tensor, o: Described) -> Any:
        o.q = 1
        o.__dict__["p"] = 9  # the property still wins on attribute reads
        return x * o.p

    compiled = ferrodyn.compile(fn, backend="eager")
    o1, o2 = Described(), Described()
    torch.testing.assert_close(compiled(torch.ones(1), o1), fn(torch.ones(1), o2))
    assert vars(o1) == vars(o2)
    assert ferrodyn.explain(fn)(torch.ones(1), Described()).graph_break_count == 0


class Three:
    def __init__(self) -> None:
        self.a, self.b, self.c = 1, 2, 3


def test_listing_the_namespace_of_an_input_with_pending_stores() -> None:
    # copy.deepcopy of a config after the trace changed it (transformers' Whisper): the
    # real keys in order, changed by the trace's stores and deletions in their order.
    def fn(x: torch.Tensor, o: Three) -> Any:
        o.b = 20
        o.z = 26
        del o.a
        o.y = 25
        d = o.__dict__
        return x * len(d), list(d.items()), list(vars(o)), bool(d)

    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        o1, o2 = Three(), Three()
        assert_tree_equal(compiled(torch.ones(1), o1), fn(torch.ones(1), o2))
        assert list(vars(o1).items()) == list(vars(o2).items())
    assert ferrodyn.explain(fn)(torch.ones(1), Three()).graph_break_count == 0
