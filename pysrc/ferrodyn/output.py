"""From a finished trace to a callable: FX GraphModule -> backend -> compiled function.

Called by the Rust runtime once per successful trace."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from . import observe
from .exc import BackendCompilerFailed, _describe_exception
from .graph import GraphBuilder, TensorVar
from .testing import count_ops


def backend_name(compiler: Any) -> str:
    """A readable name for a backend callable ("inductor", "eager", a class name, ...)."""
    name = getattr(compiler, "backend", None)  # CompileCounterWithBackend
    if isinstance(name, str):
        return name
    name = getattr(compiler, "__name__", None) or type(compiler).__name__
    return {"_eager": "eager", "compile_inductor": "inductor"}.get(name, name)


def compile_graph(
    gb: GraphBuilder, outputs: list[TensorVar], compiler: Callable[..., Any], name: str
) -> tuple[Callable[..., Any], int, Any]:
    """The graph's compiled callable, its op count and its shape guard (None when every
    input is static; made after the backend ran, which may specialise sizes too)."""
    compiled, ops = _compile_graph(gb, outputs, compiler, name)
    if gb.random_calls:
        compiled = _draw_random_inputs(compiled, [(c[1], c[2], c[3]) for c in gb.random_calls])
    if gb.subclass_inputs:
        compiled = _plain_subclass_inputs(compiled, tuple(gb.subclass_inputs))
    return compiled, ops, gb.shape_guard()


def _draw_random_inputs(
    compiled: Callable[..., Any], calls: list[tuple[Any, tuple, dict]]
) -> Callable[..., Any]:
    """The graph's last inputs are values drawn from `random` (`GraphBuilder.random_value`):
    drawn on each call, in the order the traced code drew them, before the graph runs."""

    def run(*args: Any) -> Any:
        return compiled(*args, *[fn(*a, **k) for fn, a, k in calls])

    return run


def _plain_subclass_inputs(
    compiled: Callable[..., Any], positions: tuple[int, ...]
) -> Callable[..., Any]:
    """The graph already holds what the tensor-subclass inputs' methods and
    `__torch_function__` overrides did: it gets plain aliases of them (made with subclass
    dispatch off, so no override runs), as it was traced with."""
    disable = torch._C.DisableTorchFunctionSubclass
    as_subclass = torch._C.TensorBase.as_subclass
    plain = torch.Tensor

    def run(*args: Any) -> Any:
        values = list(args)
        with disable():
            for i in positions:
                values[i] = as_subclass(values[i], plain)
        return compiled(*values)

    return run


def _compile_graph(
    gb: GraphBuilder, outputs: list[TensorVar], compiler: Callable[..., Any], name: str
) -> tuple[Callable[..., Any], int]:
    watched = observe.active()
    start = time.perf_counter() if watched else 0.0
    gm = gb.finish(outputs)
    if watched:
        observe.record(
            "graph",
            {"fn": name, "gm": gm, "ops": count_ops(gm), "seconds": time.perf_counter() - start},
        )
    ops = count_ops(gm)
    if ops == 0:
        # Nothing to compute: return the inputs/outputs wiring without calling the backend
        # (as torch.compile does for graphs without ops).
        return gm.forward, 0
    if not watched:
        compiled = _call_backend(compiler, gm, list(gb.example_inputs), name, ops)
    else:
        start = time.perf_counter()
        ok = False
        try:
            compiled = _call_backend(compiler, gm, list(gb.example_inputs), name, ops)
            ok = True
        finally:
            observe.record(
                "backend",
                {
                    "fn": name,
                    "seconds": time.perf_counter() - start,
                    "backend": backend_name(compiler),
                    "ok": ok,
                },
            )
    return compiled, ops


def _call_backend(
    compiler: Callable[..., Any], gm: Any, example_inputs: list[Any], name: str, ops: int
) -> Callable[..., Any]:
    """`compiler(gm, example_inputs)`; whatever it raises, or a non-callable result, becomes
    exc.BackendCompilerFailed (raised from the original)."""
    where = f"(while compiling graph of {name} with {ops} op{'s' if ops != 1 else ''})"
    try:
        with tracing_context(gm):
            compiled = compiler(gm, example_inputs)
    except Exception as e:
        raise BackendCompilerFailed(
            backend_name(compiler), e, f"raised:\n{_describe_exception(e)}\n{where}"
        ) from e
    if not callable(compiled):
        got = f"{_short_repr(compiled)} ({type(compiled).__name__})"
        inner = TypeError(f"the backend returned {got}, expected a callable")
        raise BackendCompilerFailed(
            backend_name(compiler), inner, f"returned {got}, expected a callable\n{where}"
        ) from inner
    return compiled


@contextlib.contextmanager
def tracing_context(gm: Any) -> Iterator[None]:
    """The graph's fake mode (with its shape environment) as torch's tracing context while
    the backend compiles, so inductor and AOTAutograd see the symbolic sizes of the inputs
    (and their guards land in the same shape environment)."""
    fake_mode = gm.meta.get("ferrodyn_fake_mode")
    if fake_mode is None or fake_mode.shape_env is None:
        yield
        return
    from torch._guards import TracingContext, tracing

    with tracing(TracingContext(fake_mode)):
        yield


def _short_repr(obj: object, limit: int = 80) -> str:
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - only for an error message
        return f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
