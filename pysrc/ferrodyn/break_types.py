"""Graph-break classification: every break reason maps to a stable type tag, a category,
an explanation and hints (what `Unsupported` and `explain()`'s `BreakReason` expose).

The tracer reports a free-text reason ("call to non-traceable function numpy.sin"); the
table below turns it into a `BreakType` by the first pattern that matches. The tag is stable
across releases (tests and tools may match on it); the text of the reason, which names the
user's objects, is the `context`.

Categories, as in torch.compile's graph-break registry:

- `supportable`: ferrodyn could trace this; it does not yet.
- `user_error`: the program itself is wrong or asks for the break.
- `ferrodyn_bug`: an internal error.
- `difficult`: possible in principle, costly to model faithfully.
- `fundamental`: no single graph can express it (data-dependent control flow, I/O).
- `inference_mode`: tensors or state under `torch.inference_mode`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = (
    "supportable",
    "user_error",
    "ferrodyn_bug",
    "difficult",
    "fundamental",
    "inference_mode",
)


@dataclass(frozen=True)
class BreakType:
    gb_type: str
    """Stable tag of the kind of break."""
    category: str
    """One of `CATEGORIES`."""
    explanation: str
    hints: tuple[str, ...]
    context: str
    """The break's own reason text."""


_HINT_REPORT = "If this should be traceable, please report it with the reason text."
_HINT_MOVE = "Move the step out of the compiled region, or accept the graph break."

# (pattern, tag, category, explanation, hints); first match wins.
_TABLE: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (
        r"torch\._dynamo\.graph_break\(\)|graph_break\(\)",
        "Call to `torch._dynamo.graph_break()`",
        "user_error",
        "The program asks for a graph break here.",
        ("Remove the call if a single graph is wanted.",),
    ),
    (
        r"inference[ _]mode",
        "Inference mode",
        "inference_mode",
        "Tensors or state created under torch.inference_mode cannot be traced here.",
        ("Use torch.no_grad() instead of torch.inference_mode() around compiled code.",),
    ),
    (
        r"ferrodyn internal|internal error",
        "Internal error",
        "ferrodyn_bug",
        "ferrodyn failed while tracing this step; the frame runs eagerly.",
        (_HINT_REPORT,),
    ),
    (
        r"data-dependent branch|truth value of a tensor",
        "Data-dependent branching",
        "fundamental",
        "Control flow depends on tensor values, which are unknown while tracing.",
        ("Use torch.cond or torch.where, or accept the break.",),
    ),
    (
        r"data-dependent|\.item\(\)|\.tolist\(\)|nonzero|DynamicOutputShape",
        "Data-dependent operator",
        "fundamental",
        "The operator's output shape or value depends on tensor data.",
        (
            (
                "Set torch._dynamo.config.capture_scalar_outputs / "
                "capture_dynamic_output_shape_ops, or accept the break."
            ),
        ),
    ),
    (
        r"torch\.compiler\.disable|_dynamo\.disable|disabled function",
        "Skip calling `torch.compiler.disable()`d function",
        "user_error",
        "The function is marked to run eagerly.",
        ("Remove the disable marker if the function should be compiled.",),
    ),
    (
        r"\bprint\b|\blogging\b|\bwarnings\b",
        "Side effect to the outside world",
        "fundamental",
        "The step performs I/O that must happen eagerly, in order.",
        (_HINT_MOVE,),
    ),
    (
        r"bytecode instruction|is not supported yet|opcode",
        "Missing bytecode handler",
        "supportable",
        "ferrodyn does not model this bytecode instruction yet.",
        (_HINT_REPORT,),
    ),
    (
        r"generator|yield",
        "Unsupported generator use",
        "difficult",
        "This use of a generator cannot be expressed in the trace.",
        (_HINT_MOVE,),
    ),
    (
        r"\b(TypeError|AttributeError|KeyError|IndexError|ValueError)\b",
        "Error in the traced program",
        "user_error",
        "The step raises in eager Python too; it runs eagerly to raise the real error.",
        ("Fix the error in the program.",),
    ),
    (
        r"non-traceable|implemented in C|not a Python function|unsupported object",
        "Call to a function ferrodyn cannot trace",
        "supportable",
        "The callee is implemented in C (or is otherwise opaque) and has no model.",
        (_HINT_REPORT, "Wrap it with torch.compiler.allow_in_graph if it is a tensor op."),
    ),
    (
        r"custom metaclass|__getattribute__|descriptor|__slots__|__setattr__|__new__",
        "Unsupported object model feature",
        "difficult",
        (
            "This object's class customises attribute access or construction in a way "
            "ferrodyn does not model."
        ),
        (_HINT_REPORT,),
    ),
    (
        r"recompile|cache_size_limit|recompile_limit",
        "Recompile limit reached",
        "difficult",
        "The function recompiled too often; it runs eagerly from now on.",
        ("Raise ferrodyn.config.recompile_limit, or mark changing sizes dynamic.",),
    ),
)

_COMPILED = tuple((re.compile(p), rest) for p, *rest in _TABLE)


def classify(reason: str) -> BreakType:
    """The `BreakType` of a break reason."""
    for pattern, (tag, category, explanation, hints) in _COMPILED:
        if pattern.search(reason):
            return BreakType(tag, category, explanation, hints, reason)
    return BreakType(
        "Unsupported step",
        "supportable",
        "ferrodyn cannot trace this step yet.",
        (_HINT_REPORT,),
        reason,
    )


class Classified:
    """Adds the classification properties to a break report (`Unsupported`, explain()'s
    `BreakReason`); `_break_text` is the reason they classify."""

    def _break_text(self) -> str:
        raise NotImplementedError

    @property
    def break_type(self) -> BreakType:
        return classify(self._break_text())

    @property
    def gb_type(self) -> str:
        return self.break_type.gb_type

    @property
    def category(self) -> str:
        return self.break_type.category

    @property
    def explanation(self) -> str:
        return self.break_type.explanation

    @property
    def hints(self) -> tuple[str, ...]:
        return self.break_type.hints
