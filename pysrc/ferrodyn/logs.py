"""Logging in the style of TORCH_LOGS.

`FERRODYN_LOGS` is read once, at import: a comma-separated list of artifacts
(`graph_breaks,recompiles,guards,graph,bytecode`), or `all`. A `+` prefix (`+guards`, `+all`)
also turns on that artifact's debug messages; unknown names are reported on stderr and
ignored. Each artifact is a child logger of `logging.getLogger("ferrodyn")` (e.g.
`ferrodyn.graph_breaks`) writing to stderr. `set_logs(...)` changes the selection at runtime
(a FERRODYN_LOGS-style string, or keywords like `torch._logging.set_logs`).

Graph breaks, recompiles, guards and graphs are logged from the `ferrodyn.observe` events (the
same events `explain` aggregates), so the messages are the same wherever they come from:
- graph_breaks: reason, `file:line in function` and the source line;
- recompiles: which guard failed, with its old -> new value;
- guards: one line per guard of each new cache entry;
- graph: `gm.print_readable()` of each graph.
`bytecode` is for generated code (resume functions, glue): its producer calls
`log("bytecode", ...)` or `log_code(title, code)`.

The Rust runtime calls `log(artifact, msg, *args)`; when the artifact is off that is one set
lookup. `enabled(artifact)` lets callers skip building expensive messages (graphs, guards).
"""

from __future__ import annotations

import dis
import linecache
import logging
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

from . import observe

ARTIFACTS: tuple[str, ...] = ("graph_breaks", "recompiles", "guards", "graph", "bytecode")
ENV_VAR = "FERRODYN_LOGS"
# Artifacts logged from observe events (see _on_event).
_OBSERVED: frozenset[str] = frozenset({"graph_breaks", "recompiles", "guards", "graph"})

_root = logging.getLogger("ferrodyn")
_loggers: dict[str, logging.Logger] = {a: _root.getChild(a) for a in ARTIFACTS}
_enabled: frozenset[str] = frozenset()
_debug: frozenset[str] = frozenset()
_handler: logging.Handler | None = None
_unsubscribe: Callable[[], None] | None = None


# --------------------------------------------------------------------------------------------
# Selection


def _parse(spec: str) -> tuple[frozenset[str], frozenset[str], list[str]]:
    enabled: set[str] = set()
    debug: set[str] = set()
    unknown: list[str] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        verbose = item.startswith("+")
        name = item.lstrip("+")
        if name != "all" and name not in ARTIFACTS:
            unknown.append(item)
            continue
        names = ARTIFACTS if name == "all" else (name,)
        enabled.update(names)
        if verbose:
            debug.update(names)
    return frozenset(enabled), frozenset(debug), unknown


def _unknown_message(unknown: Sequence[str]) -> str:
    return (
        f"{ENV_VAR}: unknown artifact(s) {', '.join(map(repr, unknown))}; "
        f"expected a comma-separated list of {', '.join(ARTIFACTS)}, all or +all"
    )


def parse(spec: str) -> tuple[frozenset[str], frozenset[str]]:
    """Parse a FERRODYN_LOGS value into (enabled artifacts, artifacts at debug level).

    Raises ValueError naming the unknown entries and the valid ones."""
    enabled, debug, unknown = _parse(spec)
    if unknown:
        raise ValueError(_unknown_message(unknown))
    return enabled, debug


def _level_flags(name: str, value: bool | int | None) -> tuple[bool, bool]:
    """(enabled, debug) for a `set_logs` keyword: a bool, or a `logging` level (DEBUG or
    lower also turns on debug messages)."""
    if value is None or value is False:
        return False, False
    if value is True:
        return True, False
    if isinstance(value, int):
        return True, value <= logging.DEBUG
    raise TypeError(f"set_logs({name}=...): expected a bool or a logging level, got {value!r}")


def set_logs(
    spec: str | None = None,
    /,
    *,
    all: bool | int | None = None,  # named like torch._logging.set_logs's
    graph_breaks: bool | int | None = None,
    recompiles: bool | int | None = None,
    guards: bool | int | None = None,
    graph: bool | int | None = None,
    bytecode: bool | int | None = None,
) -> None:
    """Select what is logged, replacing the previous selection.

    `set_logs("graph_breaks,+guards")` takes a FERRODYN_LOGS-style string (unknown names
    raise ValueError); `set_logs(graph_breaks=True, guards=logging.DEBUG)` mirrors
    `torch._logging.set_logs` (True, or a logging level: DEBUG adds debug messages).
    `set_logs()` or `set_logs("")` turns everything off."""
    enabled, debug = parse(spec or "")
    en: set[str] = set(enabled)
    dbg: set[str] = set(debug)
    flags = {
        "all": all,
        "graph_breaks": graph_breaks,
        "recompiles": recompiles,
        "guards": guards,
        "graph": graph,
        "bytecode": bytecode,
    }
    for name, value in flags.items():
        on, verbose = _level_flags(name, value)
        names = ARTIFACTS if name == "all" else (name,)
        if on:
            en.update(names)
        if verbose:
            dbg.update(names)
    _apply(frozenset(en), frozenset(dbg))


def _apply(enabled: frozenset[str], debug: frozenset[str]) -> None:
    global _enabled, _debug, _handler, _unsubscribe
    _enabled, _debug = enabled, debug
    for name, logger in _loggers.items():
        if name in _debug:
            logger.setLevel(logging.DEBUG)
        elif name in _enabled:
            logger.setLevel(logging.INFO)
        else:
            logger.setLevel(logging.WARNING)
    if _enabled and _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        _root.addHandler(_handler)
        _root.propagate = False
    elif not _enabled and _handler is not None:
        _root.removeHandler(_handler)
        _handler = None
        _root.propagate = True
    # Listen to compile-time events only while someone wants them: with no listener the
    # runtime does not even build the event payloads.
    if _enabled & _OBSERVED and _unsubscribe is None:
        _unsubscribe = observe.subscribe(_on_event)
    elif not _enabled & _OBSERVED and _unsubscribe is not None:
        _unsubscribe()
        _unsubscribe = None


def enabled(artifact: str) -> bool:
    """Whether `log(artifact, ...)` would print anything."""
    return artifact in _enabled


# --------------------------------------------------------------------------------------------
# Logging calls


def log(artifact: str, msg: str, *args: object) -> None:
    """Log `msg % args` under `ferrodyn.<artifact>` at INFO; a no-op when the artifact is off."""
    if artifact in _enabled:
        _loggers[artifact].info(msg, *args)


def debug(artifact: str, msg: str, *args: object) -> None:
    """Like `log`, but only when the artifact was selected with a `+` prefix."""
    if artifact in _debug:
        _loggers[artifact].debug(msg, *args)


def log_code(title: str, code: types.CodeType) -> None:
    """Log the disassembly of generated `code` (a resume function, glue) under `bytecode`."""
    if "bytecode" in _enabled:
        _loggers["bytecode"].info("%s\n%s", title, dis.Bytecode(code).dis().rstrip())


# --------------------------------------------------------------------------------------------
# Messages for observe events (shared with ferrodyn.explain)


def source_line(file: str, line: int) -> str:
    """The stripped text of `file:line`, or "" when it can't be read."""
    if not file or line <= 0:
        return ""
    return linecache.getline(file, line).strip()


def format_location(file: str, line: int, function: str) -> str:
    where = f"{file}:{line}" if file else "<unknown location>"
    return f"{where} in {function}" if function else where


def format_break(reason: str, file: str, line: int, function: str, source: str) -> str:
    """`file:line in function: reason`, then the source line indented (when known)."""
    text = f"{format_location(file, line, function)}: {reason}"
    return f"{text}\n    {source}" if source else text


def format_guard(guard: str, indent: str = "  ") -> str:
    """One guard line; the continuation lines of multi-line reprs indented under it."""
    return indent + guard.replace("\n", "\n" + " " * len(indent) + "  ")


def _str(payload: dict[str, Any], key: str) -> str:
    v = payload.get(key)
    return v if isinstance(v, str) else ""


def _int(payload: dict[str, Any], key: str) -> int:
    v = payload.get(key)
    return v if isinstance(v, int) else 0


def _on_event(kind: str, payload: dict[str, Any]) -> None:
    fn = _str(payload, "fn")
    if kind in ("break", "exception") and "graph_breaks" in _enabled:
        file, line = _str(payload, "file"), _int(payload, "line")
        text = format_break(
            _str(payload, "reason"), file, line, _str(payload, "function"), source_line(file, line)
        )
        _loggers["graph_breaks"].info("graph break in %s: %s", fn, text)
    elif kind == "recompile" and "recompiles" in _enabled:
        where = format_location(_str(payload, "file"), _int(payload, "line"), "")
        reasons = [str(r) for r in payload.get("reasons") or ()]
        if len(reasons) == 1:
            detail = f"guard failed: {reasons[0]}"
        else:
            lines = "".join(f"\n  - {r}" for r in reasons)
            detail = f"a guard failed in each of the {len(reasons)} cached entries:{lines}"
        _loggers["recompiles"].info("recompiling %s (%s), %s", fn, where, detail)
    elif kind == "guards" and "guards" in _enabled:
        guards = [format_guard(str(g)) for g in payload.get("guards") or ()]
        _loggers["guards"].info("guards for %s:\n%s", fn, "\n".join(guards))
    elif kind == "graph" and "graph" in _enabled:
        gm = payload.get("gm")
        text = gm.print_readable(print_output=False) if gm is not None else "<no graph>"
        _loggers["graph"].info("graph for %s (%d ops):\n%s", fn, _int(payload, "ops"), text)


def _init_from_env() -> None:
    spec = os.environ.get(ENV_VAR, "")
    if not spec:
        return
    enabled, debug, unknown = _parse(spec)
    if unknown:
        # A typo in an env var must not break the user's program: report it and go on.
        print(f"ferrodyn: {_unknown_message(unknown)} (ignored)", file=sys.stderr)
    _apply(enabled, debug)


_init_from_env()
