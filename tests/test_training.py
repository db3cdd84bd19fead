"""Autograd through compiled code: gradients equal eager's."""

from __future__ import annotations

import copy
from typing import Any

import ferrodyn
import pytest
import torch
import torch.nn.functional as F
from torch import nn

BACKENDS: list[Any] = ["eager", "aot_eager", "counter"]


def _backend(name: Any) -> Any:
    """Plain backend names, or a counting aot_eager backend whose count is checked."""
    return ferrodyn.testing.CompileCounterWithBackend("aot_eager") if name == "counter" else name


def _check_compiled_once(backend: Any) -> None:
    if not isinstance(backend, str):
        assert backend.frame_count == 1


def _model() -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, 16),
        nn.GELU(),
        nn.LayerNorm(16),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    )


def _grads(mod: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in mod.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("backend", BACKENDS)
def test_module_gradients_match_eager(backend: Any) -> None:
    eager = _model()
    orig = copy.deepcopy(eager)
    be = _backend(backend)
    compiled = ferrodyn.compile(orig, backend=be)
    x, target = torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    loss_e = F.cross_entropy(eager(x), target)
    loss_e.backward()
    loss_c = F.cross_entropy(compiled(x), target)
    loss_c.backward()

    torch.testing.assert_close(loss_c, loss_e)
    ge, gc = _grads(eager), _grads(orig)
    assert ge.keys() == gc.keys() and len(ge) == 8
    for name in ge:
        torch.testing.assert_close(gc[name], ge[name], atol=1e-5, rtol=1e-4, msg=name)
    _check_compiled_once(be)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_loop_matches_eager(backend: Any) -> None:
    eager = _model()
    orig = copy.deepcopy(eager)
    be = _backend(backend)
    compiled = ferrodyn.compile(orig, backend=be)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.1)
    opt_c = torch.optim.SGD(orig.parameters(), lr=0.1)
    for _ in range(3):
        x, y = torch.randn(4, 6), torch.randn(4, 3)
        for mod, opt in ((eager, opt_e), (compiled, opt_c)):
            opt.zero_grad()
            F.mse_loss(mod(x), y).backward()
            opt.step()
    for (n, pe), pc in zip(eager.named_parameters(), orig.parameters(), strict=True):
        torch.testing.assert_close(pc, pe, atol=1e-5, rtol=1e-4, msg=n)
    _check_compiled_once(be)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_inside_compiled_function_and_input_grads(backend: Any) -> None:
    w = torch.randn(4, 4, requires_grad=True)

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(x @ w) * y.sigmoid()
        return (h**2).mean() + w.abs().sum() * 0.01

    x = torch.randn(3, 4, requires_grad=True)
    y = torch.randn(3, 4, requires_grad=True)
    loss_fn(x, y).backward()
    expected = [t.grad.clone() for t in (x, y, w)]
    for t in (x, y, w):
        t.grad = None

    be = _backend(backend)
    compiled = ferrodyn.compile(loss_fn, backend=be)
    out = compiled(x, y)
    assert out.requires_grad and out.shape == ()
    out.backward()
    for got, exp in zip((x.grad, y.grad, w.grad), expected, strict=True):
        assert got is not None
        torch.testing.assert_close(got, exp, atol=1e-5, rtol=1e-4)
    _check_compiled_once(be)


def test_no_grad_and_detach_inside_compiled_code() -> None:
    lin = nn.Linear(3, 3)

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            frozen = lin(x)
        live = lin(x)
        return frozen, live, live.detach() * 2

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    frozen, live, det = compiled(torch.randn(2, 3))
    assert not frozen.requires_grad
    assert live.requires_grad
    assert not det.requires_grad
    torch.testing.assert_close(det, live.detach() * 2)
    live.sum().backward()
    assert lin.weight.grad is not None
    assert cnt.frame_count == 1


def test_grad_mode_change_is_respected() -> None:
    lin = nn.Linear(3, 3)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(lin, backend=cnt)
    x = torch.randn(2, 3)
    assert compiled(x).requires_grad
    assert cnt.frame_count == 1
    with torch.no_grad():
        out = compiled(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, lin(x).detach())
    assert compiled(x).requires_grad
