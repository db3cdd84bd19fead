"""List and dict subclasses constructed inside the compiled region (transformers'
`LogitsProcessorList()`, registries built per call): the object is allocated with the
builtin's `__new__`, its contents are modelled by the tracer (appends, item stores, reads,
iteration, `len`, `in`), and it is rebuilt after the graph only if it escapes, with the
builtin's own C methods (no method of the subclass runs). Comparisons of list/tuple/dict
subclass objects compare contents, as the builtin's C comparison does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn.testing import CompileCounter


class Procs(list):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for p in self:
            x = p(x)
        return x


class Registry(dict):
    def __missing__(self, key: str) -> int:
        return -1


class Row(list):
    pass


def pipeline(x: torch.Tensor) -> Any:
    ps = Procs()
    ps.append(torch.sin)
    ps.extend([torch.cos])
    ps.tag = "pipeline"
    return ps(x) * len(ps), ps


def registry(x: torch.Tensor) -> Any:
    r = Registry(a=1)
    r["b"] = 2
    r.update(c=3)
    return x + r["a"] + r["missing"] + r.get("b"), r, "c" in r, list(r.items())


def prefilled(x: torch.Tensor) -> Any:
    row = Row([x, x * 2])
    row[0] = x * 3
    return row[0] + row[1], row, isinstance(row, list), type(row).__name__


def by_builtin_new(x: torch.Tensor) -> Any:
    d = Registry.__new__(Registry)
    d["k"] = 2
    lst = list.__new__(Row)
    lst.append(5)
    return x + d["k"] + lst[0], d, lst


def compares(x: torch.Tensor) -> Any:
    a, b = Row([1, 2]), Row([1, 2])
    d1, d2 = Registry(k=1), Registry(k=1)
    return x + (a == b), a != b, a < Row([1, 3]), d1 == d2, a is b


CASES: list[Callable[[torch.Tensor], Any]] = [
    pipeline,
    registry,
    prefilled,
    by_builtin_new,
    compares,
]


def _same(got: Any, exp: Any) -> None:
    if isinstance(exp, torch.Tensor):
        assert torch.equal(got, exp)
        return
    assert type(got) is type(exp), (type(got), type(exp))
    if isinstance(exp, (list, tuple)):
        assert len(got) == len(exp)
        for g, e in zip(got, exp, strict=True):
            _same(g, e)
        if hasattr(exp, "__dict__"):
            assert vars(got) == vars(exp)
    elif isinstance(exp, dict):
        assert list(got) == list(exp)
        for k in exp:
            _same(got[k], exp[k])
    else:
        assert got == exp


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_constructed_in_one_graph_and_equal_to_eager(fn: Callable[[torch.Tensor], Any]) -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    for _ in range(2):  # the second call from the cache: a new object each time
        x = torch.randn(3)
        got, exp = compiled(x), fn(x)
        _same(got, exp)
    assert cnt.frame_count == 1
    first, second = compiled(torch.ones(3)), compiled(torch.ones(3))
    if isinstance(first, tuple) and len(first) > 1 and isinstance(first[1], (list, dict)):
        assert first[1] is not second[1]


def test_input_list_subclasses_compare_by_contents() -> None:
    # Regression: two distinct equal list-subclass inputs compared as different objects.
    def fn(x: torch.Tensor, a: Row, b: Row) -> Any:
        return x + (a == b), a != b

    compiled = ferrodyn.compile(fn, backend="eager")
    for a, b in ((Row([1]), Row([1])), (Row([1]), Row([2]))):
        got, exp = compiled(torch.ones(1), a, b), fn(torch.ones(1), a, b)
        assert torch.equal(got[0], exp[0]) and got[1] == exp[1]


class Custom(list):
    def __getitem__(self, i: Any) -> Any:
        return "custom"


def test_subclass_with_its_own_item_access_still_matches_eager() -> None:
    def fn(x: torch.Tensor) -> Any:
        c = Custom([1, 2])
        return x + len(c), c[0]

    got = ferrodyn.compile(fn, backend="eager")(torch.ones(1))
    exp = fn(torch.ones(1))
    assert torch.equal(got[0], exp[0]) and got[1] == exp[1] == "custom"


class Batch(list):
    def __init__(self, items: Any, name: str) -> None:
        super().__init__(items)
        self.name = name

    def push(self, v: Any) -> Batch:
        super().append(v)
        return self


class Config(dict):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.frozen = True


def with_python_init(x: torch.Tensor) -> Any:
    b = Batch([x, x + 1], "b").push(x * 5)
    c = Config(a=1)
    return b[0] + b[2] + c["a"], b, b.name, c, c.frozen


def test_python_init_calling_the_builtin_init_through_super() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(with_python_init, backend=cnt, fullgraph=True)
    for _ in range(2):
        x = torch.randn(2)
        _same(compiled(x), with_python_init(x))
    assert cnt.frame_count == 1


def test_super_append_on_an_input_list_subclass_is_replayed() -> None:
    def fn(x: torch.Tensor, b: Batch) -> Any:
        b.push(x * 2).push(3)
        return x + len(b)

    ours, ref = Batch([1], "in"), Batch([1], "in")
    cnt = CompileCounter()
    got = ferrodyn.compile(fn, backend=cnt, fullgraph=True)(torch.ones(2), ours)
    exp = fn(torch.ones(2), ref)
    assert torch.equal(got, exp) and cnt.frame_count == 1
    assert len(ours) == len(ref) == 3 and ours[0] == 1 and ours[2] == 3
    assert torch.equal(ours[1], ref[1])
    assert ours.name == ref.name


def test_dict_copy_and_unpacking_of_dict_subclasses() -> None:
    def fn(x: torch.Tensor, inp: Registry) -> Any:
        made = Registry(a=1, b=2)
        made["c"] = x + 1
        return dict(made), {**made, "z": 0}, dict(inp), {**inp}

    cnt = CompileCounter()
    inp = Registry(k=3)
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.ones(1)
    _same(compiled(x, inp), fn(x, inp))
    assert cnt.frame_count == 1
