"""`self.layers[:n]` on a stock `nn.ModuleList` (transformers' decoder loops) is traced: the
slice's modules are iterated, indexed and counted in the graph; if the slice itself escapes
it is `m[:n]` again (a new ModuleList per call, as in eager); anything else a ModuleList
could do with it breaks the graph with the eager result."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
import torch._dynamo
from _helpers import assert_tree_equal


class Stack(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4, 4) for _ in range(4))
        self.n = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[: self.n]:
            x = layer(x).relu()
        return x


def counts(fn: Any, *args: Any) -> tuple[Any, Any]:
    torch._dynamo.reset()
    fd = ferrodyn.testing.CompileCounter()
    tc = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=fd)(*args), fn(*args))
    assert_tree_equal(torch.compile(fn, backend=tc)(*args), fn(*args))
    return fd, tc


def test_loop_over_a_module_list_slice_is_one_graph_like_torch_compile() -> None:
    m = Stack()
    x = torch.randn(2, 4)
    fd, tc = counts(m, x)
    assert fd.frame_count == tc.frame_count == 1
    assert fd.op_count == 6  # three linear + three relu (torch.compile counts one more node)
    assert ferrodyn.explain(m)(x).graph_break_count == 0


def test_slice_length_index_and_type_are_eagers() -> None:
    m = Stack()

    def f(x: torch.Tensor) -> tuple[torch.Tensor, int, bool]:
        part = m.layers[1:]
        return part[-1](x) + part[0](x), len(part), isinstance(part, torch.nn.ModuleList)

    x = torch.randn(2, 4)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))


def test_an_escaping_slice_is_a_new_module_list_each_call() -> None:
    m = Stack()

    def f(x: torch.Tensor) -> tuple[torch.Tensor, torch.nn.ModuleList]:
        part = m.layers[:2]
        return part[1](x), part

    cf = ferrodyn.compile(f, backend="eager")
    x = torch.randn(2, 4)
    out1, s1 = cf(x)
    out2, s2 = cf(x)
    assert type(s1) is torch.nn.ModuleList and s1 is not s2 and s1 is not m.layers
    assert list(s1) == list(m.layers[:2]) == list(s2)
    assert_tree_equal(out1, f(x)[0])
    assert_tree_equal(out2, out1)


def test_mutating_a_slice_breaks_and_equals_eager() -> None:
    m = Stack()

    def f(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        part = m.layers[:2]
        part.append(torch.nn.Identity())
        return part[0](x), len(part)

    x = torch.randn(2, 4)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))
    assert len(m.layers) == 4


def test_break_inside_a_loop_over_a_slice_resumes_with_the_next_module() -> None:
    m = Stack()
    seen: list[int] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(m.layers[: m.n]):
            x = layer(x)
            torch._dynamo.graph_break()
            seen.append(i)
        return x

    x = torch.randn(2, 4)
    expected = f(x)
    want = list(seen)
    seen.clear()
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), expected)
    assert seen == want
