"""A graph break passes only the live locals to its resume function (as Dynamo's
liveness analysis does): dead temporaries do not make a new resume function per set of
bound names, and dead tensors do not become graph outputs."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal as assert_same


def _counted(fn: Any, *args: Any) -> tuple[Any, int]:
    cnt = ferrodyn.testing.CompileCounter()
    out = ferrodyn.compile(fn, backend=cnt)(*args)
    return out, cnt.frame_count


def loop_with_late_temporary(xs: list[torch.Tensor]) -> torch.Tensor:
    acc = xs[0] * 0
    for t in xs:
        acc = acc + 1
        torch._dynamo.graph_break()  # breaks in every iteration
        y = t * 2  # bound only from the second iteration's break on, and dead there
        acc = acc + y
    return acc


def test_first_and_later_iterations_share_resume_functions() -> None:
    xs = [torch.ones(3), -torch.ones(3), torch.ones(3), -torch.ones(3), torch.ones(3)]
    out, graphs = _counted(loop_with_late_temporary, xs)
    assert_same(out, loop_with_late_temporary(xs))
    # the prefix, the resume function's graph (up to the next iteration's break) and the
    # loop's exit: no extra graphs for the iterations that had `y` bound
    assert graphs == 3, graphs
    _, graphs_long = _counted(loop_with_late_temporary, xs * 2)
    assert graphs_long == graphs


def dead_tensor_at_break(x: torch.Tensor) -> torch.Tensor:
    big = x.exp()  # used only before the break
    y = big.sum()
    if y > 0:
        return x + 1
    return x - 1


def test_a_dead_tensor_is_not_a_graph_output() -> None:
    outputs: list[int] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: Any) -> Any:
        out = next(n for n in gm.graph.nodes if n.op == "output")
        outputs.append(len(out.args[0]))
        return gm

    x = torch.randn(4)
    out = ferrodyn.compile(dead_tensor_at_break, backend=backend)(x)
    assert_same(out, dead_tensor_at_break(x))
    # the first graph returns the branch's condition and `x`; `big` and `y` are dead there
    assert outputs[0] == 2, outputs


def uses_locals_by_name(x: torch.Tensor) -> Any:
    tmp = x * 3
    if x.sum() > 0:
        pass
    return sorted(locals())


def test_code_that_reads_locals_by_name_keeps_every_local() -> None:
    x = torch.ones(2)
    out, _ = _counted(uses_locals_by_name, x)
    assert out == uses_locals_by_name(x)


class Base(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


class Child(Base):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        if y.sum() > 0:  # break; `self` is dead below except through zero-argument super()
            y = y + 1
        return super().forward(y)


def test_zero_argument_super_after_a_break_keeps_self() -> None:
    m = Child()
    x = torch.ones(2)
    out = ferrodyn.compile(m, backend="eager")(x)
    assert_same(out, m(x))
