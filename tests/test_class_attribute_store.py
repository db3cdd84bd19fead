"""A class attribute stored in the trace (`C.count = C.count + 1` on a user class with the
plain metaclass) is read back in the trace and replayed on the class after the graph;
reading it through an instance or a subclass in the same trace breaks the graph rather
than seeing the old value. Values and the class's state equal eager."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter


class Registry:
    count = 1

    def get(self) -> int:
        return self.count


class Sub(Registry):
    pass


def bump(x: torch.Tensor, c: type) -> Any:
    y = x * 2
    c.count = c.count + 1
    return y + c.count


def bump_then_read_through_instance(x: torch.Tensor, c: type, o: Registry) -> Any:
    c.count = c.count + 1
    return x + o.get() + Sub.count


def _run(fn: Any, *args: Any) -> tuple[Any, int]:
    Registry.count = 1
    out = fn(torch.ones(1), *args)
    return out, Registry.count


def test_class_store_in_one_graph() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(bump, backend=cnt)
    got, expected = _run(compiled, Registry), _run(bump, Registry)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1] == expected[1] == 2
    assert cnt.frame_count == 1
    Registry.count = 1
    assert ferrodyn.explain(bump)(torch.ones(1), Registry).graph_break_count == 0


def test_read_through_instance_or_subclass_after_store() -> None:
    compiled = ferrodyn.compile(bump_then_read_through_instance, backend="eager")
    got = _run(compiled, Registry, Registry())
    expected = _run(bump_then_read_through_instance, Registry, Registry())
    torch.testing.assert_close(got[0], expected[0])
    assert got[1] == expected[1]
    Registry.count = 1
