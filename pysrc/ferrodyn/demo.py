"""`python -m ferrodyn demo`: compile the bundled TinyTransformer and compare it with eager."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from . import api
from .models import TinyTransformer
from .testing import CompileCounterWithBackend

GRAPH_LINES = 40


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _median_call_s(fn: Callable[[], Any], iters: int) -> float:
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _fmt_s(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} µs"


def _graph_text(gm: torch.fx.GraphModule, limit: int = GRAPH_LINES) -> str:
    try:
        text = gm.print_readable(print_output=False)
    except Exception:  # noqa: BLE001  (print_readable can fail on odd graphs; IR text works)
        text = str(gm.graph)
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        more = len(lines) - limit
        lines = [*lines[:limit], f"    ... ({more} more lines; full graph: gm.print_readable())"]
    return "\n".join(lines)


def run(
    backend: str = "inductor",
    layers: int = 2,
    batch: int = 4,
    iters: int = 50,
    seed: int = 0,
    show_graph: bool = True,
) -> int:
    """Run the demo and print its report. Returns a process exit code (0 = results match)."""
    torch.manual_seed(seed)
    model = TinyTransformer(layers=layers).eval()
    x = model.example_input(batch=batch)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"ferrodyn demo: TinyTransformer(layers={layers}, {n_params:,} parameters), "
        f"input {tuple(x.shape)}, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )

    with torch.no_grad():
        expected = model(x)
        # Eager timing first: once compiled kernels have run, their OpenMP threads may still
        # spin and slow the eager calls down on small machines.
        for _ in range(3):
            model(x)
        eager_s = _median_call_s(lambda: model(x), iters)

        counter = CompileCounterWithBackend(backend)
        compiled = api.compile(model, backend=counter)
        try:
            actual, first_s = _timed(lambda: compiled(x))
        except Exception as e:
            if backend == "eager":
                raise
            print(f"backend {backend!r} failed: {type(e).__name__}: {e}")
            print("falling back to backend 'eager'")
            backend = "eager"
            api.reset()
            counter = CompileCounterWithBackend(backend)
            compiled = api.compile(model, backend=counter)
            actual, first_s = _timed(lambda: compiled(x))

        diff = (actual - expected).abs().max().item()
        ok = torch.allclose(actual, expected, rtol=1e-4, atol=1e-4)
        print(f"backend:            {backend}")
        print(f"max |eager - compiled|: {diff:.3g}  {'OK' if ok else 'MISMATCH'}")
        print(f"first call (trace + compile): {_fmt_s(first_s)}")

        for _ in range(3):
            compiled(x)
        compiled_s = _median_call_s(lambda: compiled(x), iters)
        print(
            f"steady state, median of {iters} calls: eager {_fmt_s(eager_s)}, "
            f"compiled {_fmt_s(compiled_s)} ({eager_s / compiled_s:.2f}x)"
        )

    print(f"graphs compiled: {counter.frame_count}, ops in graphs: {counter.op_count}")
    if counter.frame_count == 0:
        print("(no graph was compiled: the model ran eagerly; see FERRODYN_LOGS=graph_breaks)")
    elif counter.frame_count > 1:
        print(
            "(more than one graph: graph breaks or recompiles; see "
            "FERRODYN_LOGS=graph_breaks,recompiles)"
        )
    if show_graph and counter.graphs:
        print("\n--- FX graph 0 ---")
        print(_graph_text(counter.graphs[0]))
        if len(counter.graphs) > 1:
            print(f"    ({len(counter.graphs) - 1} more graph(s) not shown)")
    return 0 if ok else 1
