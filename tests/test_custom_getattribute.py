"""A class's own Python `__getattribute__` is traced like any function (not run at trace
time, not a graph break): `super().__getattribute__(name)` inside it is the generic lookup,
with the usual guards. transformers' configs map attribute aliases this way. Also: a
submodule call that breaks runs its `forward` through a compiled wrapper of its own."""

from __future__ import annotations

import zlib
from typing import Any, ClassVar

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal
from torch._dynamo.testing import CompileCounter


class AliasConfig:
    attribute_map: ClassVar[dict[str, str]] = {"width": "hidden_size"}

    def __init__(self, hidden_size: int, scale: float) -> None:
        self.hidden_size = hidden_size
        self.scale = scale

    def __getattribute__(self, key: str) -> Any:
        if key != "attribute_map" and key in super().__getattribute__("attribute_map"):
            key = super().__getattribute__("attribute_map")[key]
        return super().__getattribute__(key)


class Doubling:
    """__getattribute__ that transforms what it finds."""

    def __init__(self, t: torch.Tensor) -> None:
        self.t = t

    def __getattribute__(self, key: str) -> Any:
        v = (
            object.__getattribute__(self, key)
            if key == "__dict__"
            else super().__getattribute__(key)
        )
        return v * 2 if isinstance(v, torch.Tensor) else v


class WithGetattrFallback:
    def __init__(self) -> None:
        self.a = 1

    def __getattribute__(self, key: str) -> Any:
        return super().__getattribute__(key)

    def __getattr__(self, key: str) -> Any:
        return 7


def uses_config(x: torch.Tensor, cfg: AliasConfig) -> torch.Tensor:
    return x * cfg.width + cfg.scale


def test_alias_config_is_traced_without_a_break() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(uses_config, backend=cnt, fullgraph=True)
    x = torch.randn(3)
    cfg = AliasConfig(4, 0.5)
    torch.testing.assert_close(compiled(x, cfg), uses_config(x, cfg))
    assert cnt.frame_count == 1


def test_alias_config_change_recompiles() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(uses_config, backend=cnt)
    x = torch.randn(3)
    cfg = AliasConfig(4, 0.5)
    compiled(x, cfg)
    cfg.hidden_size = 5  # the aliased attribute the trace read through __getattribute__
    torch.testing.assert_close(compiled(x, cfg), uses_config(x, cfg))
    assert cnt.frame_count == 2
    AliasConfig.attribute_map = {"width": "scale"}  # the alias table itself
    try:
        torch.testing.assert_close(compiled(x, cfg), uses_config(x, cfg))
    finally:
        AliasConfig.attribute_map = {"width": "hidden_size"}


def test_transforming_getattribute() -> None:
    def fn(x: torch.Tensor, d: Doubling) -> torch.Tensor:
        return x + d.t

    d = Doubling(torch.ones(3))
    x = torch.randn(3)
    torch.testing.assert_close(ferrodyn.compile(fn, backend="eager")(x, d), fn(x, d))


def test_getattr_fallback_is_not_guessed() -> None:
    def fn(x: torch.Tensor, o: WithGetattrFallback) -> torch.Tensor:
        return x + o.a + o.missing

    o = WithGetattrFallback()
    x = torch.randn(3)
    torch.testing.assert_close(ferrodyn.compile(fn, backend="eager")(x, o), fn(x, o))


def test_dict_subclass_attributes() -> None:
    class Registry(dict):  # type: ignore[type-arg]
        pass

    def fn(x: torch.Tensor, r: Registry) -> torch.Tensor:
        return x * r.factor

    r = Registry()
    r.factor = 3
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.randn(2)
    torch.testing.assert_close(compiled(x, r), fn(x, r))
    assert cnt.frame_count == 1


def test_transformers_config_attribute_alias() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=10)

    def fn(x: torch.Tensor, c: Any) -> torch.Tensor:
        return x * c.hidden_size + c.num_attention_heads  # aliases of n_embd / n_head

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.randn(2)
    torch.testing.assert_close(compiled(x, cfg), fn(x, cfg))
    assert cnt.frame_count == 1


class Inner(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x).relu()
        zlib.crc32(b"inner")  # graph break inside the submodule
        return self.lin(y) * 2


class Outer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = Inner()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 1) - 1


def test_submodule_that_breaks_is_compiled_in_its_own_frame() -> None:
    m = Outer()
    x = torch.randn(2, 4)
    exp = ferrodyn.explain(m, x)
    assert any(n.startswith("Inner.forward") for n in exp.graph_names), exp.graph_names
    compiled = ferrodyn.compile(m, backend="eager")
    for _ in range(2):
        torch.testing.assert_close(compiled(x), m(x))


def test_submodule_with_hook_that_breaks_runs_its_hooks_once() -> None:
    m = Outer()
    calls: list[int] = []
    m.inner.register_forward_hook(lambda mod, inp, out: calls.append(1))
    x = torch.randn(2, 4)
    expected = m(x)
    calls.clear()
    torch.testing.assert_close(ferrodyn.compile(m, backend="eager")(x), expected)
    assert calls == [1]


def test_missing_attribute_of_a_computed_tensor_is_an_attribute_error() -> None:
    """`hasattr(t, "jax")` on a tensor the graph computed is False, as in eager (a fresh
    tensor has no instance attributes); getattr raises an AttributeError the code can catch."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        if hasattr(y, "jax"):
            return y
        try:
            y.not_there  # noqa: B018
        except AttributeError:
            return y + 1
        return y - 1

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=True)
    x = torch.randn(3)
    torch.testing.assert_close(compiled(x), fn(x))
    assert cnt.frame_count == 1


class _BreakingMixin:
    def __getattribute__(self, key: str) -> Any:
        return super().__getattribute__(key)

    @property
    def view(self) -> int:
        torch._dynamo.graph_break()
        return 7


class _ShortcutBase:
    def __getattribute__(self, key: str) -> Any:
        if key == "zz":
            return 5
        return super().__getattribute__(key)


class _Chained(_ShortcutBase, _BreakingMixin):
    pass


def test_break_under_two_super_getattribute_overrides_resumes_in_the_c_lookup() -> None:
    # The split call `super().__getattribute__(key)` is rebuilt as object's lookup bound to
    # the instance, not `obj.__getattribute__` (which would re-enter the overrides forever).
    c = _Chained()

    def f(x: torch.Tensor) -> Any:
        return x + 1, c.__getattribute__("view"), c.zz

    out = ferrodyn.compile(f, backend="eager")(torch.ones(2))
    assert_tree_equal(out, f(torch.ones(2)))


def test_frames_with_empty_builtins_split_without_importing() -> None:
    # namedtuple's generated __new__ runs with `__builtins__ == {}`: nothing ferrodyn does
    # while it is the running frame may go through `__import__`.
    import collections

    pair = collections.namedtuple("pair", "a b")

    def f(x: torch.Tensor) -> Any:
        return pair.__new__(pair, x, x + 1)

    out = ferrodyn.compile(f, backend="eager")(torch.ones(2))
    assert_tree_equal(out, f(torch.ones(2)))
