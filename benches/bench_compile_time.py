"""First-call (trace + compile) time of a 12-block transformer, backend="eager"."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from _cases import FIRST_CALL_CASE, compile_with, reset_all


def test_first_call(benchmark: Any, impl: str) -> None:
    if impl == "eager":
        pytest.skip("first-call time only compares the two tracers")
    model, args = FIRST_CALL_CASE.make()
    expected = model(*args)
    outputs: list[torch.Tensor] = []

    def first_call() -> None:
        compiled = compile_with(impl, model)
        outputs.append(compiled(*args))

    benchmark.group = f"first call: {FIRST_CALL_CASE.label}"
    benchmark.pedantic(first_call, setup=reset_all, rounds=3, iterations=1, warmup_rounds=0)
    for out in outputs:
        torch.testing.assert_close(out, expected)
