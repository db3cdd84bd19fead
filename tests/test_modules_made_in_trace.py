"""An `nn.Module` constructed inside the compiled region (`nn.Softmax(dim=-1)(x)`, an
activation made per call by transformers' `ACT2FN[...]`, a user module): its `__init__`
(nn.Module's own included) is traced on an empty instance, calling it inlines `forward`, and
one that escapes is rebuilt as a working module. Graph and break counts equal
torch.compile's on the same function (blip, canine and mamba build modules in forward)."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from torch import nn

transformers = pytest.importorskip("transformers")


class Scale(nn.Module):
    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.k


def softmax_module(x: torch.Tensor) -> torch.Tensor:
    return nn.Softmax(dim=-1)(x) + 1


def pooling_module(x: torch.Tensor) -> torch.Tensor:
    return nn.MaxPool1d(2)(x.unsqueeze(0)) * 2


def padding_module(x: torch.Tensor) -> torch.Tensor:
    return nn.ConstantPad1d((1, 2), 0.5)(x.unsqueeze(0))


def activations_by_name(x: torch.Tensor) -> torch.Tensor:
    act2fn = transformers.activations.ACT2FN
    return act2fn["silu"](x) + act2fn["gelu"](x)


def user_module(x: torch.Tensor) -> torch.Tensor:
    return Scale(3.0)(x) - Scale(0.5)(x)


CASES = [softmax_module, pooling_module, padding_module, activations_by_name, user_module]


def _torch_counts(fn: Any, x: torch.Tensor) -> tuple[int, int]:
    torch._dynamo.reset()
    cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=cnt)(x)
    torch._dynamo.reset()
    exp = torch._dynamo.explain(fn)(x)
    torch._dynamo.reset()
    return cnt.frame_count, exp.graph_break_count


@pytest.mark.parametrize("fn", CASES, ids=lambda f: f.__name__)
def test_module_made_in_forward_is_traced(fn: Any) -> None:
    x = torch.randn(3, 4)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        torch.testing.assert_close(compiled(x), fn(x))
    ferrodyn.reset()
    exp = ferrodyn.explain(fn)(x)
    graphs, breaks = _torch_counts(fn, x)
    assert (cnt.frame_count, exp.graph_break_count) == (graphs, breaks) == (1, 0), exp.break_reasons


def test_module_that_escapes_is_a_working_module() -> None:
    def make(x: torch.Tensor) -> tuple[torch.Tensor, nn.Module]:
        m = nn.ReLU()
        return m(x), m

    _out, m = ferrodyn.compile(make, backend=ferrodyn.testing.CompileCounter())(torch.randn(3))
    assert type(m) is nn.ReLU and m.training
    assert torch.equal(m(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))
    handle = m.register_forward_hook(lambda *a: None)
    handle.remove()
    assert list(m.children()) == [] and len(m.state_dict()) == 0


def test_module_with_parameters_made_in_forward_matches_eager() -> None:
    # Parameters are created from the global RNG: the construction breaks, and the values
    # equal eager's (same RNG draws in the same order).
    def make_linear(x: torch.Tensor) -> torch.Tensor:
        return nn.Linear(4, 2)(x)

    x = torch.randn(3, 4)
    torch.manual_seed(0)
    expected = make_linear(x)
    torch.manual_seed(0)
    got = ferrodyn.compile(make_linear, backend=ferrodyn.testing.CompileCounter())(x)
    torch.testing.assert_close(got, expected)


def test_hook_registered_on_a_module_made_in_the_trace_runs() -> None:
    seen: list[int] = []

    def hooked(x: torch.Tensor) -> torch.Tensor:
        m = Scale(2.0)
        m.register_forward_hook(lambda mod, args, out: seen.append(1))
        return m(x)

    x = torch.randn(3)
    torch.testing.assert_close(
        ferrodyn.compile(hooked, backend=ferrodyn.testing.CompileCounter())(x), hooked(x)
    )
    assert seen == [1, 1]
