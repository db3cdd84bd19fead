"""Comparison helpers shared by the test files."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import ferrodyn
import torch


def clone_tree(obj: Any) -> Any:
    """Deep copy of an argument tree; tensors are cloned (keeping requires_grad)."""
    if isinstance(obj, torch.Tensor):
        out = obj.detach().clone()
        out.requires_grad_(obj.requires_grad)
        return out
    if isinstance(obj, torch.nn.Module):
        return copy.deepcopy(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(clone_tree(x) for x in obj))
    if isinstance(obj, tuple | list):
        return type(obj)(clone_tree(x) for x in obj)
    if isinstance(obj, dict):
        return type(obj)((k, clone_tree(v)) for k, v in obj.items())
    return obj


def assert_tree_equal(got: Any, expected: Any, path: str = "result", **tol: Any) -> None:
    """Same structure, same container types, tensors close (dtype/shape/device exact)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{path}: expected a Tensor, got {type(got)}"
        assert got.shape == expected.shape, f"{path}: shape {got.shape} != {expected.shape}"
        assert got.dtype == expected.dtype, f"{path}: dtype {got.dtype} != {expected.dtype}"
        assert got.device == expected.device, f"{path}: device {got.device} != {expected.device}"
        if expected.device.type != "meta":
            torch.testing.assert_close(got, expected, msg=lambda m: f"{path}: {m}", **tol)
        return
    assert type(got) is type(expected), f"{path}: type {type(got)} != {type(expected)}"
    if isinstance(expected, torch.nn.Module):
        assert_tree_equal(got.state_dict(), expected.state_dict(), f"{path}.state_dict()", **tol)
        return
    if isinstance(expected, dict):
        assert list(got.keys()) == list(expected.keys()), f"{path}: keys differ"
        for k in expected:
            assert_tree_equal(got[k], expected[k], f"{path}[{k!r}]", **tol)
    elif isinstance(expected, tuple | list):
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_tree_equal(g, e, f"{path}[{i}]", **tol)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got), f"{path}: {got!r} is not nan"
    else:
        assert got == expected, f"{path}: {got!r} != {expected!r}"


def assert_same(
    fn: Callable[..., Any],
    *args: Any,
    frames: int | None = None,
    ops: int | None = None,
    fullgraph: bool = False,
    kwargs: dict[str, Any] | None = None,
    **tol: Any,
) -> ferrodyn.testing.CompileCounter:
    """Run ``fn`` eagerly and compiled (backend=CompileCounter) and compare everything.

    The compiled function is called twice on fresh copies of the arguments: both results
    (and any in-place mutation of the arguments) must equal eager, and the second call
    must not compile anything new.  ``frames``/``ops`` check the counter after the calls.
    """
    kwargs = kwargs or {}
    eager_args, eager_kwargs = clone_tree(args), clone_tree(kwargs)
    expected = fn(*eager_args, **eager_kwargs)

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt, fullgraph=fullgraph)
    first_frames = None
    for call in range(2):
        c_args, c_kwargs = clone_tree(args), clone_tree(kwargs)
        got = compiled(*c_args, **c_kwargs)
        assert_tree_equal(got, expected, f"call {call}: result", **tol)
        assert_tree_equal(c_args, eager_args, f"call {call}: args after call", **tol)
        assert_tree_equal(c_kwargs, eager_kwargs, f"call {call}: kwargs after call", **tol)
        if first_frames is None:
            first_frames = cnt.frame_count
    assert cnt.frame_count == first_frames, "second call with equal inputs recompiled"
    if frames is not None:
        assert cnt.frame_count == frames, f"frame_count {cnt.frame_count} != {frames}"
    if ops is not None:
        assert cnt.op_count == ops, f"op_count {cnt.op_count} != {ops}"
    return cnt


def assert_no_breaks(fn: Callable[..., Any], *args: Any) -> None:
    """``ferrodyn.explain`` finds no graph break in ``fn``, and ``fn`` compiled with the eager
    backend equals eager on two calls."""
    explained = ferrodyn.explain(fn)(*args)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        assert_tree_equal(compiled(*args), fn(*args))
