"""ferrodyn's frame hook and another PEP 523 user in one process (torch.compile's own shim).

Eager `torch.cond` compiles its branches with torch.compile; run inside a ferrodyn-compiled
region after a torch.compile that left its shim installed, each eval function held the other
as its previous one, and every new frame spun forever between them (a hang, seen first after
a `fullgraph=True` failure of torch.compile). Each hook now runs a frame handed back to it in
CPython's evaluator."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

SCRIPT = textwrap.dedent(
    """
    import torch, ferrodyn

    def broken(x):
        y = x.sin()
        torch._dynamo.graph_break()
        return y.cos()

    x = torch.randn(4)
    try:
        torch.compile(broken, backend="eager", fullgraph=%(fullgraph)s)(x)
    except Exception as e:
        print("torch.compile raised", type(e).__name__)

    def f(x):
        return torch.cond(x.sum() > 0, lambda a: a.sin(), lambda a: a.cos(), (x,)) + 1

    compiled = ferrodyn.compile(f, backend="eager")
    for sign in (1, -1, 1):
        assert torch.allclose(compiled(sign * x), f(sign * x))
    print("ok")
    """
)


@pytest.mark.parametrize("fullgraph", [True, False])
def test_torch_cond_in_a_compiled_region_after_torch_compile(fullgraph: bool) -> None:
    # A fresh process: the state that hung is what an earlier torch.compile leaves behind.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT % {"fullgraph": fullgraph}],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")


def test_torch_compile_inside_a_ferrodyn_region_and_back() -> None:
    # torch.compile's shim installed while ferrodyn's hook is in (and the reverse order on
    # the next call): both keep working, values equal eager.
    def inner(a: torch.Tensor) -> torch.Tensor:
        return a * 2 + 1

    torch_inner = torch.compile(inner, backend="eager")

    def outer(a: torch.Tensor) -> torch.Tensor:
        b = a.sin()
        torch._dynamo.graph_break()  # the rest runs in ferrodyn's glue, with its hook in
        return torch_inner(b) + helper(b)

    def helper(b: torch.Tensor) -> torch.Tensor:
        return b.cos()

    x = torch.randn(5)
    expected = outer(x)
    compiled = ferrodyn.compile(outer, backend="eager")
    for _ in range(3):
        assert_tree_equal(compiled(x), expected)
        assert_tree_equal(torch_inner(x), inner(x))
