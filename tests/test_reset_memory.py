"""`ferrodyn.reset()` releases every graph, guard tree and resume function at once; compiled
callables can be weakly referenced."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import ferrodyn
import torch


def _tracking_backend(refs: list[weakref.ref[Any]]) -> Any:
    def backend(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
        refs.append(weakref.ref(gm))
        return gm.forward

    return backend


def _alive(refs: list[weakref.ref[Any]]) -> int:
    gc.collect()
    return sum(r() is not None for r in refs)


def test_reset_drops_every_graph_without_calling_again() -> None:
    refs: list[weakref.ref[Any]] = []
    backend = _tracking_backend(refs)
    compiled = []
    for i in range(40):

        def f(x: torch.Tensor, i: int = i) -> torch.Tensor:
            return (x + i) * 2

        cf = ferrodyn.compile(f, backend=backend)
        cf(torch.ones(2))
        compiled.append(cf)
    assert _alive(refs) == 40
    ferrodyn.reset()
    assert _alive(refs) == 0
    # Still usable: the next call traces again.
    torch.testing.assert_close(compiled[3](torch.ones(2)), torch.full((2,), 8.0))
    assert _alive(refs) == 1


def test_reset_drops_resume_functions_and_their_graphs() -> None:
    refs: list[weakref.ref[Any]] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        torch._dynamo.graph_break()
        return y * 2

    cf = ferrodyn.compile(f, backend=_tracking_backend(refs))
    torch.testing.assert_close(cf(torch.ones(2)), torch.full((2,), 4.0))
    assert _alive(refs) >= 1
    ferrodyn.reset()
    assert _alive(refs) == 0


def test_reset_drops_module_graphs() -> None:
    refs: list[weakref.ref[Any]] = []
    m = torch.nn.Linear(3, 3)
    cm = ferrodyn.compile(m, backend=_tracking_backend(refs))
    cm(torch.ones(1, 3))
    assert _alive(refs) == 1
    ferrodyn.reset()
    assert _alive(refs) == 0


def test_compiled_callables_support_weak_references() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    cf = ferrodyn.compile(f, backend="eager")
    r = weakref.ref(cf)
    assert r() is cf
    del cf
    gc.collect()
    assert r() is None

    m = ferrodyn.compile(torch.nn.Linear(2, 2), backend="eager")
    assert weakref.ref(m)() is m


def test_a_collected_compiled_function_releases_its_graphs() -> None:
    refs: list[weakref.ref[Any]] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * 3

    cf = ferrodyn.compile(f, backend=_tracking_backend(refs))
    cf(torch.ones(2))
    assert _alive(refs) == 1
    del cf
    assert _alive(refs) == 0
