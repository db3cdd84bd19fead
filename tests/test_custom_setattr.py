"""A class's own ``__setattr__`` written in Python is traced, like Dynamo does.

``obj.name = v`` on such an object is ``type(obj).__setattr__(obj, name, v)``, traced; its
``super().__setattr__(name, value)`` is the plain store, recorded by the side-effect store and
replayed after the graph with ``object.__setattr__`` (so the custom method runs once, as in
eager). Objects created in the trace (a constructor storing fields through a custom
``__setattr__``, e.g. transformers' configs mapping attribute aliases) are supported too.
Each test compares results, the objects' state afterwards, and graph/break counts.
"""

from __future__ import annotations

from typing import Any, ClassVar

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal


class Aliased:
    """Like transformers' PretrainedConfig: some names are aliases of others."""

    attribute_map: ClassVar[dict[str, str]] = {"hidden": "hidden_size"}

    def __init__(self, hidden_size: int = 4) -> None:
        self.hidden_size = hidden_size
        self.calls = 0

    def __setattr__(self, key: str, value: Any) -> None:
        if key in type(self).attribute_map:
            key = type(self).attribute_map[key]
        super().__setattr__(key, value)


class Counting:
    def __init__(self) -> None:
        object.__setattr__(self, "log", [])

    def __setattr__(self, key: str, value: Any) -> None:
        self.log.append(key)
        object.__setattr__(self, key, value)


class Validating:
    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            raise AttributeError(f"private name {key}")
        super().__setattr__(key, value)


def _count(fn: Any, *args: Any) -> tuple[Any, Any]:
    return fn, ferrodyn.explain(fn)(*args)


def test_store_through_alias_on_an_existing_object() -> None:
    def f(x, cfg):
        cfg.hidden = 7
        return x * cfg.hidden_size

    a, b = Aliased(), Aliased()
    x = torch.ones(3)
    expected = f(x, a)
    got = ferrodyn.compile(f, backend="eager", fullgraph=True)(x, b)
    assert_tree_equal(got, expected)
    assert vars(a) == vars(b)
    assert "hidden" not in vars(b)


def test_custom_setattr_runs_once_per_store() -> None:
    def f(x, obj):
        obj.a = x.sum()
        obj.b = 2
        return x + obj.b

    e, c = Counting(), Counting()
    x = torch.arange(3.0)
    expected = f(x, e)
    got = ferrodyn.compile(f, backend="eager", fullgraph=True)(x, c)
    assert_tree_equal(got, expected)
    assert c.log == e.log == ["a", "b"]
    assert_tree_equal(c.a, e.a)


def test_new_object_built_through_custom_setattr() -> None:
    def f(x):
        cfg = Aliased(hidden_size=3)
        cfg.hidden = 5
        return x * cfg.hidden_size, cfg

    x = torch.ones(2)
    exp_out, exp_cfg = f(x)
    compiled = ferrodyn.compile(f, backend="eager", fullgraph=True)
    got_out, got_cfg = compiled(x)
    assert_tree_equal(got_out, exp_out)
    assert type(got_cfg) is Aliased
    assert vars(got_cfg) == vars(exp_cfg)


def test_exception_from_custom_setattr_matches_eager() -> None:
    def f(x, obj):
        try:
            obj._hidden = 1
        except AttributeError as e:
            return x + 1, str(e)
        return x, ""

    x = torch.zeros(2)
    expected = f(x, Validating())
    v = Validating()
    got = ferrodyn.compile(f, backend="eager")(x, v)
    assert_tree_equal(got, expected)
    assert vars(v) == {}


def test_one_graph_no_break() -> None:
    def f(x, cfg):
        cfg.hidden = x.shape[0]
        return x.relu() * cfg.hidden_size

    cfg = Aliased()
    explanation = ferrodyn.explain(f)(torch.randn(3), cfg)
    assert explanation.graph_count == 1
    assert explanation.graph_break_count == 0
    assert cfg.hidden_size == 3


@pytest.mark.parametrize("n", [1, 2])
def test_recompiles_match_torch_compile(n: int) -> None:
    import torch._dynamo.testing

    def f(x, cfg):
        cfg.hidden = n
        return x * cfg.hidden_size

    cnt = torch._dynamo.testing.CompileCounter()
    tc = torch.compile(f, backend=cnt)
    fd = ferrodyn.compile(f, backend="eager")
    for _ in range(3):
        a, b = Aliased(), Aliased()
        assert_tree_equal(fd(torch.ones(2), b), tc(torch.ones(2), a))
        assert vars(a) == vars(b)
    torch._dynamo.reset()
    assert fd.compile_count() == cnt.frame_count


class Guarded:
    """A Python __delattr__ that protects some names and logs deletions."""

    def __init__(self) -> None:
        self.keep = 1
        self.tmp = 2
        self.gone: list[str] = []

    def __delattr__(self, key: str) -> None:
        if key == "keep":
            raise AttributeError("keep is protected")
        self.gone.append(key)
        super().__delattr__(key)


def test_custom_delattr_is_traced() -> None:
    def f(x, obj):
        del obj.tmp
        try:
            del obj.keep
        except AttributeError as e:
            return x + 1, str(e), hasattr(obj, "tmp")
        return x, "", hasattr(obj, "tmp")

    a, b = Guarded(), Guarded()
    x = torch.zeros(2)
    expected = f(x, a)
    explanation = ferrodyn.explain(f)(x, Guarded())
    assert explanation.graph_break_count == 0
    got = ferrodyn.compile(f, backend="eager")(x, b)
    assert_tree_equal(got, expected)
    assert vars(a) == vars(b)
    assert b.gone == ["tmp"]
