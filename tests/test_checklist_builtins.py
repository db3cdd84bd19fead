"""Checklist items 86-105 (inventory groups D "Exceptions" and E "Builtins and miscellaneous
objects"): each test is a small program run eagerly, through ferrodyn and through
torch.compile; results (exceptions compared by type, args, cause and context) must equal
eager, and where the item implies a graph count ferrodyn's must equal torch.compile's.
"""

from __future__ import annotations

import logging
import re
import sys
import typing
import weakref
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal, clone_tree
from torch._dynamo.comptime import comptime


def t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape) if shape else torch.arange(4.0)


def norm(v: Any) -> Any:
    """Exceptions become comparable tuples (type, args, attrs, cause, context)."""
    if isinstance(v, BaseException):
        return (
            "exc",
            type(v),
            norm(v.args),
            norm(dict(vars(v))),
            norm(v.__cause__),
            norm(v.__context__),
            v.__suppress_context__,
        )
    if isinstance(v, tuple | list):
        return type(v)(norm(x) for x in v)
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def _run(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    try:
        return ("ok", norm(fn(*args)))
    except Exception as e:  # noqa: BLE001 - the exception is the compared result
        return ("raised", type(e), str(e))


def _compiled(name: str, fn: Callable[..., Any]) -> tuple[Any, Callable[..., Any]]:
    if name == "ferrodyn":
        cnt: Any = ferrodyn.testing.CompileCounter()
        return cnt, ferrodyn.compile(fn, backend=cnt)
    cnt = torch._dynamo.testing.CompileCounter()
    return cnt, torch.compile(fn, backend=cnt)


def compare(
    fn: Callable[..., Any],
    *args: Any,
    same_frames: bool = True,
    frames: int | None = None,
    torch_matches_eager: bool = True,
) -> tuple[Any, Any]:
    """Eager vs ferrodyn vs torch.compile, each compiled fn called twice on fresh copies of
    ``args``; returns (ferrodyn counter, torch counter)."""
    eager_args = clone_tree(args)
    expected = _run(fn, eager_args)
    cnt, compiled = _compiled("ferrodyn", fn)
    for call in range(2):
        c_args = clone_tree(args)
        assert_tree_equal(_run(compiled, c_args), expected, f"ferrodyn call {call}")
        assert_tree_equal(c_args, eager_args, f"ferrodyn call {call}: args after")
    try:
        cnt2, compiled2 = _compiled("torch", fn)
        refs = [_run(compiled2, clone_tree(args)) for _ in range(2)]
    finally:
        torch._dynamo.reset()
    if torch_matches_eager:
        assert_tree_equal(refs[0], expected, "torch.compile result")
    if same_frames:
        assert cnt.frame_count == cnt2.frame_count, (
            f"ferrodyn frames {cnt.frame_count} != torch.compile frames {cnt2.frame_count}"
        )
    if frames is not None:
        assert cnt.frame_count == frames
    return cnt, cnt2


def breaks(fn: Callable[..., Any], *args: Any) -> list[str]:
    """ferrodyn's graph-break reasons for one call of ``fn``."""
    out = ferrodyn.explain(fn)(*clone_tree(args))
    ferrodyn.reset()
    return [b.reason for b in out.break_reasons]


# ================================================================== D: exceptions


def test_item_86_raise_and_catch_builtin_exception() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            if x.shape[0] > 2:
                raise ValueError("too long", x.shape[0])
            return x
        except ValueError as e:
            return x * e.args[1], e.args[0], len(e.args)
        finally:
            x = x + 1

    compare(fn, t(), frames=1)


def test_item_86_builtin_error_from_operation_caught() -> None:
    def fn(x: torch.Tensor) -> Any:
        d = {"a": 1}
        out = []
        for key, idx in (("b", 0), ("a", 5)):
            try:
                out.append([d[key]][idx])
            except KeyError as e:
                out.append(("key", e.args))
            except IndexError as e:
                out.append(("index", str(e)))
        return x + 1, out

    compare(fn, t(), frames=1)


class AppError(Exception):
    def __init__(self, code: int, detail: str = "none") -> None:
        super().__init__(f"code {code}", detail)
        self.code = code


class SubAppError(AppError):
    pass


def test_item_87_user_exception_with_custom_init() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise SubAppError(7, "boom")
        except AppError as e:
            return x * e.code, e.args, type(e).__name__, isinstance(e, SubAppError)

    compare(fn, t(), frames=1)


def test_item_87_user_exception_escapes() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        if y.shape[0] == 4:
            raise AppError(3)
        return y

    compare(fn, t())


def test_item_88_raise_in_except_sets_context() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("inner")
            except KeyError:
                raise RuntimeError("outer") from None if x.shape[0] > 10 else RuntimeError("outer")
        except RuntimeError as e:
            return x + 1, e, type(e.__context__), e.__context__.args

    compare(fn, t(), frames=1)


def test_item_89_raise_from_sets_cause() -> None:
    def fn(x: torch.Tensor) -> Any:
        out = []
        try:
            try:
                raise ValueError("low")
            except ValueError as low:
                raise AppError(1) from low
        except AppError as e:
            out.append((e.__cause__.args, e.__suppress_context__, e.__context__ is e.__cause__))
        try:
            try:
                raise ValueError("hidden")
            except ValueError:
                raise KeyError("k") from None
        except KeyError as e:
            out.append((e.__cause__, e.__suppress_context__, type(e.__context__)))
        return x * len(out), out

    compare(fn, t(), frames=1)


def test_item_89_raise_from_non_exception_is_typeerror() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError("v") from 5  # type: ignore[misc]
        except TypeError as e:
            return x + 1, str(e)

    compare(fn, t(), frames=1)


def test_item_90_traceback_set_to_none() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise ValueError("v")
        except ValueError as e:
            e.__traceback__ = None
            e2 = e.with_traceback(None)
            return x + 1, e2 is e, e.__traceback__ is None

    compare(fn, t(), frames=1)


def _make_tb() -> Any:
    try:
        raise KeyError("for a traceback")
    except KeyError as e:
        return e.__traceback__


_TB = _make_tb()


def test_item_90_traceback_set_to_other_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        try:
            raise ValueError("v")
        except ValueError as e:
            e.__traceback__ = _TB
            same = e.__traceback__ is _TB
        return y * 2, same

    compare(fn, t(), same_frames=False)  # torch.compile 2.15: 1 graph, no break
    assert any("traceback" in r for r in breaks(fn, t()))


def test_item_91_attribute_on_builtin_exception_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        err = ValueError("v")
        err.note = "extra"  # type: ignore[attr-defined]
        return y * 2, err.note, err.args  # type: ignore[attr-defined]

    # The item: a graph break (torch.compile 2.15 traces it in one graph).
    compare(fn, t(), same_frames=False, frames=2)


def test_item_91_exception_constructor_kwargs_breaks() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        err = AppError(code=4, detail="kw")
        return y * err.code, err.args

    # The item: a graph break (torch.compile 2.15 traces it in one graph).
    compare(fn, t(), same_frames=False, frames=2)
    assert any("keyword" in r for r in breaks(fn, t()))


def test_item_92_escaping_exception_object_reconstructed() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            try:
                raise KeyError("first")
            except KeyError as k:
                raise AppError(2, "second") from k
        except AppError as e:
            caught = e
        return x + 1, caught, ValueError("made", 3)

    # torch.compile 2.15 rebuilds AppError with args ('code code 2', ...): not eager's.
    compare(fn, t(), frames=1, torch_matches_eager=False)


def test_item_93_sys_exc_info_in_except() -> None:
    def fn(x: torch.Tensor) -> Any:
        before = sys.exc_info()
        try:
            raise AppError(9)
        except AppError:
            typ, val, _tb = sys.exc_info()
            inside = (typ, val.code, val.args)
        return x * 2, before, inside, sys.exc_info()

    compare(fn, t(), frames=1)


def test_item_93_sys_exc_info_traceback_present() -> None:
    def fn(x: torch.Tensor) -> Any:
        try:
            raise AppError(9)
        except AppError:
            has_tb = sys.exc_info()[2] is not None
        return x * 2, has_tb

    compare(fn, t(), frames=1)


# ================================================================== E: builtins, misc


def test_item_94_print_tensor_and_constants(capsys: pytest.CaptureFixture[str]) -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        print("value", y, 3, "{}-{}".format("a", 2))
        return y * 2

    fn(t())
    eager_out = capsys.readouterr().out
    cnt, compiled = _compiled("ferrodyn", fn)
    assert_tree_equal(compiled(t()), fn(t()))
    capsys.readouterr()
    compiled(t())
    assert capsys.readouterr().out == eager_out
    # The item: no graph break. torch.compile 2.15 breaks on print(str, Tensor, int).
    assert cnt.frame_count == 1


def test_item_94_print_other_argument_breaks(capsys: pytest.CaptureFixture[str]) -> None:
    class Box:
        def __repr__(self) -> str:
            return "Box()"

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        print("box", Box(), sep="|")
        return y * 2

    fn(t())
    eager_out = capsys.readouterr().out
    compare(fn, t(), frames=2)
    out = capsys.readouterr().out
    assert out.startswith(eager_out * 2)


_log95 = logging.getLogger("ferrodyn_checklist_95")


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.msgs: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.msgs.append(record.getMessage())


def test_item_95_logger_call_breaks() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        _log95.warning("seen %d", 3)
        return y * 2

    handler = _ListHandler()
    _log95.addHandler(handler)
    _log95.propagate = False
    try:
        compare(fn, t(), frames=2)
    finally:
        _log95.removeHandler(handler)
        _log95.propagate = True
    assert handler.msgs == ["seen 3"] * 5  # eager + 2 ferrodyn + 2 torch.compile calls


def test_item_96_str_format_constants_and_tensor() -> None:
    def fn(x: torch.Tensor) -> Any:
        label = "{}:{:>4}|{k}".format("n", 12, k=1.5)
        y = x * 2
        return y, label, f"t={y}", f"{3.25!r}"

    compare(fn, t(), same_frames=False)
    cnt, _ = compare(fn, t(), same_frames=False)
    assert cnt.frame_count == 1


def test_item_97_torch_version_folds() -> None:
    def fn(x: torch.Tensor) -> Any:
        v = torch.__version__
        major = int(v.split(".")[0])
        newer = v >= "2.0" and v > (1, 13)
        return x * major if newer else x, v.startswith("2"), str(v).upper()

    compare(fn, t(), frames=1)


_pat98 = re.compile(r"(\w+)-(\d+)")


def test_item_98_regex_methods_fold() -> None:
    def fn(x: torch.Tensor) -> Any:
        m = _pat98.match("layer-12")
        n = int(m.group(2))
        found = _pat98.findall("a-1 b-2")
        sub = _pat98.sub(r"\2", "z-9")
        return x * n, m.groups(), found, sub, re.fullmatch(r"\d+", "123") is not None

    compare(fn, t(), frames=1)


def test_item_99_typing_aliases() -> None:
    alias = typing.List[int]  # noqa: UP006 - the item is about typing aliases

    def check(a: Any) -> bool:
        return a == typing.List[int]  # noqa: UP006

    def fn(x: torch.Tensor) -> Any:
        la = typing.List[int]  # noqa: UP006
        d = typing.Dict[str, int | None]  # noqa: UP006
        same = la == alias and check(la)
        return x + 1 if same else x, typing.get_origin(la) is list, d is not None

    compare(fn, t(), frames=1)


class Holder:
    def __init__(self, w: float) -> None:
        self.w = w


def test_item_100_weakref_called_in_graph() -> None:
    keep = Holder(3.0)

    def fn(x: torch.Tensor) -> Any:
        r = weakref.ref(keep)
        o = r()
        return x * o.w, o is keep

    compare(fn, t(), frames=1)


_held100 = Holder(2.0)
_ref100 = weakref.ref(_held100)


def test_item_100_preexisting_weakref_guarded_through_referent() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * _ref100().w

    counts = {}
    for name in ("ferrodyn", "torch"):
        _held100.w = 2.0
        cnt, compiled = _compiled(name, fn)
        a = compiled(t())
        _held100.w = 5.0
        b = compiled(t())
        torch._dynamo.reset()
        assert_tree_equal([a, b], [t() * 2.0, t() * 5.0])
        counts[name] = cnt.frame_count
    assert counts["ferrodyn"] == counts["torch"] == 2


_seen101: list[str] = []


def test_item_101_comptime_runs_at_compile_time() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        comptime(lambda ctx: _seen101.append("compile"))
        return y * 2

    counts = {}
    for name in ("ferrodyn", "torch"):
        _seen101.clear()
        cnt, compiled = _compiled(name, fn)
        assert_tree_equal([compiled(t()), compiled(t())], [(t() + 1) * 2] * 2)
        torch._dynamo.reset()
        counts[name] = (cnt.frame_count, cnt.op_count, len(_seen101))
    assert counts["ferrodyn"] == counts["torch"] == (1, 2, 1)


class ScaleFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, k: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.k = k
        return x * k + x.sin()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> Any:
        (x,) = ctx.saved_tensors
        return g * (ctx.k + x.cos()), None


def _grads(fn: Callable[..., Any], x: torch.Tensor) -> tuple[Any, Any]:
    x = x.detach().clone().requires_grad_(x.requires_grad)
    out = fn(x)
    if x.requires_grad:
        out.sum().backward()
    return out.detach(), (x.grad if x.requires_grad else None)


def _compare_grads(fn: Callable[..., Any], x: torch.Tensor, frames: int | None = 1) -> None:
    expected = _grads(fn, x)
    counts = {}
    for name in ("ferrodyn", "torch"):
        cnt, compiled = _compiled(name, fn)
        for _ in range(2):
            assert_tree_equal(_grads(compiled, x), expected, name)
        torch._dynamo.reset()
        counts[name] = cnt.frame_count
    assert counts["ferrodyn"] == counts["torch"], counts
    if frames is not None:
        assert counts["ferrodyn"] == frames


def test_item_102_autograd_function_with_grad() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return ScaleFn.apply(x * 2, 3.0) + 1

    _compare_grads(fn, torch.randn(4, requires_grad=True))


def test_item_102_autograd_function_without_grad_inlined() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return ScaleFn.apply(x * 2, 3.0) + 1

    cnt, _ = compare(fn, torch.randn(4), frames=1)
    assert cnt.op_count >= 4


class JvpFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return g * 2

    @staticmethod
    def jvp(ctx: Any, t_: torch.Tensor) -> torch.Tensor:
        return t_ * 2


def test_item_102_custom_jvp_graph_count() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return JvpFn.apply(x + 1) * 3

    _compare_grads(fn, torch.randn(4, requires_grad=True), frames=None)


class CtxFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        ctx.save_for_backward(x)
        ctx.save_for_backward(x, y)  # a repeat call overwrites
        idx = torch.argmax(x)
        ctx.mark_non_differentiable(idx)
        ctx.flags = ctx.needs_input_grad
        return x * y, idx

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _gi: Any) -> Any:
        x, y = ctx.saved_tensors
        return g * y, (g * x if ctx.needs_input_grad[1] else None)


def test_item_103_ctx_methods_in_traced_forward() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        out, idx = CtxFn.apply(x, x.detach() + 2)
        return out * 2 + idx

    _compare_grads(fn, torch.randn(4, requires_grad=True))


class MaterializeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.set_materialize_grads(False)
        return x.clone() * 2

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        return g * 2


def test_item_103_other_ctx_method_graph_count() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return MaterializeFn.apply(x + 1) * 3

    _compare_grads(fn, torch.randn(4, requires_grad=True), frames=None)


def test_item_104_queue_callback_outside_compiled_autograd() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = x + 1
        try:
            torch.autograd.Variable._execution_engine.queue_callback(lambda: None)
        except RuntimeError as e:
            return y * 2, str(e)
        return y

    # The item: a graph break. torch.compile 2.15 runs the whole frame eagerly (0 graphs);
    # ferrodyn keeps the graph before the break.
    compare(fn, t(), same_frames=False, frames=1)
    assert any("queue_callback" in r for r in breaks(fn, t()))


def test_item_105_triton_kernel_launch() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device and triton")
    import triton
    import triton.language as tl

    @triton.jit
    def add_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):  # type: ignore[no-untyped-def]
        pid = tl.program_id(0)
        offs = pid * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        tl.store(
            out_ptr + offs,
            tl.load(a_ptr + offs, mask=mask) + tl.load(b_ptr + offs, mask=mask),
            mask=mask,
        )

    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(a)
        n = a.numel()
        add_kernel[(triton.cdiv(n, 16),)](a, b, out, n, BLOCK=16)
        return out * 2

    a, b = torch.randn(40, device="cuda"), torch.randn(40, device="cuda")
    compare(fn, a, b, frames=1)
