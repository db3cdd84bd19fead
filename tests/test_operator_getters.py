"""`operator.itemgetter`/`attrgetter`/`methodcaller` (checklist items on builtins through
polyfills, 53-75): made in the trace or passed in from outside, calling them is traced (one
graph, as torch.compile), and one that escapes is rebuilt equal to eager's. A getter read
from a global is guarded by identity: rebinding the global re-traces."""

from __future__ import annotations

import operator
from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter

X = torch.arange(3.0) * 0.7


def _no_breaks(fn: Any, *args: Any) -> CompileCounter:
    explained = ferrodyn.explain(fn)(*args)
    assert explained.graph_break_count == 0, [r.reason for r in explained.break_reasons]
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    expected = fn(*args)
    got = compiled(*args)
    assert_tree_equal(got[:-1], expected[:-1])
    return cnt


def test_getters_made_in_the_trace() -> None:
    def f(x: torch.Tensor) -> Any:
        get = operator.attrgetter("shape")
        call = operator.methodcaller("sum")
        clamp = operator.methodcaller("clamp", min=0.5)
        pick = operator.itemgetter(0, 2)
        return call(x) + get(x)[0], clamp(x), pick(x), clamp

    cnt = _no_breaks(f, X)
    assert cnt.frame_count == 1
    escaped = ferrodyn.compile(f, backend="eager")(X)[-1]
    assert type(escaped) is operator.methodcaller
    assert repr(escaped) == "operator.methodcaller('clamp', min=0.5)"


GET = operator.attrgetter("shape")
CLAMP = operator.methodcaller("clamp", min=0.5)
ADD = operator.methodcaller("add", 2)
PICK = operator.itemgetter(1)


def uses_globals(x: torch.Tensor) -> Any:
    return GET(x)[0] + x, CLAMP(x), ADD(x), PICK(x), None


def test_getters_from_outside_are_traced() -> None:
    _no_breaks(uses_globals, X)


def test_rebinding_a_global_getter_retraces() -> None:
    global ADD
    compiled = ferrodyn.compile(uses_globals, backend="eager")
    assert_tree_equal(compiled(X)[2], X + 2)
    saved = ADD
    try:
        ADD = operator.methodcaller("mul", 3)
        assert_tree_equal(compiled(X)[2], X * 3)
    finally:
        ADD = saved
    assert_tree_equal(compiled(X)[2], X + 2)


def test_methodcaller_error_is_eagers() -> None:
    def f(x: torch.Tensor) -> Any:
        return operator.methodcaller("no_such_method")(x)

    compiled = ferrodyn.compile(f, backend="eager")
    for fn in (f, compiled):
        try:
            fn(X)
        except AttributeError as e:
            assert "no_such_method" in str(e)
        else:
            raise AssertionError("no AttributeError")
