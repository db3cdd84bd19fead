"""`ferrodyn.explain(fn)(*args)`: what compiling `fn` on these inputs produces.

Compiles `fn` afresh (its own cache, like a new `ferrodyn.compile(fn)`), runs it once on the
arguments while listening to the compile-time events of `ferrodyn.observe`, and aggregates
them into an `ExplainOutput`: graphs and their op counts, graph breaks with the user's
`file:line` and source text, and the guards of each new cache entry. Every event that
arrives during the call counts, including those of resume functions after a graph break
and of other compiled functions the call reaches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import torch

from . import break_types, logs, observe


@dataclass
class BreakReason(break_types.Classified):
    """One graph break: why, and where in the user's code (the innermost inlined frame)."""

    reason: str
    file: str
    line: int
    function: str
    source: str
    """The text of `file:line` (stripped), or "" when the file can't be read."""
    fn: str = ""
    """The compiled function (or resume function) whose trace stopped."""

    def __str__(self) -> str:
        return logs.format_break(self.reason, self.file, self.line, self.function, self.source)

    def _break_text(self) -> str:
        return self.reason


@dataclass
class ExplainOutput:
    """What `ferrodyn.explain(fn)(*args)` saw. `str()` of it is a readable report."""

    graph_count: int
    graph_break_count: int
    break_reasons: list[BreakReason]
    guards: list[str]
    """Guards of every cache entry created, one line per guard, in creation order."""
    ops_per_graph: list[int]
    graphs: list[torch.fx.GraphModule] = field(repr=False)
    compile_time_s: float
    """Wall time of the explained call: tracing, backend compilation, and one run."""
    result: Any = field(default=None, repr=False)
    """What the call returned."""
    graph_names: list[str] = field(default_factory=list)
    """The function each graph belongs to (resume functions are `__resume_<name>_at_<n>`)."""
    recompile_reasons: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        out = [
            f"Graph count: {self.graph_count}",
            f"Graph break count: {self.graph_break_count}",
            f"Op count: {sum(self.ops_per_graph)}",
        ]
        if self.break_reasons:
            out.append("Break reasons:")
            for i, b in enumerate(self.break_reasons, 1):
                out.append(f"  {i}. " + str(b).replace("\n", "\n     "))
        if self.ops_per_graph:
            out.append("Ops per graph:")
            names = self.graph_names + [""] * (len(self.ops_per_graph) - len(self.graph_names))
            for i, (n, name) in enumerate(zip(self.ops_per_graph, names, strict=True), 1):
                out.append(f"  {i}. {n} ops" + (f" ({name})" if name else ""))
        if self.recompile_reasons:
            out.append("Recompile reasons:")
            out.extend(f"  - {r}" for r in self.recompile_reasons)
        if self.guards:
            out.append("Guards:")
            out.extend(logs.format_guard(g, "  - ") for g in self.guards)
        out.append(f"Compile time: {self.compile_time_s:.3f} s")
        return "\n".join(out)


class _Collector:
    """An observe listener that keeps what ExplainOutput reports."""

    def __init__(self) -> None:
        self.graphs: list[torch.fx.GraphModule] = []
        self.ops: list[int] = []
        self.graph_names: list[str] = []
        self.breaks: list[BreakReason] = []
        self.guards: list[str] = []
        self.recompiles: list[str] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        fn = str(payload.get("fn", ""))
        if kind == "graph":
            ops = int(payload.get("ops", 0))
            # Like torch's explain: a graph without ops is not handed to the backend, and
            # does not count.
            if ops > 0:
                self.graphs.append(payload["gm"])
                self.ops.append(ops)
                self.graph_names.append(fn)
        elif kind == "break":
            file = str(payload.get("file", ""))
            line = int(payload.get("line", 0))
            reason = str(payload.get("reason", ""))
            # One break seen by every frame on an inlined call chain (each of them splits
            # at it) is one break, as torch's explain counts it.
            if any((b.reason, b.file, b.line) == (reason, file, line) for b in self.breaks):
                return
            self.breaks.append(
                BreakReason(
                    reason=str(payload.get("reason", "")),
                    file=file,
                    line=line,
                    function=str(payload.get("function", "")),
                    source=logs.source_line(file, line),
                    fn=fn,
                )
            )
        elif kind == "guards":
            self.guards.extend(str(g) for g in payload.get("guards") or ())
        elif kind == "recompile":
            self.recompiles.extend(f"{fn}: {r}" for r in payload.get("reasons") or ())

    def output(self, result: Any, elapsed: float) -> ExplainOutput:
        return ExplainOutput(
            graph_count=len(self.graphs),
            graph_break_count=len(self.breaks),
            break_reasons=self.breaks,
            guards=self.guards,
            ops_per_graph=self.ops,
            graphs=self.graphs,
            compile_time_s=elapsed,
            result=result,
            graph_names=self.graph_names,
            recompile_reasons=self.recompiles,
        )


def _explain_call(
    fn: Callable[..., Any], backend: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> ExplainOutput:
    # api imports the extension; keep `import ferrodyn.logs` light
    from .api import compile, unshared

    with unshared():
        compiled = compile(fn, backend=backend)
    collector = _Collector()
    unsubscribe = observe.subscribe(collector)
    start = time.perf_counter()
    try:
        result = compiled(*args, **kwargs)
    finally:
        elapsed = time.perf_counter() - start
        unsubscribe()
    return collector.output(result, elapsed)


@overload
def explain(fn: Callable[..., Any], /, *, backend: Any = ...) -> Callable[..., ExplainOutput]: ...
@overload
def explain(
    fn: Callable[..., Any], arg0: Any, /, *args: Any, backend: Any = ..., **kwargs: Any
) -> ExplainOutput: ...
def explain(
    fn: Callable[..., Any], /, *args: Any, backend: Any = "eager", **kwargs: Any
) -> Callable[..., ExplainOutput] | ExplainOutput:
    """Explain what `ferrodyn.compile(fn, backend=backend)` does on given inputs.

    `ferrodyn.explain(fn)(*args, **kwargs)` compiles `fn` (a function, an `nn.Module` or any
    callable `compile` accepts) afresh, calls it once, and returns an `ExplainOutput`: graph
    and graph-break counts, break reasons with `file:line` and source line, ops per graph, the
    graphs, guards, compile time and the call's result. `print(out)` shows a report.

    `ferrodyn.explain(fn, *args, **kwargs)` (torch._dynamo.explain's older form) does the same
    at once. `backend` is any `compile` backend (default "eager": no backend compile time).
    """
    if not callable(fn):
        raise TypeError(f"ferrodyn.explain: expected a callable, got {type(fn).__qualname__}")
    if args or kwargs:
        return _explain_call(fn, backend, args, kwargs)

    def run(*call_args: Any, **call_kwargs: Any) -> ExplainOutput:
        return _explain_call(fn, backend, call_args, call_kwargs)

    return run
