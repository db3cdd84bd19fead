"""Objects whose state lives in C (a NumPy array, a NumPy scalar) are never folded into a
graph as constants: only their type is guarded, so a later call with other contents must
not reuse today's values (issue 8: no stale graphs). And `type(obj).attr` is guarded like
`obj.attr`. Every call is compared with eager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import numpy as np
import pytest
import torch


def _outcome(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - compared with eager's
        return type(e)


CASES: dict[str, tuple[Callable[..., Any], Callable[[int], Any]]] = {
    "index": (lambda x, a: x * float(a[0]), lambda i: np.full(2, float(i))),
    "compare": (lambda x, a: x * 2 if (a == 1).all() else x, lambda i: np.full(2, float(i))),
    "negate": (lambda x, a: x * float((-a)[0]), lambda i: np.full(2, float(i))),
    "add": (lambda x, a: x * float((a + 1)[1]), lambda i: np.full(2, float(i))),
    "scalar_float": (lambda x, a: x * float(a), lambda i: np.float64(i)),
    "str": (lambda x, a: x * len(str(a)), lambda i: np.zeros(i + 1)),
    "contains": (lambda x, a: x * (2 if 1.0 in a else 1), lambda i: np.full(2, float(i))),
    "len": (lambda x, a: x * len(a), lambda i: np.zeros(i + 1)),
    "sum": (lambda x, a: x * float(sum(a)), lambda i: np.full(2, float(i))),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_numpy_contents_change_between_calls(name: str) -> None:
    fn, make = CASES[name]
    compiled = ferrodyn.compile(fn, backend="eager")
    for i in range(3):
        got = _outcome(compiled, torch.ones(2), make(i))
        expected = _outcome(fn, torch.ones(2), make(i))
        if isinstance(expected, type):
            assert got is expected
        else:
            torch.testing.assert_close(got, expected)


class Mode:
    mode = "a"


def test_type_of_object_attribute_is_guarded() -> None:
    def g(x: torch.Tensor, o: Mode) -> torch.Tensor:
        return x + (1 if type(o).mode == "a" else 2)

    compiled = ferrodyn.compile(g, backend="eager")
    o = Mode()
    try:
        torch.testing.assert_close(compiled(torch.zeros(1), o), g(torch.zeros(1), o))
        Mode.mode = "b"
        torch.testing.assert_close(compiled(torch.zeros(1), o), g(torch.zeros(1), o))
        assert compiled.compile_count() == 2
    finally:
        Mode.mode = "a"
