"""ferrodyn.explain: graph/break counts, break reasons at the user's line, guards, report;
and describe(): the names break reasons use for the objects they mention."""

from __future__ import annotations

import collections
import functools
import math
import os
import random
import zlib
from pathlib import Path
from typing import Any

import ferrodyn
import numpy as np
import pytest
import torch
from ferrodyn.testing import CompileCounter

# ferrodyn's own API: skipped when the suite runs against the torch.compile stand-in.
_OWN_API = "not in the torch.compile stand-in"
observe = pytest.importorskip("ferrodyn.observe", reason=_OWN_API)

THIS_FILE = str(Path(__file__).resolve())


def line_of(marker: str) -> int:
    """1-based line number of the unique source line carrying ``# <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


def traceable(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.relu(x + y) * 2


def with_crc(x: torch.Tensor) -> torch.Tensor:
    a = x + 1
    n = zlib.crc32(b"ferrodyn")  # crc-call
    return a * n


def _inner_svd(x: torch.Tensor) -> Any:
    return np.linalg.svd(x.numpy())  # svd-call


def calls_inner(x: torch.Tensor) -> Any:
    y = x * 2
    return _inner_svd(y), y


class Small(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).relu()


# --------------------------------------------------------------------------- fully traceable


def test_traceable_function_one_graph_no_breaks() -> None:
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    out = ferrodyn.explain(traceable)(x, y)
    assert isinstance(out, ferrodyn.ExplainOutput)
    assert out.graph_count == 1
    assert out.graph_break_count == 0
    assert out.break_reasons == []
    torch.testing.assert_close(out.result, traceable(x, y))
    assert len(out.graphs) == 1 and isinstance(out.graphs[0], torch.fx.GraphModule)
    assert out.compile_time_s >= 0


def test_ops_per_graph_matches_compile_counter() -> None:
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    cnt = CompileCounter()
    ferrodyn.compile(traceable, backend=cnt)(x, y)
    out = ferrodyn.explain(traceable)(x, y)
    assert out.ops_per_graph == [cnt.op_count] == [3]
    assert out.graph_count == cnt.frame_count


def test_guards_mention_argument_names() -> None:
    out = ferrodyn.explain(traceable)(torch.randn(3, 2), torch.randn(3, 2))
    assert out.guards
    assert any(g.startswith("x:") for g in out.guards), out.guards
    assert any(g.startswith("y:") for g in out.guards), out.guards


def test_explain_compiles_afresh() -> None:
    """A compiled function that already holds a cache entry does not hide the graphs."""
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    compiled = ferrodyn.compile(traceable, backend="eager")
    compiled(x, y)
    assert ferrodyn.explain(compiled)(x, y).graph_count == 1
    assert ferrodyn.explain(traceable)(x, y).graph_count == 1  # twice: each has its own cache


def test_older_direct_form() -> None:
    x, y = torch.randn(3, 2), torch.randn(3, 2)
    out = ferrodyn.explain(traceable, x, y)
    assert isinstance(out, ferrodyn.ExplainOutput)
    assert out.graph_count == 1
    out = ferrodyn.explain(traceable, x, y=y)
    assert out.graph_count == 1


def test_listener_removed_after_call() -> None:
    was_active = observe.active()
    ferrodyn.explain(traceable)(torch.randn(2), torch.randn(2))
    assert observe.active() == was_active


def test_listener_removed_when_call_raises() -> None:
    def boom(x: torch.Tensor) -> torch.Tensor:
        raise ValueError("user error")

    was_active = observe.active()
    with pytest.raises(ValueError, match="user error"):
        ferrodyn.explain(boom)(torch.randn(2))
    assert observe.active() == was_active


def test_not_callable() -> None:
    with pytest.raises(TypeError, match="callable"):
        ferrodyn.explain(3)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- graph breaks


def test_untraceable_call_break_reason_and_location() -> None:
    x = torch.randn(4)
    out = ferrodyn.explain(with_crc)(x)
    torch.testing.assert_close(out.result, with_crc(x))
    # Today the frame runs eagerly (0 graphs); with resume functions, graphs before and after.
    assert out.graph_break_count >= 1
    b = out.break_reasons[0]
    assert "zlib.crc32" in b.reason
    assert Path(b.file).resolve() == Path(THIS_FILE)
    assert b.line == line_of("crc-call")
    assert b.source == 'n = zlib.crc32(b"ferrodyn")  # crc-call'
    assert b.function == "with_crc"
    assert str(b).startswith(f"{b.file}:{b.line} in with_crc: ")


def test_break_in_inlined_function_points_at_inner_frame() -> None:
    x = torch.randn(3, 3)
    out = ferrodyn.explain(calls_inner)(x)
    assert out.graph_break_count >= 1
    b = out.break_reasons[0]
    assert b.line == line_of("svd-call")
    assert b.function == "_inner_svd"
    assert "np.linalg.svd" in b.source
    # The trace stops at x.numpy() (data-dependent) or at the call of svd.
    assert "numpy" in b.reason, b.reason


# --------------------------------------------------------------------------- modules


def test_module() -> None:
    m = Small()
    x = torch.randn(2, 4)
    out = ferrodyn.explain(m)(x)
    assert out.graph_count == 1
    assert out.graph_break_count == 0
    assert out.ops_per_graph == [2]
    torch.testing.assert_close(out.result, m(x))
    assert any(g.startswith("self.lin.weight:") for g in out.guards), out.guards
    assert any(g.startswith("x:") for g in out.guards), out.guards


def test_module_already_compiled() -> None:
    m = Small()
    x = torch.randn(2, 4)
    w = ferrodyn.compile(m, backend="eager")
    w(x)
    assert ferrodyn.explain(w)(x).graph_count == 1


# --------------------------------------------------------------------------- report


def test_report_traceable() -> None:
    report = str(ferrodyn.explain(traceable)(torch.randn(3, 2), torch.randn(3, 2)))
    lines = report.splitlines()
    assert lines[0] == "Graph count: 1"
    assert lines[1] == "Graph break count: 0"
    assert "Ops per graph:" in lines
    assert "  1. 3 ops (traceable)" in lines
    assert "Guards:" in lines
    assert any(line.startswith("  - x: tensor(") for line in lines), report
    assert "Break reasons:" not in report
    assert "Compile time:" in report


def test_report_break() -> None:
    out = ferrodyn.explain(with_crc)(torch.randn(4))
    report = str(out)
    assert f"Graph break count: {out.graph_break_count}" in report
    assert "Break reasons:" in report
    line = line_of("crc-call")
    assert f"{out.break_reasons[0].file}:{line} in with_crc: " in report
    assert "zlib.crc32" in report
    assert 'n = zlib.crc32(b"ferrodyn")' in report


# --------------------------------------------------------------------------- describe()


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        (np.linalg.svd, "numpy.linalg.svd"),
        (np.add, "numpy.add"),
        (zlib.crc32, "zlib.crc32"),
        (math.floor, "math.floor"),
        (os.getpid, "os.getpid"),
        (os.path.join, "os.path.join"),
        (functools.reduce, "functools.reduce"),
        (random.random, "random.random"),
        (torch.Tensor.item, "torch.Tensor.item"),
        (torch.ones(1).item, "torch.Tensor.item"),
        (torch.add, "torch.add"),
        (torch.nn.functional.relu, "torch.nn.functional.relu"),
        (torch.nn.Linear, "torch.nn.Linear"),
        (torch.Tensor, "torch.Tensor"),
        (torch.ops.aten.add.Tensor, "torch.ops.aten.add.Tensor"),
        (print, "print"),
        (int, "int"),
        ([].append, "list.append"),
        (list.append, "list.append"),
        (dict.fromkeys, "dict.fromkeys"),
        (collections.OrderedDict, "collections.OrderedDict"),
        (functools.partial(print), "functools.partial(print)"),
        (Small, f"{__name__}.Small"),
        (Small().forward, f"{__name__}.Small.forward"),
        (traceable, f"{__name__}.traceable"),
        (object(), "object of type object"),
        (Small(), f"object of type {__name__}.Small"),
        (math, "module math"),
    ],
)
def test_describe(obj: object, name: str) -> None:
    from ferrodyn.variables.classify import describe

    assert describe(obj) == name
