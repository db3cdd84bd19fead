"""Logging in the style of TORCH_LOGS.

`FERRODYN_LOGS` is read once, at import: a comma-separated list of artifacts
(`graph_breaks,recompiles,guards,graph,bytecode`), or `all`. A `+` prefix (`+guards`, `+all`)
also turns on that artifact's debug messages. Each artifact is a child logger of
`logging.getLogger("ferrodyn")` (e.g. `ferrodyn.graph_breaks`) writing to stderr.

The Rust runtime calls `log(artifact, msg, *args)`; when the artifact is off that is one set
lookup. `enabled(artifact)` lets callers skip building expensive messages (graphs, guards).
"""

from __future__ import annotations

import logging
import os
import sys

ARTIFACTS: tuple[str, ...] = ("graph_breaks", "recompiles", "guards", "graph", "bytecode")
ENV_VAR = "FERRODYN_LOGS"

_root = logging.getLogger("ferrodyn")
_loggers: dict[str, logging.Logger] = {a: _root.getChild(a) for a in ARTIFACTS}
_enabled: frozenset[str] = frozenset()
_debug: frozenset[str] = frozenset()
_handler: logging.Handler | None = None


def parse(spec: str) -> tuple[frozenset[str], frozenset[str]]:
    """Parse a FERRODYN_LOGS value into (enabled artifacts, artifacts at debug level).

    Raises ValueError naming the unknown entries and the valid ones."""
    enabled: set[str] = set()
    debug: set[str] = set()
    unknown: list[str] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        verbose = item.startswith("+")
        name = item.lstrip("+")
        names = ARTIFACTS if name == "all" else (name,)
        if name != "all" and name not in ARTIFACTS:
            unknown.append(item)
            continue
        enabled.update(names)
        if verbose:
            debug.update(names)
    if unknown:
        raise ValueError(
            f"{ENV_VAR}: unknown artifact(s) {', '.join(map(repr, unknown))}; "
            f"expected a comma-separated list of {', '.join(ARTIFACTS)}, all or +all"
        )
    return frozenset(enabled), frozenset(debug)


def set_logs(spec: str) -> None:
    """(Re)configure the loggers from a FERRODYN_LOGS-style string ("" turns everything off)."""
    global _enabled, _debug, _handler
    _enabled, _debug = parse(spec)
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


def enabled(artifact: str) -> bool:
    """Whether `log(artifact, ...)` would print anything."""
    return artifact in _enabled


def log(artifact: str, msg: str, *args: object) -> None:
    """Log `msg % args` under `ferrodyn.<artifact>` at INFO; a no-op when the artifact is off."""
    if artifact in _enabled:
        _loggers[artifact].info(msg, *args)


def debug(artifact: str, msg: str, *args: object) -> None:
    """Like `log`, but only when the artifact was selected with a `+` prefix."""
    if artifact in _debug:
        _loggers[artifact].debug(msg, *args)


def _init_from_env() -> None:
    spec = os.environ.get(ENV_VAR, "")
    if not spec:
        return
    try:
        set_logs(spec)
    except ValueError as e:
        # A typo in an env var must not break the user's program: report it and go on.
        print(f"ferrodyn: {e}", file=sys.stderr)
        known = ",".join(x for x in spec.split(",") if x.strip().lstrip("+") in (*ARTIFACTS, "all"))
        set_logs(known)


_init_from_env()
