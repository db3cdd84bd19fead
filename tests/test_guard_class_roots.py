"""Guards on `type(x).attr` re-rooted at the class (`GuardTree::build`): where a guard pins
`x`'s exact type, the guards on `type(x).forward` (and below it) of every instance of that
class are one node under the class. Each change that must recompile still does: the class's
method replaced, its code replaced, one instance's class changed, an instance attribute
shadowing the method."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import torch


class Lin(torch.nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 1


class OtherLin(torch.nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) - 1


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(*[Lin(4, 4) for _ in range(4)])


def _counting() -> tuple[list[int], Callable[..., Any]]:
    graphs: list[int] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        graphs.append(1)
        return gm.forward

    return graphs, backend


def _guards_of(compiled: Any) -> list[str]:
    return compiled.guards()[0]


def test_one_guard_node_for_the_shared_class() -> None:
    model = _model()
    _graphs, backend = _counting()
    fn = ferrodyn.compile(lambda x: model(x), backend=backend)
    x = torch.randn(2, 4)
    assert torch.equal(fn(x), model(x))
    text = _guards_of(fn)
    per_class = [g for g in text if g.startswith(f"{__name__}.Lin.forward:")]
    assert len(per_class) == 1, per_class
    # Each instance keeps its own exact-type guard.
    assert sum(1 for g in text if g.endswith(f"]: type is {__name__}.Lin")) == 4


def test_replacing_the_class_method_recompiles() -> None:
    model = _model()
    graphs, backend = _counting()
    fn = ferrodyn.compile(lambda x: model(x), backend=backend)
    x = torch.randn(2, 4)
    assert torch.equal(fn(x), model(x))
    original = Lin.forward
    try:
        Lin.forward = lambda self, x: torch.nn.functional.linear(x, self.weight, self.bias) * 2
        assert torch.equal(fn(x), model(x))
        assert len(graphs) == 2
    finally:
        Lin.forward = original
    assert torch.equal(fn(x), model(x))


def test_replacing_the_method_code_recompiles() -> None:
    class Local(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.linear(x, self.weight, self.bias) * 3

    def other(self: Any, x: torch.Tensor) -> torch.Tensor:
        return x + 5

    torch.manual_seed(0)
    model = torch.nn.Sequential(Local(4, 4), Local(4, 4))
    graphs, backend = _counting()
    fn = ferrodyn.compile(lambda x: model(x), backend=backend)
    x = torch.randn(2, 4)
    assert torch.equal(fn(x), model(x))
    code = Local.forward.__code__
    try:
        Local.forward.__code__ = other.__code__
        assert torch.equal(fn(x), model(x))
        assert len(graphs) == 2
    finally:
        Local.forward.__code__ = code


def test_changing_one_instances_class_recompiles() -> None:
    model = _model()
    graphs, backend = _counting()
    fn = ferrodyn.compile(lambda x: model(x), backend=backend)
    x = torch.randn(2, 4)
    assert torch.equal(fn(x), model(x))
    model[2].__class__ = OtherLin
    assert torch.equal(fn(x), model(x))
    assert len(graphs) == 2


def test_instance_attribute_shadowing_forward_recompiles() -> None:
    model = _model()
    graphs, backend = _counting()
    fn = ferrodyn.compile(lambda x: model(x), backend=backend)
    x = torch.randn(2, 4)
    assert torch.equal(fn(x), model(x))
    model[1].forward = lambda x: x * 0
    assert torch.equal(fn(x), model(x))
    assert len(graphs) == 2
