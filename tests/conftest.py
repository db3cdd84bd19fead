"""Shared pytest setup for the ferrodyn behaviour suite.

``FERRODYN_TEST_REFERENCE=torch`` runs the suite against ``torch.compile`` through the
stand-in in ``_torch_reference.py`` (to validate the tests themselves); by default the
real ``ferrodyn`` package is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

REFERENCE = os.environ.get("FERRODYN_TEST_REFERENCE", "") == "torch"

if REFERENCE:
    import _torch_reference

    _torch_reference.install()

import ferrodyn


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ferrodyn_contract: ferrodyn's contract is stricter than torch.compile here "
        "(skipped when validating the suite against torch.compile)",
    )
    config.addinivalue_line(
        "markers",
        "inductor: compiles C++ through inductor (slow on CPU; kept few and tiny)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not REFERENCE:
        return
    skip = pytest.mark.skip(reason="ferrodyn contract differs from torch.compile here")
    for item in items:
        if "ferrodyn_contract" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    """Every test starts with empty caches, a fixed seed and the default recompile limit."""
    ferrodyn.reset()
    torch.manual_seed(0)
    limit = ferrodyn.config.recompile_limit
    yield
    ferrodyn.config.recompile_limit = limit
    ferrodyn.reset()
