"""Stdlib objects built or used inside the trace: functools.partial, collections
(OrderedDict, defaultdict, deque), sets, map/filter, operator getters, sorted, and
generators that delegate with `yield from`. Compared with eager: values, object state and
graph counts."""

from __future__ import annotations

import collections
import functools
import operator
import zlib
from collections import OrderedDict, defaultdict, deque
from typing import Any

import ferrodyn
import torch
from _helpers import assert_same, assert_tree_equal
from torch import nn


def t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


def _compiled(fn: Any) -> tuple[Any, ferrodyn.testing.CompileCounter]:
    cnt = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=cnt), cnt


def _scale(x: torch.Tensor, a: float, *, k: float = 1.0) -> torch.Tensor:
    return x * a + k


# --------------------------------------------------------------------------- partial


def test_partial_built_and_called_in_trace() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        p = functools.partial(_scale, x, k=2.0)
        q = functools.partial(p, 3.0)  # flattened: partial(_scale, x, 3.0, k=2.0)
        return p(0.5), p(0.5, k=4.0), q(), p.args[1:], p.keywords, p.func is _scale

    assert_same(fn, t(3), frames=1)


def test_partial_of_torch_function_and_lambda() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        add2 = functools.partial(torch.add, alpha=2)
        sq = functools.partial(lambda a, b: a * b, x)
        return add2(sq(x), x)

    assert_same(fn, t(4), frames=1)


def test_escaping_partial_is_rebuilt() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        p = functools.partial(_scale, a=2.0, k=0.5)
        return x + 1, p

    compiled, cnt = _compiled(fn)
    for _ in range(2):
        _out, p = compiled(t(2))
        assert isinstance(p, functools.partial)
        assert p.func is _scale and p.args == () and p.keywords == {"a": 2.0, "k": 0.5}
        x = t(2)
        torch.testing.assert_close(p(x), _scale(x, a=2.0, k=0.5))
    assert cnt.frame_count == 1


def test_escaping_partial_of_inner_function_shares_identity() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, Any]:
        def inner(v: int, w: int) -> int:
            return v * 10 + w

        p = functools.partial(inner, 4)
        return p, [p, x]

    compiled, _ = _compiled(fn)
    p, (p2, _) = compiled(t(1))
    assert p is p2
    assert p(2) == 42


def test_partial_with_no_arguments_breaks() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        try:
            functools.partial()
        except TypeError:
            pass
        return y * 2

    cnt = ferrodyn.testing.CompileCounter()
    out = ferrodyn.compile(fn, backend=cnt)(torch.ones(2))
    torch.testing.assert_close(out, torch.full((2,), 4.0))


def test_preexisting_partial_is_inlined_and_guarded() -> None:
    def fn(f: Any, x: torch.Tensor) -> torch.Tensor:
        return f(x)

    compiled, cnt = _compiled(fn)
    p1 = functools.partial(_scale, a=2.0)
    x = t(3)
    torch.testing.assert_close(compiled(p1, x), _scale(x, a=2.0))
    torch.testing.assert_close(compiled(p1, x), _scale(x, a=2.0))
    assert cnt.frame_count == 1
    p2 = functools.partial(_scale, a=5.0, k=0.0)
    torch.testing.assert_close(compiled(p2, x), _scale(x, a=5.0, k=0.0))
    assert cnt.frame_count == 2  # keywords are guarded: a new partial recompiles


# --------------------------------------------------------------------------- collections


def test_ordered_dict_and_fromkeys() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        d = OrderedDict([("b", x), ("a", x + 1)])
        d["c"] = x * 2
        keys = OrderedDict.fromkeys(["p", "q"], 0)
        dd = defaultdict.fromkeys("xy")
        return d, keys, dd, list(d), isinstance(d, OrderedDict), type(d) is OrderedDict

    assert_same(fn, t(2), frames=1)


def test_defaultdict_missing_calls_factory() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        counts: defaultdict[str, int] = defaultdict(int)
        for w in ["a", "b", "a"]:
            counts[w] += 1
        groups: defaultdict[str, list] = defaultdict(list)
        groups["t"].append(x)
        groups["t"].append(x + 1)
        lazy = defaultdict(lambda: x.sum())
        s = lazy["z"]
        return counts, groups, s, "q" in counts, counts.get("q"), counts.default_factory

    assert_same(fn, t(3), frames=1)


def test_ordered_dict_copy_keeps_class() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        d = OrderedDict(a=1, b=2)
        c = d.copy()
        c["z"] = 3
        return d, c, x + len(c)

    assert_same(fn, t(2), frames=1)


def _deque_state(d: deque) -> tuple[Any, ...]:
    return (type(d), d.maxlen, list(d))


def test_deque_operations_and_maxlen() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        d = deque([x, x + 1], maxlen=3)
        d.append(x + 2)
        d.append(x + 3)  # drops the leftmost
        d.appendleft(x - 1)  # drops the rightmost
        last = d.pop()
        first = d.popleft()
        d.extend([x * 10, x * 20])
        e = deque(range(5), maxlen=2)
        e.extendleft([7, 8])
        e.rotate()
        return _deque_state(d), last, first, len(d), d[0], _deque_state(e), 8 in e, bool(deque())

    assert_same(fn, t(2), frames=1)


def test_returned_deque_has_right_class_and_contents() -> None:
    def fn(x: torch.Tensor) -> deque:
        d: deque = deque(maxlen=2)
        for i in range(4):
            d.append(x + i)
        return d

    compiled, cnt = _compiled(fn)
    x = t(2)
    got, expected = compiled(x), fn(x)
    assert type(got) is deque and got.maxlen == 2
    assert_tree_equal(list(got), list(expected))
    assert cnt.frame_count == 1


def test_deque_of_non_iterable_breaks() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        try:
            deque(5)  # type: ignore[call-overload]
        except TypeError:
            y = y * 3
        return y

    compiled, _ = _compiled(fn)
    x = t(2)
    torch.testing.assert_close(compiled(x), fn(x))


# --------------------------------------------------------------------------- sets


def test_set_of_constants_and_objects() -> None:
    m = nn.Linear(2, 2)

    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        s = set()
        s.add(3)
        s.add("a")
        s.add(3)
        objs = set()
        objs.add(m)
        objs.add(x)
        s.discard("a")
        return sorted(s), x * len(objs), m in objs, x in objs, (x + 1) in objs, s

    assert_same(fn, t(2), frames=1)


def test_iterating_a_set_of_tensors_breaks() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        s = {1}
        s = set()
        s.add(x)
        total = x * 0
        for v in s:
            total = total + v
        return total

    compiled, _ = _compiled(fn)
    x = t(2)
    torch.testing.assert_close(compiled(x), fn(x))


# --------------------------------------------------------------------------- iterators


def test_map_filter_lazy_and_sorted() -> None:
    def square(a: torch.Tensor) -> torch.Tensor:
        return a * a

    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        sq = list(map(square, [x, y]))
        pairs = list(map(operator.add, [x, y], [y, x]))
        evens = list(filter(lambda i: i % 2 == 0, range(7)))
        truthy = list(filter(None, [0, 1, "", "a"]))
        by_len = sorted([x, y[:1], x[:2]], key=lambda v: v.shape[0])
        rev = sorted([3, 1, 2], reverse=True)
        names = sorted({"b": 1, "a": 2}.items(), key=operator.itemgetter(1), reverse=True)
        return sq, pairs, evens, truthy, by_len, rev, names

    assert_same(fn, t(3), t(3), frames=1)


def test_map_is_lazy() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        seen: list[int] = []

        def f(i: int) -> int:
            seen.append(i)
            return i * 2

        m = map(f, [1, 2, 3])
        first = next(m)
        before = list(seen)
        rest = list(m)
        return x + first, before, rest, seen

    assert_same(fn, t(2), frames=1)


def test_itemgetter_attrgetter() -> None:
    class P:
        def __init__(self, w: torch.Tensor) -> None:
            self.w = w

    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        g = operator.itemgetter(0, 2)
        a = operator.attrgetter("w")
        return g([x, 1, x + 1]), a(P(x * 3)), operator.itemgetter("k")({"k": x})

    assert_same(fn, t(2), frames=1)


def test_enumerate_zip_reversed_over_generators() -> None:
    def gen(n: int) -> Any:
        for i in range(n):
            yield i * 2

    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        e = list(enumerate(gen(3), start=1))
        z = list(zip(gen(2), "ab"))
        r = list(reversed(OrderedDict(a=1, b=2)))
        return x + sum(v for _, v in e), e, z, r

    assert_same(fn, t(2), frames=1)


# --------------------------------------------------------------------------- yield from


def test_yield_from_generator_and_iterable() -> None:
    def inner(x: torch.Tensor) -> Any:
        yield x + 1
        yield x + 2
        return 10

    def outer(x: torch.Tensor) -> Any:
        r = yield from inner(x)
        yield from [x * r, x * 3]
        yield r

    def fn(x: torch.Tensor) -> list:
        return list(outer(x))

    assert_same(fn, t(2), frames=1)


def test_yield_from_is_lazy_with_next() -> None:
    def inner(log: list) -> Any:
        log.append("a")
        yield 1
        log.append("b")
        yield 2

    def outer(log: list) -> Any:
        yield from inner(log)
        log.append("c")

    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        log: list[str] = []
        g = outer(log)
        first = next(g)
        snapshot = list(log)
        rest = list(g)
        return x * first, snapshot, rest, log

    assert_same(fn, t(2), frames=1)


def test_module_parameter_iterators_in_forward() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
            self.shared = self.a
            self.register_buffer("buf", torch.ones(3))

        def forward(self, x: torch.Tensor) -> tuple[Any, ...]:
            total = sum(p.sum() for p in self.parameters())
            names = [n for n, _ in self.named_parameters()]
            bufs = [b * 2 for b in self.buffers()]
            kids = [type(c).__name__ for c in self.children()]
            mods = len(list(self.modules()))
            return self.b(self.a(x)) + total, names, bufs, kids, mods

    net = Net()
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(net, backend=cnt)
    x = t(2, 3)
    for _ in range(2):
        assert_tree_equal(compiled(x), net(x))
    assert cnt.frame_count == 1


def _append_then_break(dq: deque[int], lst: list[int], x: torch.Tensor) -> torch.Tensor:
    dq.append(1)
    lst.append(2)
    zlib.crc32(b"a")
    return x + 1


def test_containers_mutated_by_a_call_that_breaks_are_mutated_once() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
        dq: deque[int] = deque()
        lst: list[int] = []
        y = _append_then_break(dq, lst, x)
        return y, list(dq), lst

    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        _y, dq, lst = compiled(torch.ones(2))
        assert dq == [1]
        assert lst == [2]


def test_set_literal_is_a_new_set_each_call() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, set[int], set[int]]:
        s = {1, 2}
        s.add(3)
        squares = {i * i for i in range(3)}
        return x + 1, s, squares

    compiled = ferrodyn.compile(fn, backend="eager")
    first = compiled(torch.ones(1))
    first[1].add(99)
    second = compiled(torch.ones(1))
    assert second[1] == {1, 2, 3}
    assert second[2] == {0, 1, 4}
    assert first[1] is not second[1]


def _counter_program(x: torch.Tensor, words: list[str]) -> Any:
    c = collections.Counter(words)
    c["zz"] += 2
    d = collections.Counter(a=3)
    e = collections.Counter({"k": 5})
    return (
        x * c["a"] + c["missing"] + d["a"] + e["k"],
        c,
        d,
        dict(c),
        isinstance(c, collections.Counter),
        "missing" in c,
    )


def test_counter_made_in_the_trace() -> None:
    # A missing key reads 0 without being stored; the Counter leaving the trace is a
    # Counter with the same counts in the same order.
    x = torch.ones(2)
    words = ["a", "b", "a"]
    got = ferrodyn.compile(_counter_program, backend="eager")(x, words)
    expected = _counter_program(x, words)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1:] == expected[1:]
    assert list(got[1].items()) == list(expected[1].items())
    assert type(got[1]) is collections.Counter
    assert ferrodyn.explain(_counter_program)(x, words).graph_break_count == 0
