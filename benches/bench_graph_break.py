"""Per-call time of a function with one graph break in the middle of 20 tensor ops.

eager vs torch.compile vs ferrodyn (backend="eager"), warmed up first: under torch.compile
each call runs graph 1, the untraceable ``zlib.crc32`` natively, then the resume function's
graph 2.  Compare the groups' medians (or use ``compare.py``, which prints the ratio).
"""

from __future__ import annotations

from typing import Any

import torch
from _cases import GRAPH_BREAK_CASE, compile_with, reset_all


def test_graph_break_per_call(benchmark: Any, impl: str) -> None:
    reset_all()
    fn, args = GRAPH_BREAK_CASE.make()
    compiled = compile_with(impl, fn)
    expected = fn(*args)
    for _ in range(20):
        got = compiled(*args)
    torch.testing.assert_close(got, expected)
    benchmark.group = f"per-call: {GRAPH_BREAK_CASE.label}"
    benchmark(compiled, *args)
