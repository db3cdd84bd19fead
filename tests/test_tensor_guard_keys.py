"""The tensor guard compares a plain tensor's whole dispatch key set (read from its
TensorImpl on the hot path): conjugate/negative views, inference tensors and key changes
recompile, as torch.compile's dispatch-key guard does, and compiled == eager throughout."""

from __future__ import annotations

from collections.abc import Callable

import ferrodyn
import pytest
import torch
from torch._dynamo.testing import CompileCounter


def run(fn: Callable[..., torch.Tensor], inputs: list[tuple[torch.Tensor, ...]]) -> CompileCounter:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for args in inputs:
        torch.testing.assert_close(compiled(*args), fn(*args))
    return cnt


def test_fast_path_is_located() -> None:
    note = ferrodyn._core.native_tensor_reader_note()
    assert "TensorImpl fields located" in note, note


def test_conjugate_view_recompiles() -> None:
    x = torch.randn(3, dtype=torch.complex64)
    cnt = run(lambda t: t * 2, [(x,), (x.conj(),), (x,), (x.conj(),)])
    assert cnt.frame_count == 2


def test_negative_view_recompiles() -> None:
    x = torch.randn(3, dtype=torch.complex64)
    neg = torch._neg_view(x)
    assert neg.is_neg()
    cnt = run(lambda t: t + 1, [(x,), (neg,), (x,)])
    assert cnt.frame_count == 2


def test_inference_tensor_recompiles() -> None:
    x = torch.randn(3)
    with torch.inference_mode():
        y = torch.randn(3)
    cnt = run(lambda t: t.sin(), [(x,), (y,), (x,), (y,)])
    assert cnt.frame_count == 2


def test_requires_grad_change_recompiles() -> None:
    x = torch.randn(3)
    w = torch.randn(3, requires_grad=True)
    cnt = run(lambda t: t * 3, [(x,), (w,), (x,)])
    assert cnt.frame_count == 2


def test_view_with_autograd_meta_but_no_grad() -> None:
    """A view carries autograd meta without requiring grad: same graph as a plain tensor."""
    base = torch.randn(6)
    cnt = run(lambda t: t * 3, [(base[:3],), (torch.randn(3),), (base[3:],)])
    assert cnt.frame_count == 1


@pytest.mark.parametrize("ndim", [0, 1, 5, 6, 8])
def test_sizes_and_strides_any_rank(ndim: int) -> None:
    """Sizes live inline up to 5 dims and out of line beyond: both read right."""
    shape = tuple(range(2, 2 + ndim))
    a = torch.randn(shape)
    b = torch.randn(shape)
    other = torch.randn(tuple(s + 1 for s in shape)) if ndim else torch.randn(1)
    cnt = run(lambda t: t + 1, [(a,), (b,), (other,), (a,)])
    assert cnt.frame_count == 2


def test_stride_change_recompiles_high_rank() -> None:
    a = torch.randn(2, 3, 2, 2, 2, 3)
    t = a.transpose(0, 5)
    c = t.contiguous()
    cnt = run(lambda u: u * 2, [(t,), (c,), (t,)])
    assert cnt.frame_count == 2


def test_dtype_and_device_change_recompiles() -> None:
    x = torch.randn(3)
    cnt = run(lambda t: t + 1, [(x,), (x.double(),), (x.to(torch.bfloat16),), (x,)])
    assert cnt.frame_count == 3


def test_sparse_and_subclass_inputs() -> None:
    """Tensors that are not plain (sparse, a Parameter) still guard and compute right."""
    dense = torch.randn(3, 3)
    p = torch.nn.Parameter(torch.randn(3, 3))
    cnt = run(lambda t: t * 2, [(dense,), (p,), (dense,)])
    assert cnt.frame_count == 2


def test_recompile_reason_names_dispatch_keys() -> None:
    reasons: list[str] = []

    def listen(kind: str, payload: dict[str, object]) -> None:
        if kind == "recompile":
            reasons.append(str(payload.get("reasons")))

    x = torch.randn(3, dtype=torch.complex64)
    stop = ferrodyn.observe.subscribe(listen)
    try:
        compiled = ferrodyn.compile(lambda t: t * 2, backend="eager")
        compiled(x)
        compiled(x.conj())
    finally:
        stop()
    assert any("dispatch keys" in r and "Conjugate" in r for r in reasons), reasons
