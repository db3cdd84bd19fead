"""No stale graphs: a compiled function follows changes to what it runs and reads.

Replacing ``f.__code__``, ``__defaults__`` / ``__kwdefaults__`` (reassigned or mutated in
place), module attributes, closure cells, globals and builtins between calls must never
reuse a graph traced for the old ones. Each test builds a fresh function with ``make()``,
calls it eagerly and compiled after each change and compares the results, then compares the
number of graphs ferrodyn compiled with ``torch.compile``'s on the same sequence (where
``torch.compile`` itself is wrong the test compares with eager only and is marked
``ferrodyn_contract``).
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable, Iterator
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal

Fn = Callable[..., Any]
# make() -> (the function to compile, set(step) which changes what it runs or reads)
Make = Callable[[], tuple[Fn, Callable[[Any], None]]]

X = torch.tensor([-1.0, 2.0, 0.5])


@pytest.fixture(autouse=True)
def _reset_dynamo() -> Iterator[None]:
    yield
    torch._dynamo.reset()


def _run(make: Make, steps: list[Any], compile_fn: Callable[[Fn], Fn], who: str) -> None:
    fn, set_step = make()
    compiled = compile_fn(fn)
    for i, step in enumerate(steps):
        set_step(step)
        expected = fn(X.clone())
        got = compiled(X.clone())
        assert_tree_equal(got, expected, f"{who}, call {i} (step {step!r})")


def check_steps(
    make: Make,
    steps: list[Any],
    *,
    frames: int | None = None,
    torch_reference: bool = True,
) -> ferrodyn.testing.CompileCounter:
    """After each ``set(step)`` the compiled function returns what the eager one returns;
    ferrodyn compiles as many graphs as torch.compile (and ``frames`` when given)."""
    cnt = ferrodyn.testing.CompileCounter()
    _run(make, steps, lambda fn: ferrodyn.compile(fn, backend=cnt), "ferrodyn")
    if frames is not None:
        assert cnt.frame_count == frames, (
            f"ferrodyn compiled {cnt.frame_count} graphs, not {frames}"
        )
    if torch_reference:
        torch._dynamo.reset()
        ref = torch._dynamo.testing.CompileCounter()
        try:
            _run(
                make, steps, lambda fn: torch.compile(fn, backend=ref), "torch.compile (reference)"
            )
        finally:
            torch._dynamo.reset()
        assert cnt.frame_count == ref.frame_count, (
            f"ferrodyn compiled {cnt.frame_count} graphs, torch.compile {ref.frame_count}, "
            f"for steps {steps}"
        )
    return cnt


def module_with(source: str, name: str = "fd_identity_mod", **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    exec(source, mod.__dict__)  # noqa: S102 - a module of our own source
    return mod


# --------------------------------------------------------------------------- __code__


def test_code_replaced_between_calls() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        def f(x: torch.Tensor) -> torch.Tensor:
            return x + 1

        def g(x: torch.Tensor) -> torch.Tensor:
            return x * 10

        codes = {"f": f.__code__, "g": g.__code__}

        def set_code(step: str) -> None:
            f.__code__ = codes[step]

        return f, set_code

    check_steps(make, ["f", "g", "f", "g"], frames=2)


def test_code_replaced_together_with_defaults() -> None:
    def make() -> tuple[Fn, Callable[[tuple[str, int]], None]]:
        def f(x: torch.Tensor, a: int = 2) -> torch.Tensor:
            return x + a

        def g(x: torch.Tensor, a: int = 2) -> torch.Tensor:
            return x * a

        codes = {"f": f.__code__, "g": g.__code__}

        def set_step(step: tuple[str, int]) -> None:
            f.__code__ = codes[step[0]]
            f.__defaults__ = (step[1],)

        return f, set_step

    check_steps(make, [("f", 2), ("g", 2), ("g", 5), ("f", 5), ("f", 2)], frames=4)


def test_code_of_inlined_closure_callee_replaced() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        def helper(x: torch.Tensor) -> torch.Tensor:
            return x + 1

        def other(x: torch.Tensor) -> torch.Tensor:
            return x * 10

        codes = {"helper": helper.__code__, "other": other.__code__}

        def f(x: torch.Tensor) -> torch.Tensor:
            return helper(x) * 2

        def set_code(step: str) -> None:
            helper.__code__ = codes[step]

        return f, set_code

    check_steps(make, ["helper", "other", "helper", "other"], frames=2)


def test_code_of_inlined_global_callee_replaced() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        mod = module_with(
            "def helper(x):\n    return x + 1\n\ndef h(x):\n    return helper(x) * 2\n"
        )

        def other(x: torch.Tensor) -> torch.Tensor:
            return x - 7

        codes = {"helper": mod.helper.__code__, "other": other.__code__}

        def set_code(step: str) -> None:
            mod.helper.__code__ = codes[step]

        return mod.h, set_code

    check_steps(make, ["helper", "other", "helper"], frames=2)


@pytest.mark.ferrodyn_contract  # torch.compile keeps running the old forward
def test_code_of_inlined_module_forward_replaced() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        class Net(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + 1

        def other(self: Any, x: torch.Tensor) -> torch.Tensor:
            return x * 3

        codes = {"forward": Net.forward.__code__, "other": other.__code__}
        net = Net()

        def f(x: torch.Tensor) -> torch.Tensor:
            return net(x) - 1

        def set_code(step: str) -> None:
            Net.forward.__code__ = codes[step]

        return f, set_code

    check_steps(make, ["forward", "other", "forward"], torch_reference=False)


# --------------------------------------------------------------------------- defaults


def test_defaults_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def f(x: torch.Tensor, a: int = 1) -> torch.Tensor:
            return x * a

        def set_default(step: int) -> None:
            f.__defaults__ = (step,)

        return f, set_default

    check_steps(make, [1, 3, 1, 3], frames=2)


def test_kwdefaults_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def f(x: torch.Tensor, *, b: int = 2) -> torch.Tensor:
            return x + b

        def set_kwdefault(step: int) -> None:
            f.__kwdefaults__ = {"b": step}

        return f, set_kwdefault

    check_steps(make, [2, 7, 2, 7], frames=2)


def test_defaults_and_kwdefaults_changed_together() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def f(x: torch.Tensor, a: int = 1, *, b: int = 2) -> torch.Tensor:
            return x * a + b

        def set_step(step: int) -> None:
            f.__defaults__ = (step,)
            f.__kwdefaults__ = {"b": step * 100}

        return f, set_step

    check_steps(make, [1, 3, 1], frames=2)


def test_kwdefaults_mutated_in_place() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def f(x: torch.Tensor, *, b: int = 2) -> torch.Tensor:
            return x + b

        def set_kwdefault(step: int) -> None:
            assert f.__kwdefaults__ is not None
            f.__kwdefaults__["b"] = step

        return f, set_kwdefault

    check_steps(make, [2, 5, 2], frames=2)


def test_mutable_default_mutated_in_place() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def f(x: torch.Tensor, scale: list[int] = [2]) -> torch.Tensor:  # noqa: B006
            return x * scale[0]

        def set_scale(step: int) -> None:
            assert f.__defaults__ is not None
            f.__defaults__[0][0] = step

        return f, set_scale

    check_steps(make, [2, 5, 2], frames=2)


def test_tensor_default_replaced() -> None:
    def make() -> tuple[Fn, Callable[[float], None]]:
        def f(x: torch.Tensor, w: torch.Tensor = torch.ones(3)) -> torch.Tensor:  # noqa: B008
            return x * w

        def set_default(step: float) -> None:
            f.__defaults__ = (torch.full((3,), step),)

        return f, set_default

    check_steps(make, [1.0, 3.0, 1.0])


def test_defaults_of_inlined_callee_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        def helper(x: torch.Tensor, k: int = 1, *, j: int = 0) -> torch.Tensor:
            return x + k + j

        def f(x: torch.Tensor) -> torch.Tensor:
            return helper(x) * 2

        def set_step(step: int) -> None:
            helper.__defaults__ = (step,)
            helper.__kwdefaults__ = {"j": 10 * step}

        return f, set_step

    check_steps(make, [1, 5, 1], frames=2)


# --------------------------------------------------------------------------- attributes, cells


def test_module_attribute_changed() -> None:
    def make() -> tuple[Fn, Callable[[float], None]]:
        cfg = types.ModuleType("fd_cfg")
        cfg.scale = 2.0  # type: ignore[attr-defined]

        def f(x: torch.Tensor) -> torch.Tensor:
            return x * cfg.scale  # type: ignore[attr-defined]

        def set_scale(step: float) -> None:
            cfg.scale = step  # type: ignore[attr-defined]

        return f, set_scale

    check_steps(make, [2.0, 3.0, 2.0], frames=2)


def test_class_attribute_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        class Cfg:
            scale = 2

        def f(x: torch.Tensor) -> torch.Tensor:
            return x * Cfg.scale

        def set_scale(step: int) -> None:
            Cfg.scale = step

        return f, set_scale

    check_steps(make, [2, 5, 2], frames=2)


def test_closure_cell_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        k = 1

        def f(x: torch.Tensor) -> torch.Tensor:
            return x + k

        def set_k(step: int) -> None:
            nonlocal k
            k = step

        return f, set_k

    check_steps(make, [1, 5, 1, 5], frames=2)


def test_closure_cell_list_mutated_in_place() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        cfg = [1]

        def f(x: torch.Tensor) -> torch.Tensor:
            return x + cfg[0]

        def set_k(step: int) -> None:
            cfg[0] = step

        return f, set_k

    check_steps(make, [1, 5, 1], frames=2)


def test_closure_cell_tensor_rebound() -> None:
    def make() -> tuple[Fn, Callable[[float], None]]:
        w = torch.ones(3)

        def f(x: torch.Tensor) -> torch.Tensor:
            return x + w

        def set_w(step: float) -> None:
            nonlocal w
            w = torch.full((3,), step)

        return f, set_w

    check_steps(make, [1.0, 5.0, 1.0])


def test_closure_cell_function_rebound() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        acts = {"relu": torch.relu, "sigmoid": torch.sigmoid}
        act = torch.relu

        def f(x: torch.Tensor) -> torch.Tensor:
            return act(x) + 1

        def set_act(step: str) -> None:
            nonlocal act
            act = acts[step]

        return f, set_act

    check_steps(make, ["relu", "sigmoid", "relu", "sigmoid"], frames=2)


def test_closure_cell_of_inlined_callee_changed() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        k = 1

        def helper(x: torch.Tensor) -> torch.Tensor:
            return x + k

        def f(x: torch.Tensor) -> torch.Tensor:
            return helper(x) * 2

        def set_k(step: int) -> None:
            nonlocal k
            k = step

        return f, set_k

    check_steps(make, [1, 5, 1], frames=2)


# --------------------------------------------------------------------------- globals, builtins


def test_global_reassigned() -> None:
    def make() -> tuple[Fn, Callable[[int], None]]:
        mod = module_with("def h(x):\n    return x + K\n", K=1)

        def set_k(step: int) -> None:
            mod.K = step  # type: ignore[attr-defined]

        return mod.h, set_k

    check_steps(make, [1, 4, 1, 4], frames=2)


def test_global_function_reassigned() -> None:
    def make() -> tuple[Fn, Callable[[str], None]]:
        mod = module_with("def act(x):\n    return x.relu()\n\ndef h(x):\n    return act(x) + 1\n")
        acts = {"relu": mod.act, "sigmoid": torch.sigmoid}

        def set_act(step: str) -> None:
            mod.act = acts[step]  # type: ignore[attr-defined]

        return mod.h, set_act

    check_steps(make, ["relu", "sigmoid", "relu"], frames=2)


def test_global_closure_with_same_code_reassigned() -> None:
    """Two closures of one code object, told apart by their cells."""

    def make() -> tuple[Fn, Callable[[int], None]]:
        def adder(k: int) -> Fn:
            def add(x: torch.Tensor) -> torch.Tensor:
                return x + k

            return add

        adders = {1: adder(1), 5: adder(5)}
        mod = module_with("def h(x):\n    return add(x) * 2\n", add=adders[1])

        def set_add(step: int) -> None:
            mod.add = adders[step]  # type: ignore[attr-defined]

        return mod.h, set_add

    check_steps(make, [1, 5, 1, 5], frames=2)


def _shadowing_abs() -> tuple[Fn, Callable[[str], None]]:
    mod = module_with("def h(x):\n    return abs(x)\n", name="fd_shadow_mod")
    times_ten = lambda x: x * 10  # one object, so the shadowed graph can be reused

    def set_step(step: str) -> None:
        if step == "shadowed":
            mod.abs = times_ten  # type: ignore[attr-defined]
        elif "abs" in mod.__dict__:
            del mod.abs  # type: ignore[attr-defined]

    return mod.h, set_step


@pytest.mark.ferrodyn_contract  # torch.compile keeps calling the builtin abs
def test_global_added_after_compile_shadows_builtin() -> None:
    fn, set_step = _shadowing_abs()
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    x = torch.tensor([-1.0])
    assert_tree_equal(compiled(x), torch.tensor([1.0]))
    set_step("shadowed")
    assert_tree_equal(fn(x), torch.tensor([-10.0]))
    assert_tree_equal(compiled(x), torch.tensor([-10.0]))
    set_step("builtin")  # del mod.abs: abs is the builtin again
    assert_tree_equal(compiled(x), torch.tensor([1.0]))
    assert cnt.frame_count == 2


@pytest.mark.ferrodyn_contract  # torch.compile keeps calling the builtin abs
def test_global_shadowing_builtin_added_and_removed_repeatedly() -> None:
    check_steps(
        _shadowing_abs,
        ["builtin", "shadowed", "builtin", "shadowed", "builtin"],
        frames=2,
        torch_reference=False,
    )


def test_builtin_replaced_in_builtins_module() -> None:
    original = builtins.divmod

    def make() -> tuple[Fn, Callable[[str], None]]:
        mod = module_with("def h(x):\n    return x + divmod(7, 2)[0]\n", name="fd_divmod_mod")

        def patched(a: Any, b: Any) -> tuple[Any, Any]:  # only h's call differs
            return (100, 0) if (a, b) == (7, 2) else original(a, b)

        def set_step(step: str) -> None:
            builtins.divmod = original if step == "builtin" else patched

        return mod.h, set_step

    try:
        check_steps(make, ["builtin", "patched", "builtin", "patched"], frames=2)
    finally:
        builtins.divmod = original
