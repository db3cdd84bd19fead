"""nn.Modules are matched by class, not identity (as torch.compile's unspecialized modules).

One graph serves every module of a class whose state the trace read alike: a block function
compiled once and called per layer, the layers of a model compiled one by one (their
compiled forwards share a cache, as torch.compile's cache lives on the code object), and a
loop over a `ModuleList` with a break in its body. What the trace reads of a module (its
parameters, buffers, attributes, submodules, `training`, an instance `forward`) is guarded
where it is read, so a module that differs in any of them gets its own graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo

pytestmark = pytest.mark.ferrodyn_contract


class Counter:
    """A backend that counts the graphs it is given."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        self.graphs += 1
        return gm.forward


def _layers(n: int = 5) -> torch.nn.ModuleList:
    torch.manual_seed(0)
    return torch.nn.ModuleList(
        [torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()) for _ in range(n)]
    )


def block(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return layer(x) * 2


def _run_block(compile_fn: Callable[..., Any]) -> tuple[torch.Tensor, int]:
    layers = _layers()
    be = Counter()
    cb = compile_fn(block, backend=be)
    y = torch.randn(2, 4)
    for layer in layers:
        y = cb(layer, y)
    return y, be.graphs


def test_block_function_reused_across_layers() -> None:
    y, graphs = _run_block(ferrodyn.compile)
    torch._dynamo.reset()
    yt, tc_graphs = _run_block(torch.compile)
    layers = _layers()  # seeds as _run_block does: same layers, same input
    ref = torch.randn(2, 4)
    for layer in layers:
        ref = block(layer, ref)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(yt, ref)
    # The second layer's input requires grad (the first layer's output): one recompile.
    assert graphs == tc_graphs == 2


def _run_per_module(compile_fn: Callable[..., Any]) -> tuple[torch.Tensor, int]:
    layers = _layers()
    be = Counter()
    compiled = [compile_fn(layer, backend=be) for layer in layers]
    z = torch.ones(2, 4)
    with torch.no_grad():
        for m in compiled:
            z = m(z)
    return z, be.graphs


def test_layers_compiled_one_by_one_share_a_graph() -> None:
    z, graphs = _run_per_module(ferrodyn.compile)
    torch._dynamo.reset()
    zt, tc_graphs = _run_per_module(torch.compile)
    layers = _layers()
    ref = torch.ones(2, 4)
    with torch.no_grad():
        for layer in layers:
            ref = layer(ref)
    torch.testing.assert_close(z, ref)
    torch.testing.assert_close(zt, ref)
    assert graphs == tc_graphs == 1


def test_explain_still_gets_its_own_cache() -> None:
    layers = _layers(2)
    w = ferrodyn.compile(layers[0], backend="eager")
    w(torch.randn(2, 4))
    assert ferrodyn.explain(layers[1])(torch.randn(2, 4)).graph_count == 1


class Scaled(torch.nn.Module):
    def __init__(self, scale: float, act: bool) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)
        self.scale = scale
        self.act = act
        self.register_buffer("shift", torch.full((3,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x) * self.scale + self.shift
        if self.act:
            y = torch.relu(y)
        if self.training:
            y = y - 1
        return y


def apply(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m(x)


def test_modules_that_differ_get_their_own_graphs() -> None:
    torch.manual_seed(0)
    mods = [Scaled(1.0, True), Scaled(2.0, True), Scaled(1.0, False), Scaled(1.0, True)]
    mods[3].eval()
    be = Counter()
    f = ferrodyn.compile(apply, backend=be)
    x = torch.randn(2, 3)
    with torch.no_grad():
        for m in mods:
            torch.testing.assert_close(f(m, x), apply(m, x))
        # The same modules again: no new graph, still right.
        before = be.graphs
        for m in mods:
            torch.testing.assert_close(f(m, x), apply(m, x))
    assert be.graphs == before
    # A module of the same class with the same attribute values reuses a graph.
    twin = Scaled(2.0, True)
    with torch.no_grad():
        torch.testing.assert_close(f(twin, x), apply(twin, x))
    assert be.graphs == before


def test_parameter_change_is_seen() -> None:
    torch.manual_seed(0)
    a, b = Scaled(1.0, False), Scaled(1.0, False)
    f = ferrodyn.compile(apply, backend=Counter())
    x = torch.randn(2, 3)
    with torch.no_grad():
        f(a, x)
        torch.testing.assert_close(f(b, x), apply(b, x))
        b.lin.weight.fill_(0.25)
        torch.testing.assert_close(f(b, x), apply(b, x))
        b.lin.weight = torch.nn.Parameter(torch.zeros(3, 3))
        torch.testing.assert_close(f(b, x), apply(b, x))


def test_instance_forward_override_is_called() -> None:
    torch.manual_seed(0)
    m = Scaled(1.0, False)
    f = ferrodyn.compile(apply, backend=Counter())
    x = torch.randn(2, 3)
    torch.testing.assert_close(f(m, x), apply(m, x))
    m.lin.forward = lambda t: t - 100  # type: ignore[method-assign]
    torch.testing.assert_close(f(m, x), apply(m, x))
    del m.lin.forward
    torch.testing.assert_close(f(m, x), apply(m, x))


def loop_with_break(x: torch.Tensor, layers: torch.nn.ModuleList) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
        torch._dynamo.graph_break()
        x = x * 2
    return x


def test_break_in_layer_loop_does_not_recompile_per_layer() -> None:
    layers = _layers(12)
    be = Counter()
    f = ferrodyn.compile(loop_with_break, backend=be)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(f(x, layers), loop_with_break(x, layers))
        torch.testing.assert_close(f(x, layers), loop_with_break(x, layers))
    # The frame up to the break, and the loop's resume function: not one per layer.
    assert be.graphs <= 3


def test_identity_of_modules_is_still_guarded() -> None:
    torch.manual_seed(0)
    a, b = Scaled(1.0, False), Scaled(1.0, False)

    def same(m: torch.nn.Module, n: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x + 1 if m is n else x - 1

    f = ferrodyn.compile(same, backend=Counter())
    x = torch.randn(2)
    for args in [(a, a), (a, b), (b, b), (b, a)]:
        torch.testing.assert_close(f(*args, x), same(*args, x))


def test_id_of_module_is_guarded() -> None:
    torch.manual_seed(0)
    a, b = Scaled(1.0, False), Scaled(1.0, False)
    seen = {id(a): 1.0, id(b): 2.0}

    def by_id(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return x * seen[id(m)]

    f = ferrodyn.compile(by_id, backend=Counter())
    x = torch.randn(2)
    torch.testing.assert_close(f(a, x), by_id(a, x))
    torch.testing.assert_close(f(b, x), by_id(b, x))


class Holder:
    def __init__(self, w: torch.Tensor, k: float) -> None:
        self.w = w
        self.k = k


def use_holder(h: Holder, x: torch.Tensor) -> torch.Tensor:
    return x * h.w + h.k


def test_alternating_objects_of_one_class_fetch_their_own_tensors() -> None:
    # Two objects of one class, each guarded by class: a failing check of one against the
    # other's cache entry must not leave the other's cached attribute values behind.
    a = Holder(torch.full((3,), 2.0), 1.0)
    b = Holder(torch.full((3,), -5.0), 2.0)
    f = ferrodyn.compile(use_holder, backend=Counter())
    x = torch.ones(3)
    for h in [a, b, a, b, a, a, b]:
        torch.testing.assert_close(f(h, x), use_holder(h, x))


def enumerate_with_break(x: torch.Tensor, layers: torch.nn.ModuleList) -> torch.Tensor:
    for i, layer in enumerate(layers):
        x = layer(x) + i
        torch._dynamo.graph_break()
        x = x * 2
    return x


def test_break_in_enumerate_loop_makes_the_index_dynamic() -> None:
    # The resume function receives `(i, layer)`: the index becomes a symbolic int after it
    # changes (automatic dynamic), the layer is matched by class.
    layers = _layers(10)
    be = Counter()
    f = ferrodyn.compile(enumerate_with_break, backend=be)
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(f(x, layers), enumerate_with_break(x, layers))
        graphs = be.graphs
        torch.testing.assert_close(f(x, layers), enumerate_with_break(x, layers))
    assert graphs <= 4
    assert be.graphs == graphs


def scale_by_pair(x: torch.Tensor, pair: tuple[int, int]) -> torch.Tensor:
    return x * pair[0] + pair[1]


def _pair_graphs(compile_fn: Callable[..., Any]) -> tuple[list[torch.Tensor], int]:
    be = Counter()
    f = compile_fn(scale_by_pair, backend=be)
    x = torch.ones(3)
    outs = [f(x, (a, 1)) for a in (2, 3, 4, 5)]
    return outs, be.graphs


def test_int_items_of_a_tuple_argument_become_dynamic() -> None:
    outs, graphs = _pair_graphs(ferrodyn.compile)
    torch._dynamo.reset()
    _, tc_graphs = _pair_graphs(torch.compile)
    for a, out in zip((2, 3, 4, 5), outs, strict=True):
        torch.testing.assert_close(out, scale_by_pair(torch.ones(3), (a, 1)))
    assert graphs == tc_graphs == 2
