"""nn.Module compilation: results, parameters/buffers, wrapper parity, train/eval."""

from __future__ import annotations

import copy
import math

import ferrodyn
import pytest
import torch
import torch.nn.functional as F
from _helpers import assert_tree_equal
from torch import nn


def _check_module(
    mod: nn.Module, *inputs: torch.Tensor, frames: int | None = 1, **tol: float
) -> ferrodyn.testing.CompileCounter:
    """Compiled copy vs eager copy: outputs, then state (params + buffers), twice."""
    eager_mod = copy.deepcopy(mod)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(mod, backend=cnt)
    for call in range(2):
        expected = eager_mod(*inputs)
        got = compiled(*inputs)
        assert_tree_equal(got, expected, f"call {call}", **tol)
        assert_tree_equal(mod.state_dict(), eager_mod.state_dict(), f"call {call}: state", **tol)
    if frames is not None:
        assert cnt.frame_count == frames
    return cnt


class MLP(nn.Module):
    def __init__(self, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x


class Attention(nn.Module):
    """Multi-head self-attention written by hand (no nn.MultiheadAttention)."""

    def __init__(self, dim: int, heads: int, p: float = 0.1) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        attn = self.drop(scores.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, dim: int = 32, heads: int = 4, p: float = 0.1) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, p)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(p)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def test_linear() -> None:
    cnt = _check_module(nn.Linear(4, 3), torch.randn(2, 4))
    assert cnt.op_count == 1


def test_mlp_sequential() -> None:
    mod = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))
    _check_module(mod, torch.randn(5, 8))


def test_mlp_module_list_loop() -> None:
    cnt = _check_module(MLP(), torch.randn(4, 16))
    assert cnt.op_count == 5


def test_transformer_block_eval() -> None:
    blk = Block().eval()
    _check_module(blk, torch.randn(2, 6, 32), atol=1e-5, rtol=1e-5)


def test_transformer_stack_train_mode_dropout_matches_with_same_seed() -> None:
    stack = nn.Sequential(Block(p=0.3), Block(p=0.3)).train()
    eager = copy.deepcopy(stack)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(stack, backend=cnt)
    x = torch.randn(2, 5, 32)
    torch.manual_seed(123)
    expected = eager(x)
    torch.manual_seed(123)
    got = compiled(x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert cnt.frame_count == 1


def test_module_dict_and_containers_iteration() -> None:
    class Router(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 2), "b": nn.Linear(4, 2)})
            self.stack = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid())
            self.extra = nn.ModuleList([nn.Identity(), nn.Linear(2, 2)])

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            h = x
            for m in self.stack:
                h = m(h)
            out = {name: head(h) for name, head in self.heads.items()}
            for key in self.heads:
                out[key] = self.extra[-1](self.extra[0](out[key]))
            out["n"] = h * len(self.stack) + len(self.heads)
            out["first"] = self.stack[0](x)
            for a, b in zip(self.extra, reversed(self.extra), strict=True):
                out["first"] = out["first"] + (a is b)
            return out

    _check_module(Router(), torch.randn(3, 4))


def test_parameters_and_buffers_used_directly() -> None:
    class WithBuffers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.randn(3))
            self.register_buffer("offset", torch.arange(3.0))
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            total = sum(p.sum() for p in self.parameters())
            return x * self.scale + self.offset + total + self.calls

    _check_module(WithBuffers(), torch.randn(2, 3))


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_batchnorm_running_stats(train: bool) -> None:
    mod = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU()).train(train)
    mod[1].running_mean.uniform_()
    _check_module(mod, torch.randn(8, 4), atol=1e-5, rtol=1e-5)
    assert int(mod[1].num_batches_tracked) == (2 if train else 0)


def test_module_called_with_kwargs_and_multiple_outputs() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(
            self, x: torch.Tensor, *, y: torch.Tensor | None = None, scale: float = 1.0
        ) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.lin(x) * scale
            return h, (h if y is None else h + y)

    mod = Two()
    compiled = ferrodyn.compile(mod, backend=ferrodyn.testing.CompileCounter())
    x, y = torch.randn(2, 3), torch.randn(2, 3)
    assert_tree_equal(compiled(x, y=y, scale=2.0), mod(x, y=y, scale=2.0))
    assert_tree_equal(compiled(x), mod(x))


def test_submodule_compiled_inside_parent() -> None:
    parent = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    parent[0] = ferrodyn.compile(parent[0], backend=ferrodyn.testing.CompileCounter())
    x = torch.randn(3, 4)
    expected = parent[2](parent[1](F.linear(x, parent[0].weight, parent[0].bias)))
    torch.testing.assert_close(parent(x), expected)


# --------------------------------------------------------------------------- wrapper parity


@pytest.mark.ferrodyn_contract
def test_wrapper_is_usable_like_the_original() -> None:
    orig = MLP(width=4, depth=2)
    wrapper = ferrodyn.compile(orig, backend="eager")
    assert isinstance(wrapper, MLP)
    assert isinstance(wrapper, nn.Module)
    assert wrapper._orig_mod is orig
    assert list(wrapper.state_dict().keys()) == list(orig.state_dict().keys())
    assert wrapper.layers[0].weight is orig.layers[0].weight
    assert wrapper.act is orig.act
    assert [id(p) for p in wrapper.parameters()] == [id(p) for p in orig.parameters()]
    assert [n for n, _ in wrapper.named_parameters()] == [n for n, _ in orig.named_parameters()]
    other = MLP(width=4, depth=2)
    wrapper.load_state_dict(other.state_dict())
    torch.testing.assert_close(orig.layers[1].bias, other.layers[1].bias)


def test_wrapper_shares_attributes_and_parameters() -> None:
    """The part of wrapper parity that torch.compile's OptimizedModule also provides."""
    orig = nn.Linear(3, 2)
    wrapper = ferrodyn.compile(orig, backend="eager")
    assert wrapper._orig_mod is orig
    assert wrapper.weight is orig.weight
    assert wrapper.in_features == 3
    assert {id(p) for p in wrapper.parameters()} == {id(p) for p in orig.parameters()}
    with torch.no_grad():
        orig.weight.zero_()
        orig.bias.fill_(2.0)
    torch.testing.assert_close(wrapper(torch.randn(4, 3)), torch.full((4, 2), 2.0))


def test_train_eval_reflected_in_original() -> None:
    orig = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    wrapper = ferrodyn.compile(orig, backend="eager")
    ret = wrapper.eval()
    assert not orig.training and not orig[1].training and not wrapper.training
    assert ret is wrapper
    wrapper.train()
    assert orig.training and orig[1].training
    wrapper.train(False)
    assert not orig.training


def test_train_eval_switch_recompiles_and_follows_mode() -> None:
    orig = nn.Sequential(nn.Dropout(0.5))
    cnt = ferrodyn.testing.CompileCounter()
    wrapper = ferrodyn.compile(orig, backend=cnt)
    x = torch.ones(64)

    out = wrapper(x)
    assert cnt.frame_count == 1
    assert bool(((out == 0) | (out == 2)).all()) and bool((out == 0).any())

    wrapper.eval()
    out = wrapper(x)
    assert cnt.frame_count == 2
    torch.testing.assert_close(out, x)

    orig.train()  # mode changed on the original, not through the wrapper
    out = wrapper(x)
    assert bool(((out == 0) | (out == 2)).all()) and bool((out == 0).any())
    assert cnt.frame_count in (2, 3)


def test_batchnorm_train_then_eval_uses_running_stats() -> None:
    orig = nn.BatchNorm1d(3)
    eager = copy.deepcopy(orig)
    cnt = ferrodyn.testing.CompileCounter()
    wrapper = ferrodyn.compile(orig, backend=cnt)
    x = torch.randn(6, 3) * 3 + 1
    torch.testing.assert_close(wrapper(x), eager(x))
    wrapper.eval()
    eager.eval()
    torch.testing.assert_close(wrapper(x), eager(x))
    torch.testing.assert_close(orig.running_var, eager.running_var)
    assert cnt.frame_count == 2


def test_parameter_update_between_calls_is_seen() -> None:
    orig = nn.Linear(3, 3)
    cnt = ferrodyn.testing.CompileCounter()
    wrapper = ferrodyn.compile(orig, backend=cnt)
    x = torch.randn(2, 3)
    wrapper(x)
    with torch.no_grad():
        orig.weight.mul_(2)
    torch.testing.assert_close(wrapper(x), orig(x))
    assert cnt.frame_count == 1
