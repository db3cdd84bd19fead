"""The observe listener behind `Profiler`: turns compile-time events into per-frame records.

Events of one compiled frame arrive in this order (see `ferrodyn.observe`):
`recompile`? -> `trace` -> `break`? -> (`graph` -> `backend`?)? -> `guards`,
or, when the trace stopped without a graph, `trace` (ok=False) -> `break`/`skip`?.
A frame record is opened by `trace` and closed by `guards`, by the `break`/`skip` of a
failed trace, by the next `trace`, or when profiling stops.

Timing events carry `seconds`, measured where the work happens (Rust for `trace` and
guard-tree builds, `output.compile_graph` for graph finalization and the backend); the
collector places each span so that it ends when its event arrives.
Fake-tensor propagation + FX node recording is measured by wrapping
`GraphBuilder._record`/`add_input` while a profiler is active (no cost otherwise), and the
graph builder's creation (its FakeTensorMode) by wrapping `GraphBuilder.__init__`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .. import logs


@dataclass
class BreakInfo:
    """A graph break (or a trace that stopped): why, and where in the user's code."""

    fn: str
    reason: str
    file: str
    line: int
    function: str
    source: str = ""

    def location(self) -> str:
        return f"{_short(self.file)}:{self.line}" + (
            f" in {self.function}" if self.function else ""
        )


@dataclass
class RecompileInfo:
    """A cache miss of a function that already had compiled entries: why they missed."""

    fn: str
    file: str
    line: int
    reasons: list[str]

    def location(self) -> str:
        return f"{_short(self.file)}:{self.line}"


@dataclass
class FrameProfile:
    """One compilation of one frame (a function, a module's forward, a resume function)."""

    fn: str
    file: str
    line: int
    start: float
    """`time.perf_counter()` when the trace started."""
    index: int = 0
    trace_s: float = 0.0
    fake_fx_s: float = 0.0
    """Part of `trace_s` spent in fake-tensor propagation and FX node recording."""
    setup_s: float = 0.0
    """Part of `trace_s` spent creating the graph builder (its FakeTensorMode; the first one
    also imports torch._dynamo, about a second once per process)."""
    graph_s: float = 0.0
    """Graph finalization: dead-code elimination and building the GraphModule."""
    backend_s: float = 0.0
    guards_s: float = 0.0
    backend: str = ""
    backend_ok: bool = True
    traced_ok: bool = True
    graphs: int = 0
    ops: int = 0
    guard_count: int = 0
    breaks: list[BreakInfo] = field(default_factory=list)
    skip_reason: str = ""
    recompile_reasons: list[str] = field(default_factory=list)
    end: float = 0.0
    spans: list[tuple[str, float, float]] = field(default_factory=list)
    """(phase, start, seconds) in event order: "trace", "graph", "backend", "guards"."""

    @property
    def compile_s(self) -> float:
        return self.trace_s + self.graph_s + self.backend_s + self.guards_s

    @property
    def location(self) -> str:
        return f"{_short(self.file)}:{self.line}"

    @property
    def eager(self) -> bool:
        """The frame runs eagerly (trace stopped without a graph, or the backend failed)."""
        return not self.traced_ok or not self.backend_ok


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _short(path: str) -> str:
    """A path relative to the working directory when it is below it; installed packages'
    files from their package directory on."""
    marker = f"site-packages{os.sep}"
    if marker in path:
        return path.split(marker, 1)[1]
    if path.startswith(_PACKAGE_DIR):
        return "ferrodyn" + path[len(_PACKAGE_DIR) :]
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


# --------------------------------------------------------------------------------------------
# Fake-tensor / FX timing: GraphBuilder methods wrapped while any profiler is active.

_patch_lock = threading.Lock()
_patch_users = 0
_originals: dict[str, Callable[..., Any]] = {}
# GraphBuilder method -> bucket of `_totals` its time goes to.
_PATCHED: dict[str, str] = {"_record": "fake_fx", "add_input": "fake_fx", "__init__": "setup"}
_totals: dict[str, float] = {"fake_fx": 0.0, "setup": 0.0}


def _timed(orig: Callable[..., Any], bucket: str) -> Callable[..., Any]:
    @functools.wraps(orig)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return orig(*args, **kwargs)
        finally:
            _totals[bucket] += time.perf_counter() - t0

    return wrapper


def _acquire_graph_timing() -> None:
    global _patch_users
    from ..graph import GraphBuilder

    with _patch_lock:
        if _patch_users == 0:
            for name, bucket in _PATCHED.items():
                orig = GraphBuilder.__dict__[name]
                _originals[name] = orig
                setattr(GraphBuilder, name, _timed(orig, bucket))
        _patch_users += 1


def _release_graph_timing() -> None:
    global _patch_users
    from ..graph import GraphBuilder

    with _patch_lock:
        _patch_users -= 1
        if _patch_users == 0:
            for name, orig in _originals.items():
                setattr(GraphBuilder, name, orig)
            _originals.clear()


def graph_timing_totals() -> tuple[float, float]:
    """(fake tensors + FX, graph-builder setup) seconds measured while profiling, ever."""
    return _totals["fake_fx"], _totals["setup"]


# --------------------------------------------------------------------------------------------


class Collector:
    """An `observe` listener that builds `FrameProfile`s and prints progress lines."""

    def __init__(self, progress: TextIO | None = None) -> None:
        self.frames: list[FrameProfile] = []
        self.breaks: list[BreakInfo] = []
        self.recompiles: list[RecompileInfo] = []
        self.skips: list[tuple[str, str]] = []
        self.t0 = time.perf_counter()
        self.progress = progress
        self._current: FrameProfile | None = None
        self._pending_recompile: dict[str, list[str]] = {}
        self._marks = graph_timing_totals()
        self._lock = threading.RLock()

    # -- events ----------------------------------------------------------------------------
    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        with self._lock:
            handler = getattr(self, f"_on_{kind}", None)
            if handler is not None:
                handler(payload, time.perf_counter())

    def _on_recompile(self, p: dict[str, Any], now: float) -> None:
        fn = str(p.get("fn", ""))
        # One reason per cache entry that missed: the same guard often fails in several.
        reasons = list(dict.fromkeys(str(r) for r in p.get("reasons") or ()))
        self._pending_recompile[fn] = reasons  # (a miss past the recompile limit traces nothing)
        self.recompiles.append(
            RecompileInfo(fn, str(p.get("file", "")), int(p.get("line", 0)), reasons)
        )

    def _on_trace(self, p: dict[str, Any], now: float) -> None:
        self._close(now)
        fn = str(p.get("fn", ""))
        seconds = float(p.get("seconds", 0.0))
        marks = graph_timing_totals()
        fake_fx, setup = (max(m - old, 0.0) for m, old in zip(marks, self._marks, strict=True))
        self._marks = marks
        frame = FrameProfile(
            fn=fn,
            file=str(p.get("file", "")),
            line=int(p.get("line", 0)),
            start=now - seconds,
            index=len(self.frames) + 1,
            trace_s=seconds,
            fake_fx_s=min(fake_fx, seconds),
            setup_s=min(setup, seconds),
            traced_ok=bool(p.get("ok", True)),
            recompile_reasons=self._pending_recompile.pop(fn, []),
        )
        frame.spans.append(("trace", frame.start, seconds))
        self._current = frame

    def _frame_for(self, fn: str, now: float) -> FrameProfile:
        """The open frame, or a placeholder one for events without a `trace` before them."""
        cur = self._current
        if cur is None or cur.fn != fn:
            self._close(now)
            cur = FrameProfile(fn=fn, file="", line=0, start=now, index=len(self.frames) + 1)
            self._current = cur
        return cur

    def _on_break(self, p: dict[str, Any], now: float) -> None:
        fn = str(p.get("fn", ""))
        file = str(p.get("file", ""))
        line = int(p.get("line", 0))
        info = BreakInfo(
            fn=fn,
            reason=str(p.get("reason", "")),
            file=file,
            line=line,
            function=str(p.get("function", "")),
            source=logs.source_line(file, line),
        )
        self.breaks.append(info)
        frame = self._frame_for(fn, now)
        frame.breaks.append(info)
        if not frame.traced_ok:
            self._close(now)

    def _on_skip(self, p: dict[str, Any], now: float) -> None:
        fn = str(p.get("fn", ""))
        reason = str(p.get("reason", ""))
        self.skips.append((fn, reason))
        frame = self._frame_for(fn, now)
        frame.skip_reason = reason
        self._close(now)

    def _on_graph(self, p: dict[str, Any], now: float) -> None:
        frame = self._frame_for(str(p.get("fn", "")), now)
        ops = int(p.get("ops", 0))
        if ops > 0:
            frame.graphs += 1
            frame.ops += ops
        seconds = float(p.get("seconds", 0.0))
        frame.graph_s += seconds
        frame.spans.append(("graph", now - seconds, seconds))

    def _on_backend(self, p: dict[str, Any], now: float) -> None:
        frame = self._frame_for(str(p.get("fn", "")), now)
        seconds = float(p.get("seconds", 0.0))
        frame.backend_s += seconds
        frame.backend = str(p.get("backend", ""))
        frame.backend_ok = bool(p.get("ok", True))
        frame.spans.append(("backend", now - seconds, seconds))

    def _on_guards(self, p: dict[str, Any], now: float) -> None:
        frame = self._frame_for(str(p.get("fn", "")), now)
        frame.guard_count += len(p.get("guards") or ())
        seconds = float(p.get("seconds", 0.0))
        frame.guards_s += seconds
        frame.spans.append(("guards", now - seconds, seconds))
        self._close(now)

    # -- frames ----------------------------------------------------------------------------
    def _close(self, now: float) -> None:
        frame = self._current
        if frame is None:
            return
        self._current = None
        frame.end = max(now, frame.start + frame.compile_s)
        self.frames.append(frame)
        if self.progress is not None:
            self._print_progress(frame, now)

    def finish(self) -> None:
        with self._lock:
            self._close(time.perf_counter())

    def _print_progress(self, f: FrameProfile, now: float) -> None:
        parts = [
            f"trace {f.trace_s:.3f}s" + (f" (setup {f.setup_s:.3f}s)" if f.setup_s >= 0.1 else "")
        ]
        if f.graphs:
            parts.append(f"{f.graphs} graph{'s' * (f.graphs != 1)}/{f.ops} ops")
        if f.backend:
            parts.append(f"{f.backend} {f.backend_s:.3f}s" + ("" if f.backend_ok else " FAILED"))
        if f.guard_count:
            parts.append(f"{f.guard_count} guards")
        if f.recompile_reasons:
            parts.append("recompile")
        if f.skip_reason:
            parts.append(f"skipped: {f.skip_reason}")
        elif f.breaks and not f.traced_ok:
            parts.append(f"runs eagerly: {f.breaks[-1].reason}")
        elif f.breaks:
            parts.append(f"graph break at {f.breaks[-1].location()}")
        elif not f.traced_ok:
            parts.append("runs eagerly")
        line = (
            f"[ferrodyn profile {now - self.t0:8.2f}s] #{f.index} {f.fn} ({f.location}): "
            + ", ".join(parts)
        )
        try:
            print(line, file=self.progress, flush=True)
        except (OSError, ValueError):  # a closed stream must not break the user's program
            self.progress = None


def default_progress_stream() -> TextIO:
    return sys.stderr
