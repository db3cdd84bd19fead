"""`copy.copy` / `copy.deepcopy` of a plain user object from the inputs are traced (as
torch.compile does; transformers deep-copies configs in forward): the copy is a new object
built in the trace, the original is untouched, and nothing breaks the graph."""

from __future__ import annotations

import copy
from typing import Any

import ferrodyn
import torch
import torch._dynamo
import torch._dynamo.testing
from ferrodyn.testing import CompileCounter


class Cfg:
    def __init__(self) -> None:
        self.scale = 2.0
        self.names = ["a", "b"]
        self.sub = {"k": 3}


def deep(x: torch.Tensor, cfg: Cfg) -> Any:
    c2 = copy.deepcopy(cfg)
    c2.scale = 5.0
    c2.names.append("c")
    return x * c2.scale + cfg.scale * c2.sub["k"], c2


def shallow(x: torch.Tensor, cfg: Cfg) -> Any:
    c2 = copy.copy(cfg)
    c2.scale = 3.0
    return x * c2.scale + cfg.scale, c2


def _check(fn: Any) -> None:
    x = torch.randn(3)
    eager_cfg, fd_cfg = Cfg(), Cfg()
    expected, eager_copy = fn(x, eager_cfg)
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        got, fd_copy = compiled(x, fd_cfg)
        torch.testing.assert_close(got, expected)
        assert type(fd_copy) is Cfg and fd_copy is not fd_cfg
        assert vars(fd_copy) == vars(eager_copy)
        assert vars(fd_cfg) == vars(eager_cfg)
        fd_cfg.names[:] = ["a", "b"]
        eager_cfg.names[:] = ["a", "b"]
    torch._dynamo.reset()
    tc = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=tc)(x, Cfg())
    torch._dynamo.reset()
    assert cnt.frame_count == tc.frame_count == 1
    assert ferrodyn.explain(fn)(x, Cfg()).graph_break_count == 0


def test_deepcopy_of_a_user_object_is_traced() -> None:
    _check(deep)


def test_copy_of_a_user_object_is_traced() -> None:
    _check(shallow)
