"""`d.keys()`, `d.values()`, `d.items()` in the trace are live views, as in CPython: they
can be iterated twice, see later changes of the dict, answer `in` and `len`, and leave the
region as real views of the dict."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def test_views_are_reiterable_and_live() -> None:
    def f(x: torch.Tensor) -> Any:
        d = {"a": 1, "b": 2}
        ks, vs, its = d.keys(), d.values(), d.items()
        first = list(ks)
        d["c"] = 3  # seen through the views made before
        return (
            x + sum(vs),
            first,
            list(ks),
            sorted(its),
            len(ks),
            "c" in ks,
            ("a", 1) in its,
            ("a", 5) in its,
            bool(d.keys()),
        )

    cnt = CompileCounter()
    got = ferrodyn.compile(f, backend=cnt, fullgraph=True)(torch.ones(2))
    assert_tree_equal(got, f(torch.ones(2)))
    assert cnt.frame_count == 1


def test_escaping_views_are_views_of_the_returned_dict() -> None:
    def f(x: torch.Tensor, d: dict[str, int]) -> Any:
        d["z"] = 26
        return x + 1, d.keys(), d.items()

    ours_d, ref_d = {"a": 1}, {"a": 1}
    _out, ks, its = ferrodyn.compile(f, backend="eager")(torch.ones(2), ours_d)
    _, rks, rits = f(torch.ones(2), ref_d)
    assert type(ks) is type(rks) and list(ks) == list(rks)
    assert type(its) is type(rits) and list(its) == list(rits)
    ours_d["late"] = 0  # still live
    assert "late" in ks


def test_loop_over_items_with_a_break_resumes_inside_the_loop() -> None:
    import zlib

    def f(x: torch.Tensor, d: dict[str, float]) -> torch.Tensor:
        for k, v in d.items():
            x = x * v
            zlib.crc32(k.encode())  # a break inside the loop
            x = x + 1
        return x

    d = {"a": 2.0, "b": 3.0, "c": 4.0}
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2), d)
    assert_tree_equal(got, f(torch.ones(2), d))
