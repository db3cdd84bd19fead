"""`ProfileResult`: what a profiling session saw, with totals and a text summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .collector import BreakInfo, FrameProfile, RecompileInfo, _short

T = TypeVar("T")

PHASES: tuple[str, ...] = ("trace", "setup", "fake_fx", "graph", "backend", "guards", "run")
"""Phase names of `ProfileResult.totals()`. `setup` (graph builder / FakeTensorMode creation)
and `fake_fx` (fake-tensor propagation + FX recording) are parts of `trace`; `run` is the wall
time not spent compiling (running compiled code, eager code, the script itself)."""


@dataclass
class FrameTotals:
    """All compilations of one frame (same function and `file:line`) added up."""

    fn: str
    location: str
    compiles: int
    compile_s: float
    trace_s: float
    backend_s: float
    graphs: int
    ops: int
    guards: int
    breaks: int
    backends: list[str]


@dataclass
class ProfileResult:
    frames: list[FrameProfile]
    """One record per compilation, in order."""
    breaks: list[BreakInfo]
    recompiles: list[RecompileInfo]
    skips: list[tuple[str, str]]
    """(fn, reason) for each frame that was skipped (runs eagerly)."""
    start: float
    end: float
    result: Any = field(default=None, repr=False)
    """What the profiled call returned (`profile(fn, ...)` only)."""

    @property
    def wall_s(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def compile_s(self) -> float:
        return sum(f.compile_s for f in self.frames)

    @property
    def graph_count(self) -> int:
        return sum(f.graphs for f in self.frames)

    @property
    def op_count(self) -> int:
        return sum(f.ops for f in self.frames)

    def totals(self) -> dict[str, float]:
        """Seconds per phase (see `PHASES`)."""
        t = {
            "trace": sum(f.trace_s for f in self.frames),
            "setup": sum(f.setup_s for f in self.frames),
            "fake_fx": sum(f.fake_fx_s for f in self.frames),
            "graph": sum(f.graph_s for f in self.frames),
            "backend": sum(f.backend_s for f in self.frames),
            "guards": sum(f.guards_s for f in self.frames),
        }
        t["run"] = max(self.wall_s - self.compile_s, 0.0)
        return t

    def by_frame(self) -> list[FrameTotals]:
        """Frames (function, `file:line`, backend) aggregated over their recompilations, most
        compile time first."""
        groups: dict[tuple[str, str, int, str], list[FrameProfile]] = {}
        for f in self.frames:
            groups.setdefault((f.fn, f.file, f.line, f.backend), []).append(f)
        out = [
            FrameTotals(
                fn=fn,
                location=f"{_short(file)}:{line}",
                compiles=len(fs),
                compile_s=sum(f.compile_s for f in fs),
                trace_s=sum(f.trace_s for f in fs),
                backend_s=sum(f.backend_s for f in fs),
                graphs=sum(f.graphs for f in fs),
                ops=sum(f.ops for f in fs),
                guards=sum(f.guard_count for f in fs),
                breaks=sum(len(f.breaks) for f in fs),
                backends=sorted({f.backend for f in fs if f.backend}),
            )
            for (fn, file, line, _), fs in groups.items()
        ]
        out.sort(key=lambda t: t.compile_s, reverse=True)
        return out

    def summary(self, top: int = 10) -> str:
        """A short text report: totals per phase, top frames, graph breaks, recompiles."""
        t = self.totals()
        eager = sum(1 for f in self.frames if f.eager)
        head = (
            f"ferrodyn profile: {len(self.frames)} frame compilation(s), "
            f"{_s(self.compile_s)} compiling of {_s(self.wall_s)} wall"
        )
        phases = (
            f"  phases: trace {_s(t['trace'])} (of which setup {_s(t['setup'])}, "
            f"fake tensors + FX {_s(t['fake_fx'])}), graph {_s(t['graph'])}, "
            f"backend {_s(t['backend'])}, guards {_s(t['guards'])}, run/other {_s(t['run'])}"
        )
        counts = (
            f"  graphs {self.graph_count}, ops {self.op_count}, "
            f"graph breaks {len(self.breaks)}, recompiles {len(self.recompiles)}, "
            f"frames running eagerly {eager}"
        )
        lines = [head, phases, counts]
        frames = self.by_frame()
        if frames:
            shown = frames[: max(top, 0)]
            lines.append("")
            lines.append(f"Top {len(shown)} of {len(frames)} frames by compile time:")
            lines.append(
                f"  {'compile':>9} {'trace':>9} {'backend':>9} {'n':>3} {'graphs':>6} "
                f"{'ops':>6} {'guards':>6}  frame"
            )
            for f in shown:
                backend = f" [{', '.join(f.backends)}]" if f.backends else ""
                lines.append(
                    f"  {_s(f.compile_s):>9} {_s(f.trace_s):>9} {_s(f.backend_s):>9} "
                    f"{f.compiles:>3} {f.graphs:>6} {f.ops:>6} {f.guards:>6}  "
                    f"{f.fn} ({f.location}){backend}"
                )
        top = max(top, 0)
        if self.breaks:
            # The same break (a layer repeated N times, a recompile) is listed once, counted.
            groups = _count(self.breaks, lambda b: (b.reason, b.file, b.line, b.function))
            lines.append("")
            lines.append(f"Graph breaks ({len(self.breaks)}, {len(groups)} distinct):")
            for b, n in groups[:top]:
                lines.append(f"  {_times(n)}{b.location()}: {b.reason}")
                if b.source:
                    lines.append(f"      {b.source}")
            if len(groups) > top:
                lines.append(f"  ... {len(groups) - top} more")
        if self.recompiles:
            recompiles = _count(self.recompiles, lambda r: (r.fn, r.file, r.line, *r.reasons))
            lines.append("")
            lines.append(f"Recompiles ({len(self.recompiles)}):")
            for r, n in recompiles[:top]:
                reasons = "; ".join(r.reasons) or "?"
                lines.append(f"  {_times(n)}{r.fn} ({r.location()}): {reasons}")
            if len(recompiles) > top:
                lines.append(f"  ... {len(recompiles) - top} more")
        if self.skips:
            skips = _count(self.skips, lambda s: s)
            lines.append("")
            lines.append(f"Skipped frames ({len(self.skips)}):")
            for (fn, reason), n in skips[:top]:
                lines.append(f"  {_times(n)}{fn}: {reason}")
            if len(skips) > top:
                lines.append(f"  ... {len(skips) - top} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def chrome_trace(self) -> dict[str, Any]:
        """The session as a Chrome/Perfetto trace (Trace Event Format, JSON object form)."""
        from .chrome_trace import build

        return build(self)

    def export_chrome_trace(self, path: str) -> None:
        """Write `chrome_trace()` to `path` (open it in chrome://tracing or ui.perfetto.dev)."""
        from .chrome_trace import write

        write(self, path)


def _count(items: Iterable[T], key: Callable[[T], Hashable]) -> list[tuple[T, int]]:
    """Distinct items (the first of each key) with their counts, most frequent first."""
    firsts: dict[Hashable, T] = {}
    counts: Counter[Hashable] = Counter()
    for item in items:
        k = key(item)
        firsts.setdefault(k, item)
        counts[k] += 1
    return [(firsts[k], n) for k, n in counts.most_common()]


def _times(n: int) -> str:
    return f"{n}x " if n > 1 else ""


def _s(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"
