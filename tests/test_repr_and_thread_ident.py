"""`repr()`/`str()` of objects made in the trace run their class's Python `__repr__` in the
trace (dataclasses' generated one included, with its recursion guard keyed on the thread),
and `threading.get_ident()` is the calling thread's id, guarded: a call from another thread
re-traces rather than reusing the first thread's id."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import ferrodyn
import torch
from _helpers import assert_no_breaks, assert_tree_equal
from ferrodyn.testing import CompileCounter

X = torch.arange(3.0)


class Named:
    def __init__(self, v: float) -> None:
        self.v = v

    def __repr__(self) -> str:
        return f"Named({self.v})"


@dataclasses.dataclass
class Opt:
    lr: float = 0.1
    steps: int = 2


def test_repr_and_str_of_objects_made_in_the_trace() -> None:
    def f(x: torch.Tensor) -> Any:
        a = Named(2.5)
        o = Opt(steps=3)
        return x * o.lr, repr(a), str(a), repr(o), str(o), o == Opt(steps=3)

    assert_no_breaks(f, X)


def test_repr_of_a_dataclass_argument() -> None:
    def f(x: torch.Tensor, o: Opt) -> Any:
        return x * o.steps, repr(o)

    assert_no_breaks(f, X, Opt(0.5, 4))


def test_thread_ident_is_the_calling_threads() -> None:
    def f(x: torch.Tensor) -> Any:
        return x + 1, threading.get_ident()

    cnt = CompileCounter()
    compiled = ferrodyn.compile(f, backend=cnt)
    here = compiled(X)
    assert here[1] == threading.get_ident()
    assert_tree_equal(here[0], X + 1)
    seen: list[Any] = []

    def other() -> None:
        seen.append((compiled(X)[1], threading.get_ident()))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    got, expected = seen[0]
    assert got == expected != here[1]
    assert compiled(X)[1] == threading.get_ident()
    assert cnt.frame_count == 2
