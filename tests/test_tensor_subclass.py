"""Tensor subclasses (checklist item 50): instances are tensors of the graph, torch calls on
them run through their `__torch_function__` as eagerly (the override's effects, the `func`
it receives, its side effects), results keep their class, and subclass dispatch switched
off (`torch._C.DisableTorchFunctionSubclass`) is honoured in the trace and at the call."""

from __future__ import annotations

from typing import Any, ClassVar

import ferrodyn
import pytest
import torch


class Tagged(torch.Tensor):
    """Multiplies the result of `Tensor.add` by 10."""

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.Tensor.add:
            out = out * 10
        return out

    def double(self) -> Any:
        return self * 2

    @property
    def half(self) -> Any:
        return self / 2


class Logged(torch.Tensor):
    """Records the name of every function its override receives; results are plain."""

    calls: ClassVar[list[str]] = []

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        cls.calls.append(getattr(func, "__name__", str(func)))
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **(kwargs or {}))


class Plain(torch.Tensor):
    """torch's default __torch_function__: results are Plain instances."""


class NoDispatch(torch.Tensor):
    __torch_function__ = torch._C._disabled_torch_function_impl


def sub(cls: type, n: int = 4) -> torch.Tensor:
    return torch.arange(float(n)).as_subclass(cls)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return type(a) is type(b) and torch.equal(
            a.as_subclass(torch.Tensor), b.as_subclass(torch.Tensor)
        )
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


def run(fn: Any, *args: Any, graphs: int = 1, breaks: int = 0, calls: int = 1) -> Any:
    """fn(*args) eagerly and compiled `calls` times: equal results (types included) and equal
    `Logged.calls`; the graph and break counts given."""
    expected = []
    for _ in range(calls):
        Logged.calls.clear()
        expected.append((fn(*args), list(Logged.calls)))
    counter = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=counter)
    for i in range(calls):
        Logged.calls.clear()
        got = compiled(*args)
        assert same(got, expected[i][0]), (i, got, expected[i][0])
        assert Logged.calls == expected[i][1], (i, Logged.calls, expected[i][1])
    explained = ferrodyn.explain(fn)(*args)
    assert counter.frame_count == graphs, explained.break_reasons
    assert explained.graph_break_count == breaks, explained.break_reasons
    return counter


def test_override_changes_result_and_class_is_kept() -> None:
    run(lambda x: (x.add(1), torch.mul(x.add(1), 2), x.sub(1)), sub(Tagged), calls=2)


def test_operators_pass_the_functions_eager_passes() -> None:
    def f(x: torch.Tensor) -> Any:
        return x + 1, 1 - x, x * x, 2 * x, -x, x[1:], x > 1, 1 < x, len(x), abs(x), x / 2

    run(f, sub(Tagged))
    run(f, sub(Logged))


def test_attributes_methods_and_properties() -> None:
    run(lambda x: (x.shape, x.dtype, x.size(0), x.sum(), x.double(), x.half), sub(Tagged))
    run(lambda x: (x.shape, x.ndim, x.cos().sum()), sub(Logged))


def test_override_side_effects_happen_once_per_call_in_eager_order() -> None:
    # The guards and fake tensors read the input without running its override.
    run(lambda x: (x + 1, torch.sin(x), x.shape, x.cos().sum()), sub(Logged), calls=3)


def test_default_and_disabled_torch_function() -> None:
    run(lambda x: (x + 1, torch.sin(x), x.shape, x.double() if False else x), sub(Plain))
    run(lambda x: (x + 1, torch.sin(x), x.shape), sub(NoDispatch))


def test_tensor_lists_and_mixed_arguments() -> None:
    run(lambda x, y: torch.cat([x, y]), sub(Logged), torch.ones(2))
    run(lambda x, y: (x + y, y + x, torch.max(x, 0), x.unbind(0)), sub(Tagged), torch.ones(4))


def test_returned_input_is_the_same_object() -> None:
    x = sub(Tagged)
    out = ferrodyn.compile(lambda t: (t, t.add(1)), backend="eager")(x)
    assert out[0] is x
    assert type(out[1]) is Tagged


def test_as_subclass_in_the_trace() -> None:
    run(lambda x: (x.as_subclass(Tagged).add(1), x.as_subclass(Plain) + 1), torch.ones(2))


def test_disable_block_in_the_compiled_function() -> None:
    def f(x: torch.Tensor) -> Any:
        with torch._C.DisableTorchFunctionSubclass():
            y = x.add(1)
        return y, x.add(1)

    run(f, sub(Tagged))


def test_graph_break_inside_disable_block_matches_eager() -> None:
    def f(x: torch.Tensor) -> Any:
        y = x.add(1)
        with torch._C.DisableTorchFunctionSubclass():
            z = x.add(2)
            torch._dynamo.graph_break()
            w = x.add(3)
        return y, z, w, x.add(4)

    x = sub(Tagged)
    expected = f(x)
    got = ferrodyn.compile(f, backend="eager")(x)
    assert same(got, expected)


def test_graph_break_between_overridden_calls() -> None:
    def f(x: torch.Tensor) -> Any:
        y = x.add(1)
        torch._dynamo.graph_break()
        return y.add(1)

    run(f, sub(Tagged), graphs=2, breaks=1, calls=2)


def test_called_with_dispatch_disabled_recompiles() -> None:
    counter = ferrodyn.testing.CompileCounter()
    f = ferrodyn.compile(lambda x: x.add(1), backend=counter)
    x = sub(Tagged)
    on = f(x)
    with torch._C.DisableTorchFunctionSubclass():
        off = f(x)
    assert torch.equal(on.as_subclass(torch.Tensor), torch.arange(4.0).add(1) * 10)
    assert type(off) is torch.Tensor
    assert torch.equal(off, torch.arange(4.0).add(1))
    assert counter.frame_count == 2


def test_subclass_type_is_guarded() -> None:
    counter = ferrodyn.testing.CompileCounter()
    f = ferrodyn.compile(lambda x: x.add(1), backend=counter)
    assert type(f(sub(Tagged))) is Tagged
    plain = f(torch.arange(4.0))
    assert type(plain) is torch.Tensor
    assert torch.equal(plain, torch.arange(4.0).add(1))
    assert counter.frame_count == 2


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_backward_through_the_override(backend: str) -> None:
    def f(x: torch.Tensor) -> Any:
        return (x.add(1) * x).sum()

    base = torch.arange(3.0, requires_grad=True)
    x = base.as_subclass(Tagged)
    f(x).backward()
    expected = base.grad.clone()
    base.grad = None
    ferrodyn.compile(f, backend=backend)(base.as_subclass(Tagged)).backward()
    assert torch.equal(base.grad, expected)


class Base84(torch.Tensor):
    K = 3


class Sub84(Base84):
    seen: ClassVar[list[Any]] = []

    def to(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        Sub84.seen.append(self.as_subclass(torch.Tensor))
        k = super().K  # a class attribute through super(): a graph break
        return super().to(*args, **kwargs) * k

    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return super().__torch_function__(func, types, args, kwargs or {})


def test_subclass_method_calling_super_across_a_graph_break() -> None:
    # The graph gets plain aliases of subclass inputs: its `to` node must not run the
    # subclass's own `to` again at run time.
    def f(x: torch.Tensor) -> Any:
        return x.to(torch.float64) + 1

    x = torch.arange(3.0).as_subclass(Sub84)
    Sub84.seen.clear()
    expected = f(x)
    seen_eager = [(type(s), s.tolist()) for s in Sub84.seen]
    Sub84.seen.clear()
    got = ferrodyn.compile(f, backend="eager")(x)
    assert same(got, expected)
    assert [(type(s), s.tolist()) for s in Sub84.seen] == seen_eager


def test_as_subclass_does_not_ask_torch_function() -> None:
    def f(x: torch.Tensor) -> Any:
        y = x.as_subclass(torch.Tensor)
        return y, y + 1, y is x

    run(f, sub(Logged))
    run(f, sub(Tagged))


def test_attributes_stored_on_an_argument_instance() -> None:
    def f(x: torch.Tensor) -> Any:
        return x.add(x.scale), x.tag

    counter = ferrodyn.testing.CompileCounter()
    g = ferrodyn.compile(f, backend=counter)
    for scale, tag in ((2, "a"), (2, "a"), (3, "b")):
        x = sub(Tagged)
        x.scale, x.tag = scale, tag
        assert same(g(x), f(x))
    assert counter.frame_count == 2  # the values are guarded
    # an attribute shadowing a method of the class is the instance's
    y = sub(Tagged)
    y.scale, y.tag = 1, "c"
    y.double = lambda: "own"  # type: ignore[method-assign]
    h = ferrodyn.compile(lambda t: t.double(), backend="eager")
    z = sub(Tagged)
    assert same(h(z), z.double())
    assert h(y) == "own"
