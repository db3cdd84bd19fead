"""Instances of set/frozenset subclasses from the inputs: the base's own methods act on
their contents (read by C iteration, guarded by that order), changes are replayed on the
object, and a subclass's Python overrides are still the ones that run."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_same

X = torch.ones(2)


class Tags(set):
    def describe(self) -> int:
        return len(self) * 10


class Labelled(set):
    def __init__(self, items: Any, label: str) -> None:
        super().__init__(items)
        self.label = label


class LoudAdd(set):
    calls = 0

    def add(self, item: Any) -> None:
        LoudAdd.calls += 1
        super().add(item * 2)


class OwnIter(set):
    def __iter__(self) -> Any:
        return iter(sorted(set.__iter__(self), reverse=True))


class FTags(frozenset):
    pass


def _state(s: set) -> Any:
    return type(s).__name__, sorted(s), dict(getattr(s, "__dict__", {}))


def _run(fn: Any, make: Any, calls: int = 3) -> ferrodyn.testing.CompileCounter:
    """Eager and compiled on fresh objects from `make(i)`: results and the objects'
    contents, type and attributes after the call are equal."""
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for i in range(calls):
        e_obj, c_obj = make(i), make(i)
        expected = fn(X, e_obj)
        got = compiled(X, c_obj)
        assert repr(got) == repr(expected), (got, expected)
        assert _state(c_obj) == _state(e_obj)
    return cnt


def test_mutations_are_replayed_on_the_object() -> None:
    def fn(x: torch.Tensor, s: Tags) -> Any:
        s.add(7)
        s.discard(1)
        s.update({8, 9})
        return x * s.describe(), 7 in s, len(s), sorted(s)

    cnt = _run(fn, lambda i: Tags({1, 2, i}))
    assert cnt.frame_count >= 1


def test_instance_attributes_survive_and_are_read() -> None:
    def fn(x: torch.Tensor, s: Labelled) -> Any:
        s.add(len(s.label))
        return x + len(s), s.label

    _run(fn, lambda i: Labelled({1}, "ab" * (i + 1)))


def test_a_python_override_runs() -> None:
    def fn(x: torch.Tensor, s: LoudAdd) -> Any:
        s.add(5)
        return x + len(s), sorted(s)

    before = LoudAdd.calls
    _run(fn, lambda i: LoudAdd({1}), calls=2)
    assert LoudAdd.calls == before + 4


def test_an_own_iter_decides_the_order() -> None:
    def fn(x: torch.Tensor, s: OwnIter) -> Any:
        return x + len(s), list(s), [v for v in s]

    _run(fn, lambda i: OwnIter({3, 1, 2 + i}))


def test_iterating_a_changed_set_object_matches_eager() -> None:
    def fn(x: torch.Tensor, s: Tags) -> Any:
        s.add("z")
        return x + len(s), list(s)

    _run(fn, lambda i: Tags({"a", "b", str(i)}))


def test_contents_changing_between_calls_recompile() -> None:
    def fn(x: torch.Tensor, s: Tags) -> Any:
        return x * len(s), 3 in s

    cnt = _run(fn, lambda i: Tags(range(i + 2)))
    assert cnt.frame_count == 3


def test_frozenset_subclass_methods_are_pure() -> None:
    def fn(x: torch.Tensor, fs: FTags) -> Any:
        u = fs.union({"b"})
        return x + len(fs), "a" in fs, sorted(u), type(u).__name__, fs.issubset({"a", "c"})

    _run(fn, lambda i: FTags({"a", str(i)}))


FROZEN = frozenset({"p", "q"})


def test_frozenset_global_is_a_constant() -> None:
    def fn(x: torch.Tensor) -> Any:
        return x + len(FROZEN), sorted(FROZEN), "p" in FROZEN

    assert_same(fn, X, frames=1, fullgraph=True)


def test_a_plain_set_changed_then_iterated_after_a_break_keeps_eager_order() -> None:
    def fn(x: torch.Tensor, s: set) -> Any:
        s.add("z")
        s.discard("a")
        s.update(["q", "r"])
        torch._dynamo.graph_break()
        return x + len(s), list(s)

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for i in range(3):
        e_obj, c_obj = {"a", "b", str(i), "m"}, {"a", "b", str(i), "m"}
        expected, got = fn(X, e_obj), compiled(X, c_obj)
        assert repr(got) == repr(expected)
        assert list(c_obj) == list(e_obj)
