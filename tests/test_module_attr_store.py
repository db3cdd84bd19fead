"""`module.name = value` inside a compiled region: a plain Python value (not a tensor or a
module, not a registered parameter, buffer or submodule name) is an instance-dict store,
seen by later reads in the trace and applied after the graph, as transformers' Swin does
(`self.shift_size = 0`). Anything else still breaks the graph and matches eager."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter
from torch import nn


class Shifty(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.shift = 3
        self.window = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= self.window:
            self.shift = 0
            self.window = x.shape[0]
        return self.lin(x).roll(self.shift, 0) * self.window


def test_plain_value_store_is_traced_and_applied() -> None:
    ours, ref = Shifty(), Shifty()
    ref.load_state_dict(ours.state_dict())
    cnt = CompileCounter()
    f = ferrodyn.compile(ours, backend=cnt)
    for n in (2, 2, 3):
        x = torch.randn(n, 2)
        torch.testing.assert_close(f(x), ref(x))
        assert (ours.shift, ours.window) == (ref.shift, ref.window)
    assert cnt.op_count > 0
    explained = ferrodyn.explain(Shifty())(torch.randn(2, 2))
    assert explained.graph_break_count == 0 and explained.graph_count == 1


class Registers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.sub = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, what: str) -> Any:
        if what == "param":
            self.w = None  # a registered parameter's name: nn.Module.__setattr__ logic
        elif what == "module":
            self.sub = nn.Identity()
        return x + 1, self.w, type(self.sub).__name__


def test_registered_names_and_modules_still_break_and_match_eager() -> None:
    for what in ("param", "module"):
        ours, ref = Registers(), Registers()
        got = ferrodyn.compile(ours, backend="eager")(torch.ones(2), what)
        exp = ref(torch.ones(2), what)
        assert torch.equal(got[0], exp[0]) and got[2] == exp[2]
        assert (got[1] is None) == (exp[1] is None)
        assert dict(ours.named_parameters()).keys() == dict(ref.named_parameters()).keys()
        assert type(ours.sub) is type(ref.sub)


class Logged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "log":
            self.log.append(name)
        super().__setattr__(name, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.step = 1
        return x * self.step


def test_module_with_its_own_setattr_matches_eager() -> None:
    ours, ref = Logged(), Logged()
    got = ferrodyn.compile(ours, backend="eager")(torch.ones(2))
    assert torch.equal(got, ref(torch.ones(2)))
    assert ours.log == ref.log == ["step"]
