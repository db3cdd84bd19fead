"""torch.utils._pytree traced inside compiled functions, as torch.compile traces it: one
graph, no break. `tree_flatten` builds `TreeSpec` objects (a frozen dataclass with
`__slots__`, written through `object.__setattr__`) and reads `SUPPORTED_NODES`, a dict keyed
by classes and by `collections.namedtuple` (a function). Registering a new node type after
compiling is seen (the dict's keys are guarded). Also here: typing aliases built in traced
code (`Callable[[int], int] | None` in a nested function's annotations) and Python number
types passed as dtypes (`torch.tensor(0, dtype=int)`), which FX cannot write as code."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import ferrodyn
import pytest
import torch
import torch.utils._pytree as pytree
from _helpers import assert_tree_equal

X = torch.randn(3)
Point = collections.namedtuple("Point", "x y")


def _torch_graphs(fn: Callable[..., Any], *args: Any) -> int:
    import torch._dynamo
    import torch._dynamo.testing

    torch._dynamo.reset()
    cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=cnt)(*args)
    torch._dynamo.reset()
    return cnt.frame_count


def tree_map_dict(d: dict) -> Any:
    return pytree.tree_map(lambda t: t * 2, d)


def flatten_first_leaf(d: dict) -> Any:
    return pytree.tree_flatten(d)[0][0] + 1


def flatten_then_unflatten(d: dict) -> Any:
    leaves, spec = pytree.tree_flatten(d)
    return pytree.tree_unflatten([leaf + 1 for leaf in leaves], spec)


def leaves_sum(tree: Any) -> Any:
    return sum(pytree.tree_leaves(tree))


def namedtuple_tree(p: Any) -> Any:
    return pytree.tree_map(lambda t: t - 1, p)


def spec_equality(d: dict) -> Any:
    _, a = pytree.tree_flatten(d)
    _, b = pytree.tree_flatten({"a": X, "b": (X, X)})
    return d["a"] + (1 if a == b else 2), a.num_leaves


CASES = [
    (tree_map_dict, ({"a": X, "b": [X, X]},)),
    (flatten_first_leaf, ({"a": X, "b": (X, X)},)),
    (flatten_then_unflatten, ({"a": X, "b": (X, X)},)),
    (leaves_sum, ([X, (X, {"k": X})],)),
    (namedtuple_tree, (Point(X, X * 2),)),
    (spec_equality, ({"a": X, "b": (X, X)},)),
]


@pytest.mark.parametrize("fn,args", CASES, ids=[c[0].__name__ for c in CASES])
def test_pytree_functions_trace_in_one_graph(fn: Any, args: tuple) -> None:
    expected = fn(*args)
    explained = ferrodyn.explain(fn)(*args)
    assert explained.graph_break_count == 0, explained.break_reasons
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        assert_tree_equal(compiled(*args), expected)
    assert cnt.frame_count == 1 == _torch_graphs(fn, *args)


def test_a_returned_treespec_equals_eagers() -> None:
    def fn(d: dict) -> Any:
        leaves, spec = pytree.tree_flatten(d)
        return leaves[0] * 2, spec

    d = {"a": X, "b": (X, X)}
    expected = fn(d)
    got = ferrodyn.compile(fn, backend="eager")(d)
    assert_tree_equal(got[0], expected[0])
    assert got[1] == expected[1]
    assert type(got[1]) is pytree.TreeSpec
    assert got[1].num_leaves == 3


def test_registering_a_node_type_after_compiling_is_seen() -> None:
    class Pair:
        def __init__(self, a: Any, b: Any) -> None:
            self.a = a
            self.b = b

    def fn(tree: Any) -> Any:
        return len(pytree.tree_leaves(tree))

    compiled = ferrodyn.compile(fn, backend="eager")
    p = Pair(X, X)
    assert compiled([p, X]) == fn([p, X]) == 2
    pytree.register_pytree_node(
        Pair, lambda p: ([p.a, p.b], None), lambda xs, _: Pair(*xs), serialized_type_name="Pair"
    )
    try:
        assert compiled([p, X]) == fn([p, X]) == 3
    finally:
        pytree._deregister_pytree_node(Pair)


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    a: int
    b: int


def test_slots_dataclass_made_in_the_trace() -> None:
    def fn(x: torch.Tensor) -> Any:
        f = Frozen(2, 3)
        return x * f.a + f.b, f

    expected = fn(X)
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count == 0, explained.break_reasons
    got = ferrodyn.compile(fn, backend="eager")(X)
    assert_tree_equal(got[0], expected[0])
    assert got[1] == expected[1] and type(got[1]) is Frozen


def test_slots_class_store_outside_its_slots_breaks_and_raises_like_eager() -> None:
    class S:
        __slots__ = ("a",)

        def __init__(self) -> None:
            self.a = 1
            self.b = 2  # AttributeError in eager

    def fn(x: torch.Tensor) -> Any:
        return x + S().a

    with pytest.raises(AttributeError) as eager:
        fn(X)
    with pytest.raises(AttributeError) as compiled:
        ferrodyn.compile(fn, backend="eager")(X)
    assert str(compiled.value) == str(eager.value)


def callable_annotation(x: torch.Tensor) -> Any:
    def g(a: Callable[[int], int] | None = None) -> int:
        return 1

    return x + g(), g.__annotations__["a"]


def abc_alias(x: torch.Tensor) -> Any:
    return x + 1, Sequence[int], dict[str, list[int]]


@pytest.mark.parametrize("fn", [callable_annotation, abc_alias], ids=lambda f: f.__name__)
def test_typing_aliases_built_in_the_trace(fn: Any) -> None:
    expected = fn(X)
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count == 0, explained.break_reasons
    got = ferrodyn.compile(fn, backend="eager")(X)
    assert_tree_equal(got[0], expected[0])
    assert got[1:] == expected[1:]


@pytest.mark.parametrize("backend", ["eager", "aot_eager", "inductor"])
def test_python_number_types_as_dtypes(backend: str) -> None:
    def fn(x: torch.Tensor) -> Any:
        n = torch.tensor(0, dtype=int)
        return x.to(float) + n, torch.zeros(2, dtype=bool), x.to(dtype=int)

    expected = fn(X)
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(X), expected)
    assert cnt.frame_count == 1
    assert_tree_equal(ferrodyn.compile(fn, backend=backend)(X), expected)
