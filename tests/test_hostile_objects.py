"""Objects that misbehave get eager's exceptions and values: __bool__/__len__ returning the
wrong type, dunders that raise, a lying __class__, locals(), sys._getframe()."""

from __future__ import annotations

import sys
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal
from ferrodyn.testing import CompileCounter


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 - the exception is the outcome compared
        return "raised", (type(e), str(e))


def _same(fn: Any, *args: Any) -> CompileCounter:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        want = _outcome(fn, *args)
        got = _outcome(compiled, *args)
        assert got[0] == want[0], (got, want)
        assert_tree_equal(got[1], want[1])
    return cnt


class BoolInt:
    def __bool__(self) -> Any:
        return 1  # noqa: PLE0304 - the point of the test


class BoolRaises:
    def __bool__(self) -> bool:
        raise ValueError("no truth here")


class LenNegative:
    def __len__(self) -> int:
        return -1  # noqa: PLE0303


class LenStr:
    def __len__(self) -> Any:
        return "3"  # noqa: PLE0303


class LenBool:
    def __len__(self) -> Any:
        return True  # noqa: PLE0303


class IndexFloat:
    def __index__(self) -> Any:
        return 1.5  # noqa: PLE0305


class LiarClass:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return int


def _branch(x: torch.Tensor, o: Any) -> torch.Tensor:
    if o:
        return x + 1
    return x - 1


@pytest.mark.parametrize(
    "obj", [BoolInt(), BoolRaises(), LenNegative(), LenStr(), LenBool()], ids=type
)
def test_truth_value_of_hostile_objects(obj: Any) -> None:
    _same(_branch, torch.ones(3), obj)


@pytest.mark.parametrize("obj", [LenNegative(), LenStr(), LenBool()], ids=type)
def test_len_of_hostile_objects(obj: Any) -> None:
    _same(lambda x, o: x + len(o), torch.ones(3), obj)


def test_bool_returning_int_raises_type_error_like_eager() -> None:
    compiled = ferrodyn.compile(_branch, backend="eager")
    with pytest.raises(TypeError, match="__bool__ should return bool, returned int"):
        compiled(torch.ones(2), BoolInt())


def test_bool_returning_int_is_catchable_inside_the_graph() -> None:
    def f(x: torch.Tensor, o: Any) -> torch.Tensor:
        try:
            if o:
                return x + 1
        except TypeError:
            return x * 10
        return x

    cnt = _same(f, torch.ones(2), BoolInt())
    assert cnt.frame_count == 1


def test_index_returning_float() -> None:
    _same(lambda x, o: x[o], torch.arange(4.0), IndexFloat())


def test_lying_class_isinstance() -> None:
    def f(x: torch.Tensor, o: Any) -> Any:
        return isinstance(o, int), isinstance(o, LiarClass), x + 1

    _same(f, torch.ones(2), LiarClass())


def test_lying_class_attribute_read() -> None:
    def f(x: torch.Tensor, o: Any) -> Any:
        return o.__class__ is int, x + 1

    _same(f, torch.ones(2), LiarClass())


def test_isinstance_of_an_honest_object_stays_in_graph() -> None:
    class Plain:
        pass

    def f(x: torch.Tensor, o: Any) -> torch.Tensor:
        if isinstance(o, Plain):
            return x + 1
        return x - 1

    cnt = _same(f, torch.ones(2), Plain())
    assert cnt.frame_count == 1


def test_locals_matches_eager() -> None:
    def f(x: torch.Tensor) -> Any:
        a = 1
        b = x + 1
        return len(locals()), sorted(locals()), b

    cnt = _same(f, torch.ones(2))
    assert cnt.frame_count == 1


def test_locals_with_cells_and_unbound_names() -> None:
    def f(x: torch.Tensor) -> Any:
        y = x * 2
        early = dict(locals())

        def inner() -> torch.Tensor:
            return y + 1

        late = locals()
        return sorted(early), sorted(late), inner()

    _same(f, torch.ones(2))


def test_locals_is_a_fresh_dict() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        d = locals()
        d["x"] = 5
        return x + 1

    _same(f, torch.ones(2))


def test_sys_getframe() -> None:
    def f(x: torch.Tensor) -> Any:
        fr = sys._getframe()
        return fr.f_code.co_name, x + 1

    _same(f, torch.ones(2))


def test_dunder_that_raises_propagates_like_eager() -> None:
    class Bad:
        def __add__(self, other: Any) -> Any:
            raise RuntimeError("bad add")

    _same(lambda x, o: o + x, torch.ones(2), Bad())
