"""`torch.vmap` / `torch.func.vmap` inside a compiled function: one graph node (a vmapped
graph module of the function's ops), like torch.compile's functorch higher-order op, with
eager's values, gradients and errors; a function with side effects breaks and runs eagerly.
functorch's own C bindings (`torch._C._functorch`) always break: they change process-wide
state a graph node cannot carry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal

torch.manual_seed(0)
W = torch.randn(3, 3)
X = torch.randn(4, 3)
V = torch.randn(3)


def _torch_graphs(fn: Callable[..., Any], *args: Any) -> int:
    import torch._dynamo
    import torch._dynamo.testing

    torch._dynamo.reset()
    cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=cnt)(*args)
    torch._dynamo.reset()
    return cnt.frame_count


def closure_tensor(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a: a @ W + 1)(t)


def in_dims_tuple(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a, b: a * b, in_dims=(0, None))(t, u)


def in_dims_one(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a: a.sum(), in_dims=1)(t)


def out_dims_one(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a: a * 2, out_dims=1)(t)


def tuple_output(t: torch.Tensor) -> Any:
    return torch.vmap(lambda a: (a.sum(), a * 2))(t)


def pytree_input(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda p: p[0] * p[1], in_dims=((0, 0),))((t, t + 1))


def dict_input(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda d: d["a"] - d["b"])({"a": t, "b": t * 3})


def nested(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(torch.vmap(lambda a: a * 3))(t)


def keyword_argument(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a, scale=2.0: a * scale)(t, scale=3.0)


def func_vmap_of_builtin(t: torch.Tensor) -> torch.Tensor:
    return torch.func.vmap(torch.dot)(t, t)


def softmax_rows(t: torch.Tensor) -> torch.Tensor:
    return torch.vmap(lambda a: a.softmax(-1) * a.sum())(t)


CASES = [
    (closure_tensor, (X,)),
    (in_dims_tuple, (X, V)),
    (in_dims_one, (X,)),
    (out_dims_one, (X,)),
    (tuple_output, (X,)),
    (pytree_input, (X,)),
    (dict_input, (X,)),
    (nested, (X,)),
    (keyword_argument, (X,)),
    (func_vmap_of_builtin, (X,)),
    (softmax_rows, (X,)),
]


@pytest.mark.parametrize("fn,args", CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_vmap_is_one_graph_with_eager_values(fn: Any, args: tuple, backend: str) -> None:
    expected = fn(*args)
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    for _ in range(2):
        assert_tree_equal(compiled(*args), expected, atol=1e-5, rtol=1e-5)
    explained = ferrodyn.explain(fn, backend=backend)(*args)
    assert_tree_equal(explained.result, expected, atol=1e-5, rtol=1e-5)
    assert explained.graph_break_count == 0, explained.break_reasons
    assert cnt.frame_count == 1 == _torch_graphs(fn, *args)


def test_vmap_with_inductor() -> None:
    expected = softmax_rows(X)
    assert_tree_equal(ferrodyn.compile(softmax_rows)(X), expected, atol=1e-5, rtol=1e-5)


def test_vmap_gradients_equal_eager() -> None:
    def loss(t: torch.Tensor) -> torch.Tensor:
        return torch.vmap(lambda a: (a @ W).relu().sum())(t).sum()

    x = torch.randn(4, 3, requires_grad=True)
    loss(x).backward()
    expected = x.grad.clone()
    x.grad = None
    cnt = ferrodyn.testing.CompileCounter()
    ferrodyn.compile(loss, backend="aot_eager")(x).backward()
    torch.testing.assert_close(x.grad, expected)
    ferrodyn.compile(loss, backend=cnt)(x)
    assert cnt.frame_count == 1


def test_vmap_of_a_module_lifts_its_parameters() -> None:
    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return torch.vmap(self.lin)(t)

    m = M()
    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(m, backend=cnt)(X), m(X))
    assert cnt.frame_count == 1
    with torch.no_grad():
        m.lin.weight.add_(1.0)  # the parameter is an input of the node, not a constant
    assert_tree_equal(ferrodyn.compile(m, backend=cnt)(X), m(X))


def test_vmapped_function_with_side_effects_runs_eagerly_once() -> None:
    calls: list[int] = []

    def f(a: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return a + 1

    def fn(t: torch.Tensor) -> torch.Tensor:
        return torch.vmap(f)(t) * 2

    expected = fn(X)
    assert calls == [1]
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count >= 1
    assert any("vmap" in str(r) for r in explained.break_reasons)
    calls.clear()
    assert_tree_equal(ferrodyn.compile(fn, backend="eager")(X), expected)
    assert calls == [1]  # traced without running f; the vmapped call ran once


def test_vmap_error_is_eagers() -> None:
    def fn(t: torch.Tensor) -> torch.Tensor:
        return torch.vmap(lambda a, b: a + b)(t, torch.ones(5, 3))

    with pytest.raises(ValueError) as eager:
        fn(X)
    with pytest.raises(ValueError) as compiled:
        ferrodyn.compile(fn, backend="eager")(X)
    assert str(compiled.value) == str(eager.value)


def test_vmap_recompiles_when_the_function_changes() -> None:
    def make(k: float) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda a: a * k

    state = {"f": make(2.0)}

    def fn(t: torch.Tensor) -> torch.Tensor:
        return torch.vmap(state["f"])(t)

    compiled = ferrodyn.compile(fn, backend="eager")
    assert_tree_equal(compiled(X), X * 2.0)
    state["f"] = make(5.0)
    assert_tree_equal(compiled(X), X * 5.0)


def test_functorch_bindings_break_and_keep_eager_state() -> None:
    from torch._C import _functorch

    def fn(t: torch.Tensor) -> torch.Tensor:
        level = _functorch._vmap_increment_nesting(2, "error")
        _functorch._vmap_decrement_nesting()
        return t + level

    before = _functorch.maybe_current_level()
    expected = fn(X)
    explained = ferrodyn.explain(fn)(X)
    assert explained.graph_break_count >= 1
    compiled = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        assert_tree_equal(compiled(X), expected)
        assert _functorch.maybe_current_level() == before


def _grad_of_square_sum(t: torch.Tensor) -> torch.Tensor:
    return torch.func.grad(lambda a: (a * a).sum())(t)


def _jacrev_of_sin(t: torch.Tensor) -> torch.Tensor:
    return torch.func.jacrev(lambda a: a.sin())(t[0])


def _scan_generic(t: torch.Tensor) -> torch.Tensor:
    from torch._higher_order_ops.associative_scan import associative_scan

    return associative_scan(lambda a, b: a + b, t, dim=0, combine_mode="generic")


def _cond_on_sum(t: torch.Tensor) -> torch.Tensor:
    return torch.cond(t.sum() > 0, lambda a: a.sin(), lambda a: a.cos(), (t,)) + 1


@pytest.mark.parametrize(
    "fn",
    [_grad_of_square_sum, _jacrev_of_sin, _scan_generic, _cond_on_sum],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_other_functorch_transforms_give_eagers_values(fn: Any, backend: str) -> None:
    # Not yet one graph each as with torch.compile (they break or run eagerly), but never a
    # failure or a different value.
    expected = fn(X)
    for _ in range(2):
        assert_tree_equal(ferrodyn.compile(fn, backend=backend)(X), expected)


def test_compiled_function_called_inside_a_transform_runs_eagerly_there() -> None:
    def inner(a: torch.Tensor) -> torch.Tensor:
        return (a * a).sum()

    compiled = ferrodyn.compile(inner, backend="aot_eager")
    compiled(V)  # compiled outside any transform first
    assert_tree_equal(torch.func.grad(compiled)(V), torch.func.grad(inner)(V))
    assert_tree_equal(torch.vmap(compiled)(X), torch.vmap(inner)(X))
    assert_tree_equal(compiled(V), inner(V))
