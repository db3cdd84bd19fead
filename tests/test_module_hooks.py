"""Modules with forward hooks and forward pre-hooks called inside the compiled region:
`nn.Module._call_impl` traced (hooks inlined, in order, with and without kwargs), as
torch.compile does; backward hooks still break."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
import torch._dynamo.testing
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.b(torch.relu(self.a(x))) * scale


SEEN: list[Any] = []


def _counts(model: nn.Module, *args: Any, **kwargs: Any) -> tuple[int, int]:
    cnt = CompileCounter()
    out = ferrodyn.compile(model, backend=cnt)(*args, **kwargs)
    torch._dynamo.reset()
    tcnt = torch._dynamo.testing.CompileCounter()
    ref = torch.compile(model, backend=tcnt)(*args, **kwargs)
    assert_tree_equal(out, ref)
    return cnt.frame_count, tcnt.frame_count


def test_forward_hooks_are_traced_into_one_graph() -> None:
    m = Net()
    captured: list[torch.Tensor] = []
    h1 = m.a.register_forward_hook(lambda mod, args, out: out * 2)
    h2 = m.b.register_forward_hook(lambda mod, args, out: captured.append(out))
    h3 = m.a.register_forward_pre_hook(lambda mod, args: (args[0] + 1,))
    x = torch.randn(2, 4)
    captured.clear()
    expected = m(x)
    expected_captured = list(captured)
    captured.clear()
    cnt = CompileCounter()
    f = ferrodyn.compile(m, backend=cnt, fullgraph=True)
    assert_tree_equal(f(x), expected)
    assert_tree_equal(captured, expected_captured)  # the list mutation replayed
    assert cnt.frame_count == 1
    # Removing a hook changes the result: a recompile, never the stale graph.
    h1.remove()
    assert_tree_equal(f(x), m(x))
    for h in (h2, h3):
        h.remove()
    assert_tree_equal(f(x), m(x))


def test_hooks_with_kwargs_and_graph_counts_match_torch_compile() -> None:
    m = Net()

    def pre(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return args, {**kwargs, "scale": 3.0}

    def post(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> Any:
        return out + kwargs["scale"]

    m.register_forward_pre_hook(pre, with_kwargs=True)
    m.register_forward_hook(post, with_kwargs=True)
    fd, tc = _counts(m, torch.randn(2, 4), scale=2.0)
    assert fd == 1 and fd <= tc


def test_backward_hooks_still_break_and_stay_correct() -> None:
    m = Net()
    grads: list[Any] = []
    m.a.register_full_backward_hook(lambda mod, gi, go: grads.append(go[0].shape))
    x = torch.randn(2, 4, requires_grad=True)
    out = ferrodyn.compile(m, backend="eager")(x)
    out.sum().backward()
    assert grads == [torch.Size([2, 4])]
