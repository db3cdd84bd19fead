"""Workloads shared by the pytest-benchmark files and ``compare.py``.

Three implementations are compared on every workload:

* ``eager``         -- the plain function / module,
* ``torch.compile`` -- ``torch.compile(fn, backend="eager")``,
* ``ferrodyn``      -- ``ferrodyn.compile(fn, backend="eager")``.

``backend="eager"`` keeps the compiled graph running the same aten ops as eager, so the
difference in per-call time is the tracer's own overhead (guard checks, frame handling).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import nn

# torch._dynamo is imported where it is used, so a fresh process can build these models
# without it (benches/bench_cold_start.py times its import).

IMPLS = ("eager", "torch.compile", "ferrodyn")


def load_ferrodyn() -> tuple[ModuleType | None, str | None]:
    """Import ferrodyn if it is built; return (module, None) or (None, error text)."""
    try:
        import ferrodyn
    except Exception as e:  # noqa: BLE001 - any import failure just disables the column
        return None, f"{type(e).__name__}: {e}"
    return ferrodyn, None


def compile_with(impl: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if impl == "eager":
        return fn
    if impl == "torch.compile":
        return torch.compile(fn, backend="eager")
    if impl == "ferrodyn":
        ferrodyn, err = load_ferrodyn()
        if ferrodyn is None:
            raise RuntimeError(f"ferrodyn not importable ({err})")
        return ferrodyn.compile(fn, backend="eager")
    raise ValueError(impl)


def reset_all() -> None:
    import torch._dynamo

    torch._dynamo.reset()
    ferrodyn, _ = load_ferrodyn()
    if ferrodyn is not None:
        ferrodyn.reset()


# --------------------------------------------------------------------------- workloads


def add_one(x: torch.Tensor) -> torch.Tensor:
    return x + 1


def sum10(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    d: torch.Tensor,
    e: torch.Tensor,
    f: torch.Tensor,
    g: torch.Tensor,
    h: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
) -> torch.Tensor:
    return a + b + c + d + e + f + g + h + i + j


class MLP(nn.Module):
    def __init__(self, width: int = 64, depth: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x)))))


class Transformer(nn.Module):
    def __init__(self, depth: int = 12, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.ln = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return self.ln(x)


@dataclass
class Case:
    name: str
    label: str
    make: Callable[[], tuple[Callable[..., Any], tuple[torch.Tensor, ...]]]


def _add_one() -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    return add_one, (torch.randn(4),)


def _sum10() -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    return sum10, tuple(torch.randn(4) for _ in range(10))


def _mlp() -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return MLP().eval(), (torch.randn(8, 64),)


def _transformer() -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    torch.manual_seed(0)
    return Transformer().eval(), (torch.randn(2, 16, 64),)


PER_CALL_CASES = [
    Case("add_one", "x + 1 (4 elems)", _add_one),
    Case("sum10", "sum of 10 tensor args", _sum10),
    Case("mlp", "MLP 3x64, batch 8", _mlp),
]
FIRST_CALL_CASE = Case("transformer12", "12-block transformer, first call", _transformer)


# --------------------------------------------------------------------------- graph break


def graph_break_20(x: torch.Tensor) -> torch.Tensor:
    """20 tensor ops with one graph break in the middle (an unknown C function)."""
    x = x + 1
    x = x * 2
    x = x.sin()
    x = x - 0.5
    x = x.relu()
    x = x * x
    x = x + 3
    x = x.cos()
    x = x / 2
    x = x.abs()
    n = zlib.crc32(b"x")  # graph break: its Python int result is used below
    x = x + n % 7
    x = x * 0.5
    x = x.tanh()
    x = x - 1
    x = x.neg()
    x = x * 3
    x = x.sigmoid()
    x = x + 2
    x = x.exp()
    return x.sqrt()


def _graph_break() -> tuple[Callable[..., Any], tuple[torch.Tensor, ...]]:
    return graph_break_20, (torch.randn(16),)


GRAPH_BREAK_CASE = Case(
    "graph_break", "20 ops, 1 graph break (zlib.crc32) in the middle", _graph_break
)
