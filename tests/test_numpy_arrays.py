"""NumPy arrays in the graph (checklist items 114-118): with `trace_numpy` on (torch's default),
ndarray arguments are graph inputs, NumPy functions with a `torch._numpy` twin, ndarray
methods, attributes and operators are graph nodes with NumPy's semantics, and what leaves the
graph is an ndarray (a NumPy scalar where NumPy gives one). Results equal eager's; a different
array on the next call is a new input, not a baked-in constant."""

from __future__ import annotations

from typing import Any

import ferrodyn
import numpy as np
import pytest
import torch


def same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return (
            type(b) is np.ndarray
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.allclose(a, b, rtol=1e-6, atol=1e-6))
        )
    if isinstance(a, np.generic):
        return type(a) is type(b) and bool(np.isclose(a, b, rtol=1e-6))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and bool(torch.allclose(a, b))
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and bool(a == b)


def check(fn: Any, *calls: tuple[Any, ...], graphs: int = 1, breaks: int = 0) -> None:
    counter = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=counter)
    for args in calls:
        expected = fn(*args)
        got = compiled(*args)
        assert same(got, expected), (got, expected)
    explained = ferrodyn.explain(fn)(*calls[0])
    assert counter.frame_count == graphs, explained.break_reasons
    assert explained.graph_break_count == breaks, explained.break_reasons


def arr(i: int = 0, dtype: Any = np.float32) -> np.ndarray:
    return np.arange(4, dtype=dtype) + i


def test_functions_and_operators_on_array_arguments() -> None:
    check(lambda a: np.sin(a) * 2 + np.sum(a) - np.maximum(a, 1.5), (arr(0),), (arr(5),))


def test_integer_arrays_keep_numpy_s_dtypes() -> None:
    check(lambda a: (a // 2, a * 3, a + 1, a.sum(), -a), (arr(0, np.int64),), (arr(3, np.int64),))


def test_attributes_and_methods() -> None:
    def f(a: np.ndarray) -> Any:
        return (a.shape, a.dtype, a.ndim, a.size, a.T + 1, a.mean(), a.reshape(2, 2))

    check(f, (np.ones((2, 2), dtype=np.float64),))
    check(lambda a: a.astype(np.float64) + a.sum(axis=0), (np.ones((2, 3), np.float32),))


def test_reductions_and_indexing_give_numpy_scalars() -> None:
    check(lambda a: (a.max(), a[0] + 1, np.sum(a), a[1:], a > 1), (arr(),))


def test_returned_argument_is_the_same_object() -> None:
    a = arr()
    assert ferrodyn.compile(lambda x: x, backend="eager")(a) is a


def test_arrays_made_in_the_graph_and_tensor_conversions() -> None:
    def f(x: torch.Tensor) -> Any:
        a = x.numpy()
        b = np.cumsum(a) * np.mean(a)
        return torch.from_numpy(b) + x, np.arange(3.0) * 2

    check(f, (torch.arange(3.0),), (torch.arange(3.0) + 1,))


def test_a_new_array_is_a_new_input() -> None:
    counter = ferrodyn.testing.CompileCounter()
    f = ferrodyn.compile(lambda a: a * 2, backend=counter)
    for i in range(3):
        assert np.array_equal(f(arr(i)), arr(i) * 2)
    assert counter.frame_count == 1
    # another dtype or shape: another graph
    assert np.array_equal(f(arr(0, np.float64)), arr(0, np.float64) * 2)
    assert counter.frame_count == 2


def test_function_without_twin_breaks_and_matches() -> None:
    def f(a: np.ndarray) -> Any:
        n = np.busday_count("2024-01-01", "2024-02-01")
        return a * 2, int(n)

    check(f, (arr(),), graphs=1, breaks=1)


def test_numpy_scalars_are_constants() -> None:
    check(lambda x, s: x * s, (torch.ones(2), np.float32(2.5)), (torch.ones(2), np.float32(2.5)))


def test_trace_numpy_off_breaks() -> None:
    def f(a: np.ndarray) -> Any:
        return np.sin(a) + 1

    with torch._dynamo.config.patch(trace_numpy=False):
        out = ferrodyn.compile(f, backend="eager")(arr())
        explained = ferrodyn.explain(f)(arr())
    assert same(out, f(arr()))
    assert explained.graph_count == 0


@pytest.mark.parametrize("method", ["tolist", "item"])
def test_methods_reading_values_break(method: str) -> None:
    def f(a: np.ndarray) -> Any:
        return getattr(a[:1], method)()

    out = ferrodyn.compile(f, backend="eager")(arr())
    assert out == f(arr())


def test_numpy_on_constants_gives_numpy_scalars_and_tensors_stay_tensors() -> None:
    # np.sqrt(64) is an np.float64 eagerly: `x / np.sqrt(64)` is a torch tensor
    def f(x: torch.Tensor) -> Any:
        return x / np.sqrt(64), np.pi * x, x * np.float32(2), np.float32(2)

    check(f, (torch.ones(3),))


def test_torch_tensor_beside_an_array_keeps_eager_s_result_type() -> None:
    def f(x: torch.Tensor, a: np.ndarray) -> Any:
        return x + a, x * a

    out = ferrodyn.compile(f, backend="eager")(torch.ones(4), arr())
    expected = f(torch.ones(4), arr())
    assert all(type(o) is type(e) for o, e in zip(out, expected, strict=True))
    assert same(out, expected)


def test_impure_numpy_functions_are_not_run_while_tracing() -> None:
    calls = []

    def f(x: torch.Tensor) -> Any:
        old = np.seterr(all="ignore")
        np.seterr(**old)
        calls.append(1)
        return x + 1

    out = ferrodyn.compile(f, backend="eager")(torch.ones(2))
    assert torch.equal(out, torch.ones(2) + 1) and calls == [1]


def test_numpy_of_a_tensor_that_requires_grad_raises_like_eager() -> None:
    def f(x: torch.Tensor) -> Any:
        return np.sum(x.numpy())

    x = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        f(x)
    with pytest.raises(RuntimeError):
        ferrodyn.compile(f, backend="eager")(x)
    g = ferrodyn.compile(lambda t: np.sum(t.numpy(force=True)), backend="eager")
    assert g(x) == np.sum(x.detach().numpy())
