"""Data-dependent values: ``.item()``, ``.tolist()``, ``bool``/``int``/``float`` of a tensor,
``if tensor:`` and tensor comparisons in Python control flow.

Each one is a graph break: results must equal eager for inputs taking every branch.  With
resume functions the tensor work before the break is still compiled (graph-count tests).  Under ``fullgraph=True`` each raises ``ferrodyn.exc.Unsupported`` naming
the step and the user's file:line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_same, assert_tree_equal

THIS_FILE = Path(__file__).name


def line_of(marker: str) -> int:
    """1-based line number of the unique source line carrying ``# <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


# --------------------------------------------------------------------------- the functions


def item_branch(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    if y.sum().item() > 0:  # DD-item
        return y + 1
    return y - 1


def tolist_python_math(x: torch.Tensor) -> tuple[torch.Tensor, list[float], float]:
    y = x.abs() + 1
    vals = y.tolist()  # DD-tolist
    total = sum(vals)
    return y / total, vals, max(vals)


def bool_of_tensor(x: torch.Tensor) -> torch.Tensor:
    y = x - 0.25
    if bool((y > 0).any()):  # DD-bool
        return y.relu()
    return y.neg()


def if_tensor(x: torch.Tensor) -> torch.Tensor:
    y = x.sum(dim=0, keepdim=True)
    if y:  # DD-if
        return y * 3
    return y - 3


def while_sum_positive(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    x = x.abs() + 0.5
    steps = 0
    while x.sum() > 0:  # DD-while
        x = x - 1
        steps += 1
    return x, steps


def int_of_tensor(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    y = x.floor()
    k = int(y.max())  # DD-int
    return y * k + torch.arange(3), k % 4


def float_of_tensor(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    y = x.exp()
    f = float(y.mean())  # DD-float
    return y - f, round(f, 3)


def compare_tensors_in_if(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    a = x.relu()
    if a.max() > y.max():  # DD-compare
        return a - y
    return a + y


def item_indexes_a_list(x: torch.Tensor) -> tuple[torch.Tensor, str]:
    names = ["zero", "one", "two", "three"]
    name = names[int(x.argmax().item()) % len(names)]  # DD-index
    return x * len(name), name


def item_in_inlined_helper(x: torch.Tensor) -> torch.Tensor:
    return _positive_part(x * 3) + 1


def _positive_part(y: torch.Tensor) -> torch.Tensor:
    if y.sum().item() >= 0:  # DD-helper
        return y
    return -y


ONE_ARG = [
    item_branch,
    tolist_python_math,
    bool_of_tensor,
    if_tensor,
    while_sum_positive,
    int_of_tensor,
    float_of_tensor,
    item_indexes_a_list,
    item_in_inlined_helper,
]
INPUTS = {
    "pos": lambda: torch.tensor([0.5, 1.5, 2.5]),
    "neg": lambda: torch.tensor([-0.5, -1.5, -2.5]),
    "mixed": lambda: torch.tensor([3.0, -1.0, 0.25]),
    "randn": lambda: torch.randn(3),
}


# --------------------------------------------------------------------------- results


@pytest.mark.parametrize("inp", list(INPUTS), ids=list(INPUTS))
@pytest.mark.parametrize("fn", ONE_ARG, ids=lambda f: f.__name__)
def test_results_equal_eager(fn: Callable[..., Any], inp: str) -> None:
    assert_same(fn, INPUTS[inp]())


@pytest.mark.parametrize("inp", list(INPUTS), ids=list(INPUTS))
def test_tensor_comparison_in_if_results(inp: str) -> None:
    assert_same(compare_tensors_in_if, INPUTS[inp](), torch.randn(3))


@pytest.mark.parametrize("fn", ONE_ARG, ids=lambda f: f.__name__)
def test_branch_follows_data_on_every_call(fn: Callable[..., Any]) -> None:
    # One compiled function, inputs alternating between branches: a stale specialization
    # on the data-dependent value would return the other branch's result.
    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    for name in ["pos", "neg", "mixed", "pos", "neg", "mixed"]:
        x = INPUTS[name]()
        assert_tree_equal(compiled(x.clone()), fn(x.clone()), f"input {name}")


def test_while_loop_step_count_follows_data() -> None:
    compiled = ferrodyn.compile(while_sum_positive, backend=ferrodyn.testing.CompileCounter())
    for scale in (1.0, 4.0, 0.1, 10.0):
        x = torch.full((3,), scale)
        assert compiled(x)[1] == while_sum_positive(x)[1]


# --------------------------------------------------------------------------- graph counts

# The tensor work before the data-dependent step is compiled.  TorchDynamo (torch 2.15)
# compiles 2 graphs for each of these on a first call, 3-4 for item_in_inlined_helper.
WITH_WORK_BEFORE = [
    item_branch,
    tolist_python_math,
    bool_of_tensor,
    if_tensor,
    int_of_tensor,
    float_of_tensor,
    item_in_inlined_helper,
]


@pytest.mark.parametrize("fn", WITH_WORK_BEFORE, ids=lambda f: f.__name__)
def test_work_before_the_break_is_compiled(fn: Callable[..., Any]) -> None:
    cnt = assert_same(fn, INPUTS["pos"]())
    assert cnt.frame_count >= 1


@pytest.mark.parametrize("fn", [item_branch, bool_of_tensor, if_tensor], ids=lambda f: f.__name__)
def test_work_on_both_sides_of_the_break_is_compiled(fn: Callable[..., Any]) -> None:
    # TorchDynamo: 2 graphs (before the step, and the branch taken after it).
    cnt = assert_same(fn, INPUTS["pos"]())
    assert cnt.frame_count == 2


def test_compare_in_if_compiles_both_sides() -> None:
    cnt = assert_same(compare_tensors_in_if, INPUTS["pos"](), torch.zeros(3))
    assert cnt.frame_count == 2


def test_while_on_tensor_compiles_the_work() -> None:
    # TorchDynamo: 3 graphs (a break on a jump resumes at both targets, even in a loop).
    cnt = assert_same(while_sum_positive, INPUTS["pos"]())
    assert cnt.frame_count >= 1


def test_other_branch_later_compiles_more_not_wrong() -> None:
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(item_branch, backend=cnt)
    pos, neg = INPUTS["pos"](), INPUTS["neg"]()
    torch.testing.assert_close(compiled(pos), item_branch(pos))
    first = cnt.frame_count
    torch.testing.assert_close(compiled(neg), item_branch(neg))
    torch.testing.assert_close(compiled(pos), item_branch(pos))
    torch.testing.assert_close(compiled(neg), item_branch(neg))
    assert cnt.frame_count >= first
    assert cnt.frame_count <= first + 2  # the other branch's resume graph, once


# --------------------------------------------------------------------------- fullgraph=True

FULLGRAPH_CASES: list[Any] = [
    (item_branch, (INPUTS["pos"](),), "DD-item", "item"),
    (tolist_python_math, (INPUTS["pos"](),), "DD-tolist", "tolist"),
    (bool_of_tensor, (INPUTS["pos"](),), "DD-bool", "bool"),
    (if_tensor, (INPUTS["pos"](),), "DD-if", None),
    (while_sum_positive, (INPUTS["pos"](),), "DD-while", None),
    # TorchDynamo (torch 2.15) captures int()/float() of a tensor as an unbacked symbol
    # when only tensor math and returning it follow; ferrodyn breaks there.
    pytest.param(
        int_of_tensor, (INPUTS["pos"](),), "DD-int", "int(", marks=pytest.mark.ferrodyn_contract
    ),
    pytest.param(
        float_of_tensor,
        (INPUTS["pos"](),),
        "DD-float",
        "float(",
        marks=pytest.mark.ferrodyn_contract,
    ),
    (compare_tensors_in_if, (INPUTS["pos"](), torch.zeros(3)), "DD-compare", None),
    (item_indexes_a_list, (INPUTS["pos"](),), "DD-index", "item"),
    (item_in_inlined_helper, (INPUTS["pos"](),), "DD-helper", "item"),
]


FULLGRAPH_IDS = [
    "item",
    "tolist",
    "bool",
    "if",
    "while",
    "int",
    "float",
    "compare",
    "item_index",
    "item_in_helper",
]


@pytest.mark.parametrize("fn,args,marker,step", FULLGRAPH_CASES, ids=FULLGRAPH_IDS)
def test_fullgraph_raises_unsupported_at_the_step(
    fn: Callable[..., Any], args: tuple[Any, ...], marker: str, step: str | None
) -> None:
    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter(), fullgraph=True)
    with pytest.raises(ferrodyn.exc.Unsupported) as info:
        compiled(*args)
    msg = str(info.value)
    assert f"{THIS_FILE}:{line_of(marker)}" in msg, msg
    if step is not None:
        assert step in msg, msg
