"""Guards: what must (and must not) trigger a recompile; recompile limit; reset()."""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal


def counted(
    fn: Callable[..., Any], **kw: Any
) -> tuple[Callable[..., Any], ferrodyn.testing.CompileCounter]:
    cnt = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=cnt, **kw), cnt


def check(compiled: Callable[..., Any], fn: Callable[..., Any], *args: Any) -> None:
    assert_tree_equal(compiled(*args), fn(*args))


def add_mul(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) * 2


# --------------------------------------------------------------------------- no recompile


def test_new_values_same_metadata_does_not_recompile() -> None:
    compiled, cnt = counted(add_mul)
    for _ in range(4):
        check(compiled, add_mul, torch.randn(3, 2))
    assert cnt.frame_count == 1


def test_non_contiguous_values_still_correct() -> None:
    compiled, _ = counted(add_mul)
    check(compiled, add_mul, torch.randn(3, 2))
    check(compiled, add_mul, torch.randn(2, 3).t())
    check(compiled, add_mul, torch.randn(3, 4)[:, ::2])


# --------------------------------------------------------------------------- tensor metadata


@pytest.mark.parametrize("dynamic", [None, False])
def test_shape_change_recompiles(dynamic: bool | None) -> None:
    compiled, cnt = counted(add_mul, dynamic=dynamic)
    check(compiled, add_mul, torch.randn(3, 2))
    assert cnt.frame_count == 1
    check(compiled, add_mul, torch.randn(4, 2))
    assert cnt.frame_count == 2
    check(compiled, add_mul, torch.randn(5, 7))
    check(compiled, add_mul, torch.randn(3))


def test_static_shapes_cache_each_shape() -> None:
    compiled, cnt = counted(add_mul, dynamic=False)
    for n in (3, 4, 5):
        check(compiled, add_mul, torch.randn(n))
    assert cnt.frame_count == 3
    for n in (3, 4, 5):
        check(compiled, add_mul, torch.randn(n))
    assert cnt.frame_count == 3


def test_dynamic_true_results_across_shapes() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        return x.reshape(-1).cumsum(0) * x.shape[0], x.shape[0] * 2

    compiled, _ = counted(fn, dynamic=True)
    for n in (2, 3, 5, 8):
        check(compiled, fn, torch.randn(n, 3))


def test_dtype_change_recompiles() -> None:
    compiled, cnt = counted(add_mul)
    check(compiled, add_mul, torch.randn(3))
    check(compiled, add_mul, torch.randn(3, dtype=torch.float64))
    assert cnt.frame_count == 2
    check(compiled, add_mul, torch.arange(3))
    assert cnt.frame_count == 3


def test_requires_grad_change_recompiles() -> None:
    compiled, cnt = counted(add_mul)
    x = torch.randn(3)
    check(compiled, add_mul, x)
    out = compiled(x.clone().requires_grad_())
    assert cnt.frame_count == 2
    assert out.requires_grad
    out.sum().backward()


def test_device_kind_change_recompiles() -> None:
    compiled, cnt = counted(add_mul)
    check(compiled, add_mul, torch.randn(3))
    out = compiled(torch.empty(3, device="meta"))
    assert cnt.frame_count == 2
    assert out.device.type == "meta" and out.shape == (3,) and out.dtype == torch.float32


# --------------------------------------------------------------------------- python arguments


@pytest.mark.parametrize(
    "first,second",
    [(2, 3), (1.5, 2.5), (True, False), ("add", "sub")],
    ids=["int", "float", "bool", "str"],
)
def test_python_scalar_argument_change_recompiles(first: Any, second: Any) -> None:
    def fn(x: torch.Tensor, v: Any) -> torch.Tensor:
        if isinstance(v, str):
            return x + 1 if v == "add" else x - 1
        if isinstance(v, bool):
            return x * 2 if v else x * 3
        return x * v

    compiled, cnt = counted(fn)
    x = torch.randn(3)
    check(compiled, fn, x, first)
    check(compiled, fn, x, first)
    assert cnt.frame_count == 1
    check(compiled, fn, x, second)
    assert cnt.frame_count == 2
    check(compiled, fn, x, first)


def test_container_arguments_results() -> None:
    def fn(xs: list[torch.Tensor], opts: dict[str, Any]) -> torch.Tensor:
        out = sum(xs)
        for k, v in opts.items():
            out = out * v if k.startswith("m") else out + v
        return out

    compiled, _ = counted(fn)
    a, b, c = torch.randn(3), torch.randn(3), torch.randn(3)
    check(compiled, fn, [a, b], {"mul": 2})
    check(compiled, fn, [a, b, c], {"mul": 2})
    check(compiled, fn, [a, b], {"add": 2, "mul": 3})
    check(compiled, fn, [a, b], {"mul": 3, "add": 2})
    check(compiled, fn, [a], {})


# --------------------------------------------------------------------------- globals

K = 2
UNUSED = 10


def uses_global_k(x: torch.Tensor) -> torch.Tensor:
    return x * K


def test_rebinding_used_global_recompiles() -> None:
    global K
    compiled, cnt = counted(uses_global_k)
    x = torch.randn(3)
    try:
        torch.testing.assert_close(compiled(x), x * 2)
        K = 3
        torch.testing.assert_close(compiled(x), x * 3)
        assert cnt.frame_count == 2
    finally:
        K = 2


def test_changing_unused_global_does_not_recompile() -> None:
    global UNUSED
    compiled, cnt = counted(uses_global_k)
    x = torch.randn(3)
    try:
        compiled(x)
        UNUSED = 11
        torch.testing.assert_close(compiled(x), x * K)
        assert cnt.frame_count == 1
    finally:
        UNUSED = 10


def helper(x: torch.Tensor) -> torch.Tensor:
    return x + 1


def calls_helper(x: torch.Tensor) -> torch.Tensor:
    return helper(x) * 2


def test_redefining_called_global_function_recompiles() -> None:
    global helper
    original = helper
    compiled, cnt = counted(calls_helper)
    x = torch.randn(3)
    try:
        torch.testing.assert_close(compiled(x), (x + 1) * 2)
        compiled(x)
        assert cnt.frame_count == 1

        def helper(x: torch.Tensor) -> torch.Tensor:
            return x - 5

        torch.testing.assert_close(compiled(x), (x - 5) * 2)
        assert cnt.frame_count == 2
    finally:
        helper = original


# --------------------------------------------------------------------------- limit and reset


def test_recompile_limit_warns_once_and_stays_correct() -> None:
    ferrodyn.config.recompile_limit = 3

    def fn(x: torch.Tensor, n: int) -> torch.Tensor:
        return x * n + n

    compiled, cnt = counted(fn, dynamic=False)
    x = torch.randn(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(7):
            torch.testing.assert_close(compiled(x, n), fn(x, n))
    assert cnt.frame_count == 3
    limit_warnings = [
        w for w in caught if issubclass(w.category, ferrodyn.exc.RecompileLimitWarning)
    ]
    assert len(limit_warnings) == 1
    for n in (0, 1, 2):  # entries compiled before the limit are still used
        torch.testing.assert_close(compiled(x, n), fn(x, n))
    torch.testing.assert_close(compiled(x, 50), fn(x, 50))
    assert cnt.frame_count == 3


def test_default_recompile_limit_applies() -> None:
    assert ferrodyn.config.recompile_limit == 8

    def fn(x: torch.Tensor, s: str) -> torch.Tensor:
        return x + len(s)

    compiled, cnt = counted(fn)
    x = torch.randn(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(10):
            s = "s" * (i + 1)
            torch.testing.assert_close(compiled(x, s), fn(x, s))
    assert cnt.frame_count == 8
    assert any(issubclass(w.category, ferrodyn.exc.RecompileLimitWarning) for w in caught)


def test_reset_clears_caches() -> None:
    compiled, cnt = counted(add_mul)
    x = torch.randn(3)
    compiled(x)
    compiled(x)
    assert cnt.frame_count == 1
    ferrodyn.reset()
    check(compiled, add_mul, x)
    assert cnt.frame_count == 2
    compiled(x)
    assert cnt.frame_count == 2


def test_reset_restores_recompile_budget() -> None:
    ferrodyn.config.recompile_limit = 1

    def fn(x: torch.Tensor, n: int) -> torch.Tensor:
        return x + n

    compiled, cnt = counted(fn, dynamic=False)
    x = torch.randn(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled(x, 1)
        compiled(x, 2)
        assert cnt.frame_count == 1
        ferrodyn.reset()
        torch.testing.assert_close(compiled(x, 2), x + 2)
        assert cnt.frame_count == 2


def test_two_compiled_functions_have_separate_caches() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    def g(x: torch.Tensor) -> torch.Tensor:
        return x - 1

    cf, cnt_f = counted(f)
    cg, cnt_g = counted(g)
    x = torch.randn(2)
    check(cf, f, x)
    check(cg, g, x)
    check(cf, f, x)
    assert (cnt_f.frame_count, cnt_g.frame_count) == (1, 1)


def test_namedtuple_argument_is_guarded_by_item_without_recompiling() -> None:
    pair = collections.namedtuple("pair", "a b")

    def fn(p: Any) -> torch.Tensor:
        return p.a * 2 + p.b

    compiled, cnt = counted(fn)
    for _ in range(3):
        p = pair(torch.randn(3), torch.randn(3))
        torch.testing.assert_close(compiled(p), fn(p))
    assert cnt.frame_count == 1
    p = pair(torch.randn(4), torch.randn(4))
    torch.testing.assert_close(compiled(p), fn(p))
    assert cnt.frame_count == 2


def test_grad_mode_is_guarded() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        return x * 2, torch.is_grad_enabled()

    compiled, cnt = counted(fn)
    x = torch.randn(3, requires_grad=True)
    assert compiled(x)[1] is True
    with torch.no_grad():
        out, enabled = compiled(x)
    assert enabled is False
    assert not out.requires_grad
    assert cnt.frame_count == 2
    assert compiled(x)[1] is True
    assert cnt.frame_count == 2  # both entries stay cached
