"""Chrome/Perfetto trace export (the Trace Event Format, JSON object form).

Loads in chrome://tracing and ui.perfetto.dev. One process; thread 1 ("session") holds one
complete ("X") event for the whole profiled run; thread 2 ("compile") one "X" event per frame
compilation, named after the frame, with its phases ("trace", "graph", "backend: <name>",
"guards") nested inside. Graph breaks and recompiles are instant ("i") events. Times are
microseconds from the start of the session.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .report import ProfileResult

PID = 1
SESSION_TID = 1
COMPILE_TID = 2


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 3)


def build(result: ProfileResult) -> dict[str, Any]:
    t0 = result.start
    events: list[dict[str, Any]] = [
        {
            "name": "process_name",
            "ph": "M",
            "pid": PID,
            "tid": 0,
            "args": {"name": "ferrodyn profile"},
        },
        {
            "name": "thread_name",
            "ph": "M",
            "pid": PID,
            "tid": SESSION_TID,
            "args": {"name": "session"},
        },
        {
            "name": "thread_name",
            "ph": "M",
            "pid": PID,
            "tid": COMPILE_TID,
            "args": {"name": "compile"},
        },
        {
            "name": "profile",
            "cat": "session",
            "ph": "X",
            "ts": 0.0,
            "dur": _us(result.wall_s),
            "pid": PID,
            "tid": SESSION_TID,
            "args": {k: round(v, 6) for k, v in result.totals().items()},
        },
    ]
    for f in result.frames:
        start = max(f.start - t0, 0.0)
        events.append(
            {
                "name": f.fn,
                "cat": "frame",
                "ph": "X",
                "ts": _us(start),
                "dur": _us(max(f.end - f.start, f.compile_s)),
                "pid": PID,
                "tid": COMPILE_TID,
                "args": {
                    "location": f.location,
                    "compile #": f.index,
                    "graphs": f.graphs,
                    "ops": f.ops,
                    "guards": f.guard_count,
                    "backend": f.backend,
                    "graph breaks": [f"{b.location()}: {b.reason}" for b in f.breaks],
                    "recompile reasons": f.recompile_reasons,
                    "runs eagerly": f.eager,
                    "skip reason": f.skip_reason,
                },
            }
        )
        for phase, begin, seconds in f.spans:
            name = f"backend: {f.backend}" if phase == "backend" and f.backend else phase
            args: dict[str, Any] = {"fn": f.fn}
            if phase == "trace":
                args["fake tensors + FX (s, within trace)"] = round(f.fake_fx_s, 6)
                args["graph builder setup (s, within trace)"] = round(f.setup_s, 6)
            events.append(
                {
                    "name": name,
                    "cat": phase,
                    "ph": "X",
                    "ts": _us(max(begin - t0, start)),
                    "dur": _us(seconds),
                    "pid": PID,
                    "tid": COMPILE_TID,
                    "args": args,
                }
            )
        at = _us(max(f.end - t0, start))
        for b in f.breaks:
            events.append(
                {
                    "name": "graph break",
                    "cat": "break",
                    "ph": "i",
                    "s": "t",
                    "ts": at,
                    "pid": PID,
                    "tid": COMPILE_TID,
                    "args": {"fn": b.fn, "location": b.location(), "reason": b.reason},
                }
            )
        if f.recompile_reasons:
            events.append(
                {
                    "name": "recompile",
                    "cat": "recompile",
                    "ph": "i",
                    "s": "t",
                    "ts": _us(start),
                    "pid": PID,
                    "tid": COMPILE_TID,
                    "args": {"fn": f.fn, "reasons": f.recompile_reasons},
                }
            )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write(result: ProfileResult, path: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(build(result), fh, default=str)
