"""`d[k]` on a dict subclass from the inputs that lacks `k`: the class's Python `__missing__`
is traced (as dict's `__getitem__` calls it); without one, dict's KeyError is raised in the
trace and can be caught there. No graph break; values equal eager."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch


class Defaults(dict):
    def __missing__(self, key: str) -> int:
        return len(key)


class Plain(dict):
    pass


def reads(x: torch.Tensor, d: Defaults, p: Plain) -> Any:
    try:
        v = p["nope"]
    except KeyError as e:
        v = e.args
    return x + d["zzz"] + d["a"], v


def test_missing_and_keyerror_in_one_graph() -> None:
    d, p = Defaults(a=2), Plain(a=1)
    compiled = ferrodyn.compile(reads, backend="eager")
    got, expected = compiled(torch.ones(1), d, p), reads(torch.ones(1), d, p)
    torch.testing.assert_close(got[0], expected[0])
    assert got[1] == expected[1]
    assert dict(d) == {"a": 2} and dict(p) == {"a": 1}
    assert ferrodyn.explain(reads)(torch.ones(1), d, p).graph_break_count == 0
