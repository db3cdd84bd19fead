"""`os.environ` reads with a constant key (`os.environ[k]`, `.get`, `in`, `os.getenv`) are
folded into the trace and guarded on the environment: setting or unsetting the variable
between calls recompiles (transformers reads `TRANSFORMERS_SDPA_FORCE_GQA` in every
grouped-query attention call)."""

from __future__ import annotations

import os

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

VAR = "FERRODYN_TEST_ENV_FLAG"


def reads(x: torch.Tensor) -> torch.Tensor:
    if os.environ.get(VAR, "0") == "1":
        x = x * 2
    if VAR in os.environ:
        x = x + 1
    return x * len(os.getenv(VAR, "")) + x


@pytest.fixture(autouse=True)
def _unset() -> None:
    os.environ.pop(VAR, None)
    yield
    os.environ.pop(VAR, None)


def test_environment_reads_fold_and_recompile_when_it_changes() -> None:
    x = torch.randn(3)
    cnt = ferrodyn.testing.CompileCounter()
    cf = ferrodyn.compile(reads, backend=cnt)
    assert_tree_equal(cf(x), reads(x))
    assert ferrodyn.explain(reads)(x).graph_break_count == 0
    os.environ[VAR] = "1"
    assert_tree_equal(cf(x), reads(x))
    os.environ[VAR] = "22"
    assert_tree_equal(cf(x), reads(x))
    del os.environ[VAR]
    assert_tree_equal(cf(x), reads(x))
    assert cnt.frame_count == 3  # unset, "1", "22"; unset again reuses the first


def test_missing_key_raises_keyerror_like_eager() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        try:
            return x * len(os.environ[VAR])
        except KeyError as e:
            return x + len(str(e))

    x = torch.randn(3)
    assert_tree_equal(ferrodyn.compile(f, backend="eager")(x), f(x))
