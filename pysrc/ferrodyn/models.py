"""Small bundled transformer models (no downloads) for the demo, tests and benchmarks.

The forward methods are deliberately plain Python — attribute access, a loop over an
`nn.ModuleList`, `x.shape`, `view`/`transpose`/`reshape`, `@`, `softmax` — since that is the
code ferrodyn has to trace.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention written out by hand, with a causal mask."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, dim = x.shape
        qkv = self.qkv(x).view(batch, seq, 3, self.heads, self.head_dim)
        q, k, v = qkv.unbind(dim=2)
        q = q.transpose(1, 2)  # (batch, heads, seq, head_dim)
        k = k.transpose(1, 2)
        v = v.transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        mask = torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=x.device), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        attn = self.attn_drop(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(batch, seq, dim)
        return self.proj_drop(self.proj(out))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, 4 * dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return x


class TransformerStack(nn.Module):
    """`layers` blocks of width `dim` on float inputs of shape (batch, seq, dim)."""

    def __init__(self, dim: int = 64, heads: int = 4, layers: int = 12, dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)


class TinyTransformer(nn.Module):
    """A GPT-style language model: token + position embeddings → blocks → LayerNorm → LM head.

    Takes token ids of shape (batch, seq) with seq <= `seq`; returns logits (batch, seq, vocab).
    """

    def __init__(
        self,
        vocab: int = 256,
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        seq: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.max_seq = seq
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Embedding(seq, dim)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList([Block(dim, heads, dropout) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        _batch, seq = idx.shape
        pos = torch.arange(seq, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def example_input(self, batch: int = 2, seq: int | None = None) -> torch.Tensor:
        """Random token ids of shape (batch, seq) (seq defaults to the model's maximum)."""
        seq = self.max_seq if seq is None else seq
        return torch.randint(0, self.tok_emb.num_embeddings, (batch, seq))
