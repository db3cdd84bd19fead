"""Graph breaks carry a stable type tag, a category, an explanation and hints (checklist item
138), on `ferrodyn.exc.Unsupported` (fullgraph=True) and on `explain()`'s break reasons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from ferrodyn import break_types


def explicit(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    torch._dynamo.graph_break()
    return y * 2


def data_dependent(x: torch.Tensor) -> torch.Tensor:
    return (x + 1).nonzero()


def branch(x: torch.Tensor) -> torch.Tensor:
    if x.sum() > 0:
        return x + 1
    return x - 1


def c_call(x: torch.Tensor) -> Any:
    import zlib

    return x + zlib.crc32(b"a") % 3


CASES: dict[str, tuple[Callable[..., Any], str, str]] = {
    "explicit": (explicit, "Call to `torch._dynamo.graph_break()`", "user_error"),
    "data_dependent": (data_dependent, "Data-dependent operator", "fundamental"),
    "branch": (branch, "Data-dependent branching", "fundamental"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fullgraph_error_is_classified(name: str) -> None:
    fn, tag, category = CASES[name]
    with pytest.raises(ferrodyn.exc.Unsupported) as e:
        ferrodyn.compile(fn, backend="eager", fullgraph=True)(torch.ones(2))
    assert e.value.gb_type == tag
    assert e.value.category == category
    assert e.value.explanation and e.value.hints


@pytest.mark.parametrize("name", sorted(CASES))
def test_explain_reasons_are_classified(name: str) -> None:
    fn, tag, category = CASES[name]
    reasons = ferrodyn.explain(fn)(torch.ones(2)).break_reasons
    assert reasons
    assert reasons[0].gb_type == tag and reasons[0].category == category
    assert reasons[0].break_type.context == reasons[0].reason


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("call to non-traceable function numpy.sin", "supportable"),
        ("the bytecode instruction LOAD_BUILD_CLASS is not supported yet", "supportable"),
        ("ferrodyn internal: cannot read the torch global state", "ferrodyn_bug"),
        ("'Box' object has no attribute 'v' (AttributeError)", "user_error"),
        ("tensor created under inference_mode", "inference_mode"),
        ("constructing Opts: it has a custom metaclass", "difficult"),
        ("something no rule knows", "supportable"),
    ],
)
def test_every_reason_gets_a_category(reason: str, category: str) -> None:
    bt = break_types.classify(reason)
    assert bt.category == category
    assert bt.category in break_types.CATEGORIES
    assert bt.gb_type and bt.explanation and bt.hints and bt.context == reason
