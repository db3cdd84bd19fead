"""Pre-existing tuple and list iterators (a `for` loop's iterator handed to a resume
function, or one passed in): `next()` and `for` trace them without a graph break, reading
items relative to the iterator's real position, and the real iterator is advanced after
the graph exactly as far as eager advances it."""

from __future__ import annotations

import zlib
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def take_two(x: torch.Tensor, it: Any) -> Any:
    return x + next(it), next(it)


def test_next_on_passed_iterators_advances_them() -> None:
    for make in (tuple, list):
        items = make([torch.ones(2), 5, 6, 7])
        ours, ref = iter(items), iter(items)
        cnt = CompileCounter()
        f = ferrodyn.compile(take_two, backend=cnt, fullgraph=True)
        assert_tree_equal(f(torch.ones(2), ours), take_two(torch.ones(2), ref))
        # The real iterator moved by two, as eagerly.
        assert next(ours) == next(ref) == 6
        assert cnt.frame_count == 1


def test_exhaustion_raises_stop_iteration_like_eager() -> None:
    def fn(x: torch.Tensor, it: Any) -> Any:
        vals = [v for v in it]
        return x * len(vals), next(it, "done")

    for n in (0, 2):
        ours, ref = iter(tuple(range(n))), iter(tuple(range(n)))
        got = ferrodyn.compile(fn, backend="eager", fullgraph=True)(torch.ones(1), ours)
        assert_tree_equal(got, fn(torch.ones(1), ref))
        assert next(ours, None) is next(ref, None) is None


def acc_loop(x: torch.Tensor, ws: Any) -> torch.Tensor:
    acc = x
    for w in ws:
        acc = acc * w
        zlib.crc32(b"ferrodyn")  # a break inside the loop body
        acc = acc + 1
    return acc


def test_loop_with_a_break_resumes_over_the_real_iterator() -> None:
    # Before, each iteration after the break split again at FOR_ITER (next() on a
    # 'tuple_iterator'); now the resume function's trace reads the next item through the
    # iterator and is reused by every later iteration.
    for make in (tuple, list):
        ws = make(torch.randn(2) for _ in range(10))
        cnt = CompileCounter()
        f = ferrodyn.compile(acc_loop, backend=cnt)
        for _ in range(2):
            torch.testing.assert_close(f(torch.ones(2), ws), acc_loop(torch.ones(2), ws))
        assert cnt.frame_count == 3
        exp = ferrodyn.explain(acc_loop, torch.ones(2), ws)
        assert not any("next()" in b.reason for b in exp.break_reasons)


def test_mutating_the_walked_list_stays_eager_correct() -> None:
    def fn(x: torch.Tensor, it: Any, lst: list) -> Any:
        a = next(it)
        lst.append(3)
        return x + a, next(it)

    lst1, lst2 = [1, 2], [1, 2]
    got = ferrodyn.compile(fn, backend="eager")(torch.ones(1), iter(lst1), lst1)
    assert_tree_equal(got, fn(torch.ones(1), iter(lst2), lst2))
    assert lst1 == lst2 == [1, 2, 3]


def test_dict_iterators_are_traced_and_advanced() -> None:
    # A dict's key/value/item iterators (ModuleList iterates its `_modules.values()`): their
    # C __reduce__ copies what is left without advancing them; after the graph the real
    # iterator is stepped as far as eager steps it.
    d = {"a": torch.ones(2), "b": torch.full((2,), 2.0), "c": torch.full((2,), 3.0)}
    for view in (dict.keys, dict.values, dict.items, lambda d: reversed(d.values())):
        ours, ref = iter(view(d)), iter(view(d))
        cnt = CompileCounter()
        f = ferrodyn.compile(take_two, backend=cnt, fullgraph=view is not dict.keys)
        if view is dict.keys:
            got = f("x", ours)  # str + str: no graph needed
            assert got == take_two("x", ref)
        else:
            first = next(iter(view(d)))
            x = torch.ones(2) if not isinstance(first, tuple) else ("k",)
            assert_tree_equal(f(x, ours), take_two(x, ref))
        assert_tree_equal(list(ours), list(ref))


class Stack(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:3]:
            x = layer(x)
            zlib.crc32(b"ferrodyn")  # a break inside the loop over a ModuleList slice
            x = x + 1
        return x


def test_module_list_loop_with_a_break_resumes_over_its_dict_iterator() -> None:
    # Before, the resume function broke again at FOR_ITER ("next() on a
    # 'dict_valueiterator'") and each iteration made graphs of its own.
    m = Stack()
    x = torch.randn(2, 4)
    cnt = CompileCounter()
    f = ferrodyn.compile(m, backend=cnt)
    for _ in range(2):
        assert_tree_equal(f(x), m(x))
    # The prefix, the body after the break (reused by every iteration), the loop's end.
    assert cnt.frame_count == 3
    exp = ferrodyn.explain(m)(x)
    assert all("dict_valueiterator" not in str(b) for b in exp.break_reasons)


def test_dict_changed_in_the_trace_is_not_iterated_from_a_copy() -> None:
    def fn(x: torch.Tensor, it: Any, d: dict[str, int]) -> Any:
        d["a"] = 100
        return x + next(it), d

    ours_d, ref_d = {"a": 1, "b": 2}, {"a": 1, "b": 2}
    ours, ref = iter(ours_d.values()), iter(ref_d.values())
    got = ferrodyn.compile(fn, backend="eager")(torch.ones(1), ours, ours_d)
    assert_tree_equal(got, fn(torch.ones(1), ref, ref_d))
    assert list(ours) == list(ref)


def enum_loop(x: torch.Tensor, ws: Any) -> torch.Tensor:
    for i, w in enumerate(ws):
        x = x * w + i
        zlib.crc32(b"ferrodyn")  # a break inside the loop body
        x = x - 1
    return x


def test_enumerate_loop_with_a_break_resumes_over_the_real_enumerate() -> None:
    # Before, the resume function broke again at FOR_ITER ("next() on a 'enumerate'"); now
    # the (count, item) pairs are read through the enumerate object's C __reduce__, the
    # count becomes a symbolic int after it changes, and the real enumerate is stepped after
    # each graph.
    ws = tuple(torch.randn(2) for _ in range(6))
    cnt = CompileCounter()
    f = ferrodyn.compile(enum_loop, backend=cnt)
    for _ in range(2):
        assert_tree_equal(f(torch.ones(2), ws), enum_loop(torch.ones(2), ws))
    assert cnt.frame_count <= 5
    exp = ferrodyn.explain(enum_loop)(torch.ones(2), ws)
    assert all("enumerate" not in str(b) for b in exp.break_reasons)


def test_passed_enumerate_is_advanced_like_eager() -> None:
    def take(x: torch.Tensor, it: Any) -> Any:
        i, a = next(it)
        j, b = next(it)
        return x * a + b + i, j

    items = [torch.ones(2), torch.zeros(2), torch.full((2,), 3.0)]
    ours, ref = enumerate(items, start=5), enumerate(items, start=5)
    f = ferrodyn.compile(take, backend="eager", fullgraph=True)
    assert_tree_equal(f(torch.ones(2), ours), take(torch.ones(2), ref))
    assert_tree_equal(list(ours), list(ref))


def test_constant_tuple_concatenated_with_a_traced_tuple() -> None:
    def fn(x: torch.Tensor, mems: list[torch.Tensor]) -> Any:
        new = ()
        for m in mems:
            new = new + (x * m,)
        return (1, 2) + new + (), new + ("end",)

    cnt = CompileCounter()
    got = ferrodyn.compile(fn, backend=cnt, fullgraph=True)(torch.ones(2), [torch.ones(2)] * 2)
    assert_tree_equal(got, fn(torch.ones(2), [torch.ones(2)] * 2))
    assert cnt.frame_count == 1


def test_loop_over_zip_with_a_break_resumes_over_the_real_zip() -> None:
    # A break inside `for a, b in zip(...)`: the resume function reads the next pair through
    # the real zip's inner iterators instead of splitting again at FOR_ITER.
    def fn(x: torch.Tensor, ws: list[torch.Tensor], bs: tuple[int, ...]) -> Any:
        acc = x
        for i, (w, b) in enumerate(zip(ws, bs)):
            acc = acc * w + b
            zlib.crc32(b"ferrodyn")
        return acc, i

    ws = [torch.randn(2) for _ in range(5)]
    cnt = CompileCounter()
    f = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        assert_tree_equal(f(torch.ones(2), ws, (1, 2, 3)), fn(torch.ones(2), ws, (1, 2, 3)))
    explained = ferrodyn.explain(fn)(torch.ones(2), ws, (1, 2, 3))
    assert all("crc32" in r.reason for r in explained.break_reasons)
    assert explained.graph_break_count == 1


def test_passed_zip_is_advanced_like_eager() -> None:
    def fn(x: torch.Tensor, it: Any) -> Any:
        a = next(it)
        zlib.crc32(b"ferrodyn")
        b = next(it)
        return x + a[0] + b[1], next(it, "end")

    ws = [torch.ones(2) * k for k in range(3)]
    ours, ref = zip(ws, ws[1:]), zip(ws, ws[1:])  # noqa: RUF007 - a zip object is the point
    got = ferrodyn.compile(fn, backend="eager")(torch.ones(2), ours)
    assert_tree_equal(got, fn(torch.ones(2), ref))
    assert next(ours, None) is next(ref, None) is None
