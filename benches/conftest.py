"""pytest-benchmark setup: collect ``bench_*.py`` files and provide the implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from _cases import IMPLS, load_ferrodyn


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "ferrodyn":
        mod, err = load_ferrodyn()
        if mod is None:
            pytest.skip(f"ferrodyn not importable: {err}")
    return name


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
