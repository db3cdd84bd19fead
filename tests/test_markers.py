"""torch's compiler markers under ferrodyn, each checked against torch.compile in the same test.

For every marker the compiled function must give eager's results, side effects and printed
output, and ferrodyn must split it into as many graphs (and report as many graph breaks) as
torch.compile does on the same function (``torch._dynamo.testing.CompileCounter``,
``dynamic=False``, no inductor). ``fullgraph=True`` and ``error_on_graph_break(True)`` must
raise ``ferrodyn.exc.Unsupported`` naming the break's reason and this file's line.

The comparison with torch.compile is made here directly, so the module is skipped when the
suite itself runs against torch.compile (``FERRODYN_TEST_REFERENCE=torch``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal, clone_tree

pytestmark = pytest.mark.ferrodyn_contract

THIS_FILE = str(Path(__file__).resolve())


def line_of(marker: str) -> int:
    """1-based line number of the unique source line ending with ``# <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _run(call: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...], str]:
    """(result, the arguments after the call, printed output) of one call on fresh args."""
    args = clone_tree(args)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = call(*args)
    return result, args, out.getvalue()


class Both:
    """One function compiled by torch.compile and by ferrodyn (each with a counter)."""

    def __init__(self, torch_cnt: Any, ferro_cnt: Any, result: Any, printed: str) -> None:
        self.torch = torch_cnt
        self.ferro = ferro_cnt
        self.result = result
        self.printed = printed


def compare(fn: Callable[..., Any], *args: Any, same_as_eager: bool = True) -> Both:
    """Run `fn` eagerly, under torch.compile and under ferrodyn; results, argument mutations
    and printed output of the compiled runs equal eager's (or, with `same_as_eager=False`,
    each other's), and both compilers made the same number of graphs and ops."""
    expected = _run(fn, args)
    torch._dynamo.reset()
    tc = torch._dynamo.testing.CompileCounter()
    by_torch = _run(torch.compile(fn, backend=tc, dynamic=False), args)
    fc = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=fc)
    by_ferro = _run(compiled, args)
    reference = expected if same_as_eager else by_torch
    assert_tree_equal(by_ferro[:2], reference[:2])
    assert by_ferro[2] == reference[2], "printed output differs"
    assert (fc.frame_count, fc.op_count) == (tc.frame_count, tc.op_count), (
        f"ferrodyn {fc.frame_count} graphs / {fc.op_count} ops, "
        f"torch.compile {tc.frame_count} / {tc.op_count}"
    )
    # A second call reuses what the first compiled.
    counts = (fc.frame_count, fc.op_count)
    again = _run(compiled, args)
    assert_tree_equal(again[:2], reference[:2])
    assert again[2] == reference[2]
    assert (fc.frame_count, fc.op_count) == counts, "the second call compiled again"
    return Both(tc, fc, by_ferro[0], by_ferro[2])


def break_counts(fn: Callable[..., Any], *args: Any) -> tuple[int, int, Any]:
    """(torch.compile's graph-break count, ferrodyn's, ferrodyn's ExplainOutput)."""
    with contextlib.redirect_stdout(io.StringIO()):
        torch._dynamo.reset()
        theirs = torch._dynamo.explain(fn)(*clone_tree(args))
        ours = ferrodyn.explain(fn)(*clone_tree(args))
    return theirs.graph_break_count, ours.graph_break_count, ours


def assert_raises_both(fn: Callable[..., Any], *args: Any, reason: str, marker: str) -> None:
    """fullgraph=True (or an error_on_graph_break region) makes both compilers raise;
    ferrodyn's error names the reason and this file's line."""
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(fn, backend="eager", fullgraph=True)(*clone_tree(args))
    with pytest.raises(ferrodyn.exc.Unsupported) as info:
        ferrodyn.compile(fn, backend="eager", fullgraph=True)(*clone_tree(args))
    msg = str(info.value)
    assert reason in msg
    assert f"{THIS_FILE}:{line_of(marker)}" in msg


def x3() -> torch.Tensor:
    return torch.randn(3)


# ---- torch._dynamo.graph_break() ---------------------------------------------------------


def gb_fn(x: torch.Tensor, log: list[int]) -> torch.Tensor:
    log.append(1)
    y = x + 1
    print("before", y.shape)
    torch._dynamo.graph_break()  # gb-call
    log.append(2)
    print("after")
    return y * 2


def test_graph_break_splits_like_torch() -> None:
    both = compare(gb_fn, x3(), [])
    assert both.ferro.frame_count == 2
    theirs, ours, out = break_counts(gb_fn, x3(), [])
    assert ours == theirs == 1
    (r,) = out.break_reasons
    assert "torch._dynamo.graph_break()" in r.reason
    assert (r.file, r.line) == (THIS_FILE, line_of("gb-call"))


def test_graph_break_fullgraph_raises() -> None:
    assert_raises_both(gb_fn, x3(), [], reason="torch._dynamo.graph_break()", marker="gb-call")


def gb_msg_fn(x: torch.Tensor) -> torch.Tensor:
    y = x.sin()
    torch._dynamo.graph_break("stop here")
    return y.cos()


def test_graph_break_message_joins_reason() -> None:
    compare(gb_msg_fn, x3())
    _, _, out = break_counts(gb_msg_fn, x3())
    assert "torch._dynamo.graph_break(): stop here" in out.break_reasons[0].reason


def callee_with_break(x: torch.Tensor) -> torch.Tensor:
    y = x.cos()
    torch._dynamo.graph_break()
    return y.sin()


def gb_in_callee(x: torch.Tensor) -> torch.Tensor:
    return callee_with_break(x + 1) * 2


def test_graph_break_in_inlined_callee() -> None:
    assert compare(gb_in_callee, x3()).ferro.frame_count == 4


# ---- torch.compiler.disable / torch._dynamo.disable ---------------------------------------


@torch.compiler.disable
def disabled(x: torch.Tensor) -> torch.Tensor:
    print("disabled ran on", x.shape)
    return x.sin().cos().tan()


@torch._dynamo.disable(reason="talks to the network")
def dynamo_disabled(x: torch.Tensor) -> torch.Tensor:
    return x.sin().cos()


def _inner(x: torch.Tensor) -> torch.Tensor:
    return x.sin()


@torch._dynamo.disable(recursive=False)
def disabled_nonrecursive(x: torch.Tensor) -> torch.Tensor:
    return _inner(x).cos()


def calls_disabled(x: torch.Tensor) -> torch.Tensor:
    return disabled(x + 1) * 2  # disabled-call


def calls_dynamo_disabled(x: torch.Tensor) -> torch.Tensor:
    return dynamo_disabled(x + 1) * 2


def test_compiler_disable_runs_eagerly_and_breaks() -> None:
    both = compare(calls_disabled, x3())
    assert both.ferro.frame_count == 2
    assert both.ferro.op_count == 2  # sin/cos/tan ran eagerly, outside the graphs
    assert both.printed.count("disabled ran on") == 1
    theirs, ours, out = break_counts(calls_disabled, x3())
    assert ours == theirs == 1
    (r,) = out.break_reasons
    assert "marked torch.compiler.disable" in r.reason and "disabled" in r.reason
    assert (r.file, r.line) == (THIS_FILE, line_of("disabled-call"))


def test_compiler_disable_fullgraph_raises() -> None:
    assert_raises_both(
        calls_disabled, x3(), reason="marked torch.compiler.disable", marker="disabled-call"
    )


def test_dynamo_disable_with_reason() -> None:
    compare(calls_dynamo_disabled, x3())
    theirs, ours, out = break_counts(calls_dynamo_disabled, x3())
    assert ours == theirs == 1
    assert "talks to the network" in out.break_reasons[0].reason


def test_disable_nonrecursive_compiles_callee() -> None:
    # As torch.compile: only the disabled frame runs eagerly; the frame hook offers its
    # callee `_inner` to the tracer (one more graph), so the frame counts agree.
    def fn(x: torch.Tensor) -> torch.Tensor:
        return disabled_nonrecursive(x + 1) * 2

    x = x3()
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(x), fn(x))
    tc = torch._dynamo.testing.CompileCounter()
    torch._dynamo.reset()
    assert_tree_equal(torch.compile(fn, backend=tc)(x), fn(x))
    assert cnt.frame_count == tc.frame_count == 3
    out = ferrodyn.explain(fn)(x)
    assert "recursive=False" in out.break_reasons[0].reason
    # With the frame hook off, the callee runs eagerly inside the disabled frame.
    ferrodyn.reset()
    with ferrodyn.config.patch(frame_hook=False):
        cnt = ferrodyn.testing.CompileCounter()
        assert_tree_equal(ferrodyn.compile(fn, backend=cnt)(x), fn(x))
    assert cnt.frame_count == 2


def disabled_in_callee(x: torch.Tensor) -> torch.Tensor:
    return disabled(x.cos()).sin()


def test_disable_inside_inlined_callee() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return disabled_in_callee(x + 1) * 2

    assert compare(fn, x3()).ferro.frame_count == 4


class WithDisabledMethod(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 3)

    @torch.compiler.disable
    def helper(self, x: torch.Tensor) -> torch.Tensor:
        print("helper")
        return x.relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.helper(self.lin(x)).sum()


def test_disabled_method_of_module() -> None:
    m = WithDisabledMethod()
    both = compare(m, x3())
    assert both.ferro.frame_count == 2


# ---- allow_in_graph, disallow_in_graph, unsupported ---------------------------------------


def aig_compiler(x: torch.Tensor) -> torch.Tensor:
    return x.sin().cos()


def aig_dynamo(x: torch.Tensor) -> torch.Tensor:
    return x.tan() + 1


torch.compiler.allow_in_graph(aig_compiler)
torch._dynamo.allow_in_graph(aig_dynamo)


@pytest.mark.parametrize("target", [aig_compiler, aig_dynamo], ids=["compiler", "dynamo"])
def test_allow_in_graph_is_one_call_node(target: Callable[..., Any]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return target(x + 1) * 2

    both = compare(fn, x3())
    assert (both.ferro.frame_count, both.ferro.op_count) == (1, 3)
    (gm,) = both.ferro.graphs
    assert target in [n.target for n in gm.graph.nodes if n.op == "call_function"]


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")
def test_disallow_in_graph_breaks() -> None:
    import torch._dynamo.trace_rules as rules

    def fn(x: torch.Tensor) -> torch.Tensor:
        a = torch.add(x, 1)
        a = torch.sub(a, 1)
        return torch.add(a, 1)

    torch._dynamo.disallow_in_graph(torch.sub)
    try:
        assert compare(fn, x3()).ferro.frame_count == 2
        theirs, ours, out = break_counts(fn, x3())
        assert ours == theirs == 1
        assert "disallow_in_graph" in out.break_reasons[0].reason
    finally:
        rules._disallowed_callable_ids.remove(id(torch.sub))


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")
def test_testing_unsupported_breaks() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        a = x + 1
        b = torch._dynamo.testing.unsupported(a, a)
        return b * 2

    assert compare(fn, x3()).ferro.frame_count == 2
    theirs, ours, _ = break_counts(fn, x3())
    assert ours == theirs == 1


def test_skip_frame_and_step_unsupported() -> None:
    def skipped(x: torch.Tensor) -> torch.Tensor:
        a = x + 1
        torch._dynamo.skip_frame()
        return a * 2

    def stepped(x: torch.Tensor) -> torch.Tensor:
        b = (x + 1).sin()
        torch._dynamo.step_unsupported()
        return (b * 2).cos()

    assert compare(skipped, x3()).ferro.frame_count == 0
    assert compare(stepped, x3()).ferro.op_count == 2  # the rest ran eagerly


def test_nested_torch_compile_is_traced_in_place() -> None:
    inner = torch.compile(lambda t: t.sin().cos(), backend="eager")

    def fn(x: torch.Tensor) -> torch.Tensor:
        return inner(x + 1) * 2

    assert compare(fn, x3()).ferro.frame_count == 1


# ---- is_compiling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "probe", [torch.compiler.is_compiling, torch._dynamo.is_compiling], ids=["compiler", "dynamo"]
)
def test_is_compiling(probe: Callable[[], bool]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + 1 if probe() else x - 1

    x = x3()
    assert not probe()
    assert_tree_equal(fn(x), x - 1)
    both = compare(fn, x, same_as_eager=False)
    assert_tree_equal(both.result, x + 1)
    assert not probe()


# ---- torch._dynamo.error_on_graph_break --------------------------------------------------


def eogb_block(x: torch.Tensor) -> torch.Tensor:
    a = x + 1
    with torch._dynamo.error_on_graph_break(True):
        torch._dynamo.graph_break()  # eogb-block
    return a * 2


@torch._dynamo.error_on_graph_break(True)
def eogb_decorated(x: torch.Tensor) -> torch.Tensor:
    y = x.sin()
    torch._dynamo.graph_break()  # eogb-decorated
    return y


def calls_eogb_decorated(x: torch.Tensor) -> torch.Tensor:
    return eogb_decorated(x + 1) * 2


@pytest.mark.parametrize(
    ("fn", "marker"),
    [(eogb_block, "eogb-block"), (calls_eogb_decorated, "eogb-decorated")],
    ids=["with", "decorator"],
)
def test_error_on_graph_break_raises(fn: Callable[..., Any], marker: str) -> None:
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(fn, backend="eager")(x3())
    with pytest.raises(ferrodyn.exc.Unsupported) as info:
        ferrodyn.compile(fn, backend="eager")(x3())
    msg = str(info.value)
    assert "error_on_graph_break" in msg and "torch._dynamo.graph_break()" in msg
    assert f"{THIS_FILE}:{line_of(marker)}" in msg


def test_error_on_graph_break_region_ends() -> None:
    def fn(x: torch.Tensor, log: list[int]) -> torch.Tensor:
        with torch._dynamo.error_on_graph_break(True):
            a = x + 1
            log.append(1)
        torch._dynamo.graph_break()
        return a * 2

    assert compare(fn, x3(), []).ferro.frame_count == 2


def test_error_on_graph_break_false_inside_true() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        with torch._dynamo.error_on_graph_break(True):
            a = x + 1
            with torch._dynamo.error_on_graph_break(False):
                torch._dynamo.graph_break()
                a = a + 1
            a = a * 2
        torch._dynamo.graph_break()
        return a * 2

    assert compare(fn, x3()).ferro.frame_count == 3

    def back_in_true(x: torch.Tensor) -> torch.Tensor:
        with torch._dynamo.error_on_graph_break(True):
            a = x + 1
            with torch._dynamo.error_on_graph_break(False):
                torch._dynamo.graph_break()
            torch._dynamo.graph_break()  # eogb-resumed
            return a * 2

    # The resume function after the first break starts inside both blocks; the second
    # break is back in the True block.
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(back_in_true, backend="eager")(x3())
    with pytest.raises(ferrodyn.exc.Unsupported, match=str(line_of("eogb-resumed"))):
        ferrodyn.compile(back_in_true, backend="eager")(x3())


def test_error_on_graph_break_entered_eagerly() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        a = x + 1
        torch._dynamo.graph_break()  # eogb-eager
        return a * 2

    with torch._dynamo.error_on_graph_break(True):
        with pytest.raises(torch._dynamo.exc.Unsupported):
            torch.compile(fn, backend="eager")(x3())
        with pytest.raises(ferrodyn.exc.Unsupported, match=str(line_of("eogb-eager"))):
            ferrodyn.compile(fn, backend="eager")(x3())
    # Outside the block the same function splits again.
    assert compare(fn, x3()).ferro.frame_count == 2


def test_fullgraph_wins_over_error_on_graph_break_false() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        a = x + 1
        with torch._dynamo.error_on_graph_break(False):
            torch._dynamo.graph_break()  # eogb-false
        return a * 2

    assert_raises_both(fn, x3(), reason="torch._dynamo.graph_break()", marker="eogb-false")


# ---- torch._dynamo.config -----------------------------------------------------------------


def _graphs_for_shapes(compile_fn: Callable[..., Any], shapes: list[int]) -> int:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    cnt = torch._dynamo.testing.CompileCounter()
    compiled = compile_fn(fn, cnt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the recompile-limit warning
        for n in shapes:
            assert_tree_equal(compiled(torch.ones(n)), torch.ones(n) * 2)
    return cnt.frame_count


def _torch(fn: Callable[..., Any], cnt: Any) -> Any:
    return torch.compile(fn, backend=cnt, dynamic=False)


def _ferro(fn: Callable[..., Any], cnt: Any) -> Any:
    return ferrodyn.compile(fn, backend=cnt, dynamic=False)


def test_dynamo_config_patch_recompile_limit() -> None:
    shapes = [1, 2, 3, 4]
    with torch._dynamo.config.patch(recompile_limit=2):
        theirs = _graphs_for_shapes(_torch, shapes)
        ours = _graphs_for_shapes(_ferro, shapes)
    assert ours == theirs == 2

    @torch._dynamo.config.patch(cache_size_limit=3)
    def under_decorator() -> tuple[int, int]:
        torch._dynamo.reset()
        return _graphs_for_shapes(_torch, shapes), _graphs_for_shapes(_ferro, shapes)

    assert under_decorator() == (3, 3)
    # Back to the default (8): no limit reached.
    torch._dynamo.reset()
    assert _graphs_for_shapes(_ferro, [1, 2]) == 2


def test_ferrodyn_limit_set_explicitly_wins() -> None:
    ferrodyn.config.recompile_limit = 1
    with torch._dynamo.config.patch(recompile_limit=3):
        assert _graphs_for_shapes(_ferro, [1, 2, 3]) == 1
