"""Stores on a `threading.local` in a trace are replayed with its own setattr in the thread
that runs the compiled code (each thread keeps its own namespace); reads in the same trace
see them. Values equal eager in every thread."""

from __future__ import annotations

import threading

import ferrodyn
import torch

loc = threading.local()


def step(x: torch.Tensor, k: float) -> torch.Tensor:
    loc.scale = k
    loc.last = x.sum()
    return x * loc.scale + loc.last


def test_store_then_read_in_each_thread() -> None:
    compiled = ferrodyn.compile(step, backend="eager")
    results: dict[str, tuple[torch.Tensor, float, torch.Tensor]] = {}

    def run(name: str, k: float) -> None:
        out = compiled(torch.ones(2), k)
        results[name] = (out, loc.scale, loc.last)

    run("main", 3.0)
    t = threading.Thread(target=run, args=("other", 3.0))
    t.start()
    t.join()
    assert loc.scale == 3.0
    for out, scale, last in results.values():
        torch.testing.assert_close(out, torch.ones(2) * 3.0 + 2.0)
        assert scale == 3.0
        torch.testing.assert_close(last, torch.tensor(2.0))
