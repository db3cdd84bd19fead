"""Observed exceptions (inventory group D, items 86-93; items 5, 6, 55, 123): exceptions
raised inside the compiled region are seen by the traced program's own handlers, without
a graph break. Exceptions that escape behave exactly as eager (type, message, side effects
applied once).

Every test runs the function eagerly and compiled on fresh, equal inputs and compares the
results (exception objects by type, args, cause, context and attributes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal


def t(n: int = 3) -> torch.Tensor:
    return torch.arange(float(n))


def norm(v: Any) -> Any:
    """Exceptions become comparable tuples (type, args, attrs, cause, context)."""
    if isinstance(v, BaseException):
        return (
            "exc",
            type(v),
            norm(v.args),
            norm({k: x for k, x in vars(v).items()}),
            norm(v.__cause__),
            norm(v.__context__),
            v.__suppress_context__,
        )
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return tuple(norm(x) for x in v)
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, Box):
        return ("Box", norm(vars(v)))
    return v


def run(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as e:  # noqa: BLE001 - the exception is the result being compared
        return "raised", (type(e), str(e))


def check(
    fn: Callable[..., Any],
    make_args: Callable[[], tuple[Any, ...]] = lambda: (t(),),
    frames: int | None = 1,
    calls: int = 2,
) -> ferrodyn.testing.CompileCounter:
    eager_args = make_args()
    expected = run(fn, eager_args)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for call in range(calls):
        args = make_args()
        got = run(compiled, args)
        assert got[0] == expected[0], f"call {call}: {got} != {expected}"
        assert_tree_equal(norm(got[1]), norm(expected[1]), f"call {call}: result")
        assert_tree_equal(norm(args), norm(eager_args), f"call {call}: args after call")
    if frames is not None:
        assert cnt.frame_count == frames, f"frame_count {cnt.frame_count} != {frames}"
    return cnt


class Box:
    def __init__(self, v: Any = None) -> None:
        self.v = v


class AppError(Exception):
    pass


class CodedError(ValueError):
    def __init__(self, msg: str, code: int) -> None:
        super().__init__(msg)
        self.code = code


class ExplicitBase(Exception):
    def __init__(self, a: Any, b: Any) -> None:
        Exception.__init__(self, a + b)
        self.parts = (a, b)

    def total(self) -> Any:
        return self.args[0] * 10


class NoSuperInit(RuntimeError):
    def __init__(self, v: Any) -> None:
        self.v = v


# ------------------------------------------------------------------- 86: builtin exceptions


@pytest.mark.parametrize(
    "cls", [ValueError, KeyError, TypeError, AttributeError, RuntimeError, IndexError]
)
def test_item_86_raise_and_catch_builtin(cls: type) -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise cls("m", 2)
        except cls as e:
            return x + 1, e.args, type(e) is cls

    check(fn)


def test_item_86_args_is_a_tuple_and_class_raise() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError
        except (KeyError, ValueError) as e:
            return x * 2, e.args, isinstance(e.args, tuple), isinstance(e, ValueError)

    check(fn)


def test_item_86_uncaught_type_skips_handler() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("k")
            except ValueError:
                return x
        except LookupError as e:
            return x + 3, e.args

    check(fn)


def test_item_86_assert_caught() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            assert x.shape[0] == 100, "wrong size"
        except AssertionError as e:
            return x - 1, e.args
        return x

    check(fn)


def test_item_86_finally_runs_and_exception_in_callee() -> None:
    def inner(b: Box) -> None:
        try:
            raise RuntimeError("inner")
        finally:
            b.v = "finally ran"

    def fn(x: torch.Tensor, b: Box) -> Any:
        try:
            inner(b)
        except RuntimeError as e:
            return x + 1, e.args, b.v

    check(fn, lambda: (t(), Box()))


def test_item_86_with_block_exit_sees_exception() -> None:
    class Ctx:
        def __init__(self) -> None:
            self.seen: Any = None

        def __enter__(self) -> Ctx:  # noqa: PYI034
            return self

        def __exit__(self, ty: object, val: Any, tb: object) -> bool:  # noqa: PYI036
            self.seen = (ty, val.args)
            return True

    def fn(x: torch.Tensor) -> Any:
        c = Ctx()
        with c:
            raise ValueError("in with")
        return x + 1, c.seen

    check(fn)


def test_item_86_grad_mode_restored_on_exception() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            with torch.no_grad():
                raise ValueError
        except ValueError:
            pass
        return x + 1, torch.is_grad_enabled()

    check(fn)


# ------------------------------------------------------------------- 87: user exceptions


def test_item_87_user_exception_class() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise AppError("app", 1)
        except Exception as e:  # noqa: BLE001 - catching the user class through its base
            return x + 1, e.args, type(e).__name__

    check(fn)


def test_item_87_custom_init_traced_super_init_recorded() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise CodedError("bad", 7)
        except ValueError as e:
            return x + 1, e.args, e.code

    check(fn)


def test_item_87_explicit_base_init_and_method() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ExplicitBase(2, 3)
        except ExplicitBase as e:
            return x + e.total(), e.args, e.parts

    check(fn)


def test_item_87_init_without_super_keeps_constructor_args() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise NoSuperInit(5)
        except RuntimeError as e:
            return x + 1, e.args, e.v

    check(fn)


# ------------------------------------------------------------------- 88: __context__


def test_item_88_raise_in_except_sets_context() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("second")  # the implicit context is tested
        except ValueError as e:
            c = e.__context__
            return x + 1, type(c), c.args, e.__cause__, e.__suppress_context__

    check(fn)


def test_item_88_bare_reraise_keeps_exception() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("k")
            except KeyError:  # noqa: TRY203 - the bare re-raise is tested
                raise
        except KeyError as e:
            return x + 1, e.args, e.__context__

    check(fn)


# ------------------------------------------------------------------- 89: raise ... from


def test_item_89_raise_from_sets_cause() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise TypeError("t") from ValueError("v")
        except TypeError as e:
            return x + 1, e.__cause__.args, type(e.__cause__), e.__suppress_context__

    check(fn)


def test_item_89_raise_from_none() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("k")
            except KeyError:
                raise ValueError("v") from None
        except ValueError as e:
            return x + 1, e.__cause__, e.__suppress_context__, type(e.__context__)

    check(fn)


def test_item_89_raise_from_non_exception_is_type_error() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError("v") from 5  # type: ignore[misc]
        except TypeError as e:
            return x + 1, e.args

    check(fn)


# ------------------------------------------------------------------- 90: __traceback__


def test_item_90_traceback_is_none_and_settable_to_none() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError("v")
        except ValueError as e:
            e.__traceback__ = None
            same = e.with_traceback(None) is e
            return x + 1, e.__traceback__, same

    check(fn)


def test_item_90_traceback_set_to_object_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        e = ValueError("v")
        y = x + 1
        e.__traceback__ = 5  # type: ignore[assignment]
        return y

    # CPython raises TypeError here: the frame splits at the store, whose glue runs it
    # natively, raising the same (torch.compile gives up on the frame: 0 graphs; ferrodyn
    # compiles `x + 1` first).
    check(fn, frames=1)


# ------------------------------------------------------------------- 91: breaks


def test_item_91_attribute_on_builtin_exception_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        e = ValueError("v")
        e.extra = 1  # type: ignore[attr-defined]
        return x + 1, e.args, e.extra  # type: ignore[attr-defined]

    check(fn, frames=1)  # the store runs natively; `x + 1` is a graph (as torch.compile)


def test_item_91_keyword_args_to_constructor_break() -> None:
    def fn(x: torch.Tensor) -> Any:
        e = AttributeError("v", name="n")
        return x + 1, e.name

    check(fn, frames=1)  # as torch.compile


# ------------------------------------------------------------------- 92: escaping objects


def test_item_92_returned_exception_is_rebuilt() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("inner")
            except KeyError as inner:
                raise CodedError("outer", 3) from inner
        except CodedError as e:
            return x + 1, e, e.__cause__

    cnt = check(fn)
    assert cnt.frame_count == 1


def test_item_92_identity_of_rebuilt_exceptions() -> None:
    def fn(x: torch.Tensor) -> Any:
        e = ValueError(x.shape[0])
        return x + 1, e, e

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    _, a, b = compiled(t())
    assert a is b and a.args == (3,)


def test_item_92_exception_with_tensor_args() -> None:
    def fn(x: torch.Tensor) -> Any:
        return ValueError(x * 2, "m")

    got = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t())
    torch.testing.assert_close(got.args[0], t() * 2)
    assert got.args[1] == "m" and type(got) is ValueError


# ------------------------------------------------------------------- 93: sys.exc_info


def test_item_93_sys_exc_info_in_except() -> None:
    def fn(x: torch.Tensor) -> Any:
        before = sys.exc_info()
        try:
            raise ValueError("v")
        except ValueError:
            ty, val, _ = sys.exc_info()
            inside = (ty, val.args)
        return x + 1, before, inside, sys.exc_info()

    check(fn)


# ------------------------------------------------------------------- 5, 6, 55, 123


def test_item_5_delete_then_read_is_observed() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        del b.v
        try:
            return b.v
        except AttributeError as e:
            return x + 1, e.args

    check(fn, lambda: (t(), Box(5)))


def test_item_6_missing_attribute_caught() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        try:
            return b.missing
        except AttributeError as e:
            return x + 1, e.args, e.name, e.obj is b

    check(fn, lambda: (t(), Box(5)))


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g(1),
        lambda g: g(1, 2, 3, 4),
        lambda g: g(1, 2, z=3),
        lambda g: g(1, 2),
    ],
    ids=["missing", "too_many", "unexpected_kw", "kwonly_missing"],
)
def test_item_55_binding_errors_are_catchable(call: Callable[..., Any]) -> None:
    def g(a: Any, b: Any, *, c: Any) -> Any:
        return a

    def fn(x: torch.Tensor) -> Any:
        try:
            call(g)
        except TypeError as e:
            return x + 1, e.args

    check(fn)


def test_item_123_exhausted_generator_stop_iteration() -> None:
    def gen() -> Any:
        yield 1

    def fn(x: torch.Tensor) -> Any:
        g = gen()
        first = next(g)
        try:
            next(g)
        except StopIteration as e:
            return x + first, e.args

    check(fn)


def test_modelled_operation_errors_caught() -> None:
    def fn(x: torch.Tensor) -> Any:
        out = []
        try:
            {"a": 1}["b"]
        except KeyError as e:
            out.append(e.args)
        try:
            [1, 2][5]  # noqa: PLE0643
        except IndexError as e:
            out.append(e.args)
        try:
            1 // 0  # noqa: B018
        except ZeroDivisionError as e:
            out.append(e.args)
        try:
            "abc".index("z")
        except ValueError as e:
            out.append(e.args)
        return x + 1, out

    check(fn)


# ------------------------------------------------------------------- escaping the frame


def test_uncaught_exception_matches_eager() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        b.v = x + 1
        raise CodedError("escape", 4)

    check(fn, lambda: (t(), Box()), frames=None)


def test_uncaught_in_callee_applies_side_effects_once() -> None:
    def fails(b: Box, x: torch.Tensor) -> None:
        b.v = b.v + [len(b.v)]
        raise ValueError("from callee")

    def fn(x: torch.Tensor, b: Box) -> Any:
        y = x * 2
        b.v = b.v + ["before"]
        fails(b, y)
        return y

    check(fn, lambda: (t(), Box([])), frames=None)


def test_reraised_after_handler_matches_eager() -> None:
    def fn(x: torch.Tensor, b: Box) -> Any:
        try:
            raise KeyError("k")
        except KeyError:
            b.v = "handled"
            raise RuntimeError("again")

    check(fn, lambda: (t(), Box()), frames=None)


def test_generator_stop_iteration_becomes_runtime_error() -> None:
    def gen() -> Any:
        yield 1
        raise StopIteration("inside")  # noqa: PLR1708 - PEP 479 is tested

    def fn(x: torch.Tensor) -> Any:
        try:
            return list(gen())
        except RuntimeError as e:
            return x + 1, e.args, type(e.__cause__)

    check(fn)


def test_item_139_fullgraph_uncaught_is_not_silent() -> None:
    def fn(x: torch.Tensor) -> Any:
        raise ValueError("v")

    with pytest.raises((ValueError, ferrodyn.exc.Unsupported)):
        ferrodyn.compile(fn, fullgraph=True, backend=ferrodyn.testing.CompileCounter())(t())


def test_generator_resumed_inside_except_block() -> None:
    def gen() -> Any:
        yield 1
        yield 2

    def fn(x: torch.Tensor) -> Any:
        g = gen()
        try:
            raise ValueError("v")
        except ValueError:
            a = next(g)
            b = next(g)
        return x + a + b

    check(fn)


def test_yield_inside_except_in_generator_is_not_wrong() -> None:
    def gen() -> Any:
        try:
            raise KeyError("k")
        except KeyError:
            yield 1
        yield 2

    def fn(x: torch.Tensor) -> Any:
        return x + sum(gen())

    check(fn, frames=None)
