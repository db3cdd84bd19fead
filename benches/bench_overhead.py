"""Per-call time of small workloads: eager vs torch.compile vs ferrodyn (backend="eager").

The compiled variants are warmed up first, so these measure steady-state calls: guard
evaluation plus running the cached graph.  Overhead = compiled time - eager time.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _cases import PER_CALL_CASES, Case, compile_with, reset_all


@pytest.mark.parametrize("case", PER_CALL_CASES, ids=[c.name for c in PER_CALL_CASES])
def test_per_call(benchmark: Any, impl: str, case: Case) -> None:
    reset_all()
    fn, args = case.make()
    compiled = compile_with(impl, fn)
    expected = fn(*args)
    for _ in range(20):
        got = compiled(*args)
    torch.testing.assert_close(got, expected)
    benchmark.group = f"per-call: {case.label}"
    benchmark(compiled, *args)
