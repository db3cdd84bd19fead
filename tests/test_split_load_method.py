"""A graph break at a method lookup (LOAD_METHOD, e.g. on an object whose attribute access
is implemented in C) splits the frame there like any attribute load: the glue runs it as
`PUSH_NULL; SWAP 2; LOAD_ATTR` (the same lookup, with a layout that does not depend on
the value), and the call and the rest of the frame continue in resume functions."""

from __future__ import annotations

from typing import Any

import ferrodyn
import numpy as np
import torch
from _helpers import assert_tree_equal


def _run(fn: Any, *args: Any) -> tuple[Any, int, int]:
    cnt = ferrodyn.testing.CompileCounter()
    out = ferrodyn.compile(fn, backend=cnt)(*args)
    breaks = ferrodyn.explain(fn)(*args).graph_break_count
    return out, cnt.frame_count, breaks


def ufunc_method(x: torch.Tensor) -> Any:
    y = x * 3  # graph 1
    s = float(np.add.reduce(np.array([1.0, 2.0, 3.0]), axis=0))  # breaks at `.reduce`
    return y.sin() - s  # graph 2


def test_a_break_at_a_method_lookup_splits_the_frame() -> None:
    x = torch.arange(3.0)
    out, graphs, breaks = _run(ufunc_method, x)
    assert_tree_equal(out, ufunc_method(x))
    assert graphs == 2, "ops on both sides of the method call are compiled"
    assert breaks >= 1


def missing_method_caught(x: torch.Tensor) -> Any:
    y = x + 1
    try:
        np.add.no_such_method(1)
    except AttributeError as e:
        y = y * 2
        msg = str(e)
    return y.cos(), msg


def test_the_lookup_raises_inside_the_frames_try_block() -> None:
    x = torch.arange(3.0)
    out, graphs, _ = _run(missing_method_caught, x)
    assert_tree_equal(out, missing_method_caught(x))
    assert graphs >= 1


def helper(a: np.ndarray) -> Any:
    return np.multiply.accumulate(a)


def inlined_callee(x: torch.Tensor) -> Any:
    y = x - 1
    acc = helper(np.array([1.0, 2.0, 4.0]))
    return y * float(acc[-1])


def test_a_method_lookup_break_inside_an_inlined_callee() -> None:
    x = torch.arange(3.0)
    out, graphs, _ = _run(inlined_callee, x)
    assert_tree_equal(out, inlined_callee(x))
    # as torch.compile: the break inside `helper`, then `float(acc[-1])` of the array (a
    # graph input of the resume function) reads its data
    assert graphs == 3
