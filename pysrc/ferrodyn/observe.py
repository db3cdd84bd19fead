"""Compile-time events from the Rust runtime (graph breaks, graphs, recompiles, guards).

The runtime calls `record(kind, payload)` for each event; `explain`, the logs and the
profiler subscribe here. Kinds and payload keys:
- "break":     fn, reason, file, line, function (the user frame where the trace stopped)
- "exception": the same keys, for an exception the traced code raises and does not catch
               (the raising step re-runs natively; like torch.compile, not a graph break)
- "graph":     fn, gm (torch.fx.GraphModule), ops (int)
- "recompile": fn, file, line, reasons (list[str])
- "guards":    fn, guards (list[str])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Add a listener; returns a function that removes it."""
    _listeners.append(listener)

    def unsubscribe() -> None:
        if listener in _listeners:
            _listeners.remove(listener)

    return unsubscribe


def active() -> bool:
    return bool(_listeners)


def record(kind: str, payload: dict[str, Any]) -> None:
    for listener in _listeners.copy():  # a listener may unsubscribe itself
        listener(kind, payload)
