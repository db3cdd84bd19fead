"""Compile-time profiler: where `ferrodyn.compile` spends its time, frame by frame.

    from ferrodyn.profile import Profiler, profile

    with Profiler(progress=True) as prof:      # every ferrodyn compilation inside is recorded
        model(x)
    print(prof.result.summary(top=10))
    prof.result.export_chrome_trace("trace.json")   # chrome://tracing, ui.perfetto.dev

    res = profile(model, x, backend="eager")   # compile afresh (unless already compiled), call
    print(res)

Per compilation of a frame (function / module `forward` / resume function after a graph
break) it records: trace time (of which fake-tensor propagation + FX recording), graph
finalization, backend compile time and backend name, guard-tree build time, graphs and ops,
guard count, graph breaks (reason, `file:line`), recompile reasons and skips. Totals per
phase; `run` is the rest of the wall time. The command line is `python -m ferrodyn profile`.

The events come from `ferrodyn.observe`: besides "break", "graph", "recompile", "guards" and
"skip", the runtime sends "trace" (fn, seconds, file, line, ok) after each trace, "backend"
(fn, seconds, backend, ok) after each backend call, and a `seconds` entry in "graph" (graph
finalization) and "guards" (guard-tree build) events.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Self, TextIO

from .. import observe
from .collector import (
    BreakInfo,
    Collector,
    FrameProfile,
    RecompileInfo,
    _acquire_graph_timing,
    _release_graph_timing,
)
from .report import PHASES, FrameTotals, ProfileResult

__all__ = [
    "PHASES",
    "BreakInfo",
    "FrameProfile",
    "FrameTotals",
    "ProfileResult",
    "Profiler",
    "RecompileInfo",
    "profile",
]


class Profiler:
    """Records every ferrodyn compilation while active (a context manager, or start/stop).

    `progress=True` prints one line per compiled frame to stderr (or `stream`) as it
    finishes, with the elapsed time: useful on large models. `result` is the
    `ProfileResult` (available after `stop()`; a snapshot while running).
    Profilers may nest; each sees every event while it is active."""

    def __init__(self, *, progress: bool = False, stream: TextIO | None = None) -> None:
        self.progress = progress
        self.stream = stream
        self._collector: Collector | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._result: ProfileResult | None = None
        self._end = 0.0

    def start(self) -> Self:
        if self._collector is not None:
            raise RuntimeError("ferrodyn.profile.Profiler: already started")
        out = (self.stream or sys.stderr) if self.progress else None
        self._collector = Collector(progress=out)
        self._result = None
        _acquire_graph_timing()
        self._unsubscribe = observe.subscribe(self._collector)
        return self

    def stop(self) -> ProfileResult:
        if self._collector is None:
            raise RuntimeError("ferrodyn.profile.Profiler: not started")
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
            _release_graph_timing()
        self._end = time.perf_counter()
        self._collector.finish()
        self._result = self._snapshot(self._end)
        self._collector = None
        return self._result

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _snapshot(self, end: float) -> ProfileResult:
        c = self._collector
        assert c is not None
        return ProfileResult(
            frames=list(c.frames),
            breaks=list(c.breaks),
            recompiles=list(c.recompiles),
            skips=list(c.skips),
            start=c.t0,
            end=end,
        )

    @property
    def result(self) -> ProfileResult:
        if self._result is not None:
            return self._result
        if self._collector is None:
            raise RuntimeError("ferrodyn.profile.Profiler: never started")
        return self._snapshot(time.perf_counter())


def _is_compiled(fn: Any) -> bool:
    from .. import _core
    from ..api import OptimizedModule

    target = getattr(fn, "__func__", fn)  # a bound compiled method
    return isinstance(target, (_core.CompiledCode, OptimizedModule))


def profile(
    fn: Callable[..., Any],
    /,
    *args: Any,
    backend: Any = "inductor",
    progress: bool = False,
    **kwargs: Any,
) -> ProfileResult:
    """Profile one call `fn(*args, **kwargs)`. `fn` is compiled with `backend` first unless it
    already is a ferrodyn-compiled function or module (then it is called as is, and only
    compilations that call triggers are seen). Returns a `ProfileResult` with the call's
    result in `.result`; `print()` it for the summary."""
    if not callable(fn):
        raise TypeError(f"ferrodyn.profile: expected a callable, got {type(fn).__qualname__}")
    from ..api import compile

    compiled = fn if _is_compiled(fn) else compile(fn, backend=backend)
    prof = Profiler(progress=progress)
    with prof:
        out = compiled(*args, **kwargs)
    res = prof.result
    res.result = out
    return res
