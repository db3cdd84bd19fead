"""Dynamic shapes: which input dimensions are symbolic, and the guards on them.

`dynamic=None` (the default) is automatic dynamic, as in torch.compile: the first trace
specialises every size; when a later trace of the same code sees a tensor input (by source)
whose size differs from an earlier trace's in some dimension, that dimension becomes
symbolic from then on. `dynamic=True` makes every dimension of every input tensor symbolic
from the first trace (sizes 0 and 1 stay specialised, as torch does); `dynamic=False`
never does. `torch._dynamo.mark_dynamic` / `maybe_mark_dynamic` / `mark_static` on an input
tensor are honoured in every mode but `dynamic=False` (which still honours `mark_dynamic`).
A `mark_dynamic(t, dim, min=, max=)` range is a constraint, as in torch.compile: a size
outside it raises `ConstraintViolationError`, and the shape guard checks the range.

Symbolic sizes live in a `ShapeEnv` owned by the trace's FakeTensorMode. Branching on them,
or using them where the interpreter needs a constant, specialises them: the shape
environment records a guard. After the backend compiled the graph, those guards become one
Python check on the graph inputs (`InputShapes.guard`), run on a cache hit after the
guard tree passed; the tensor guard itself leaves symbolic sizes and strides alone.

Parameters stay static (as torch.compile's `force_parameter_static_shapes`).
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch._guards import GuardSource, Source

from .backends import DynamicBackend

# `torch.fx.experimental.symbolic_shapes` (and sympy with it, about 0.3 s) is imported only
# when a trace makes a shape environment: a light trace (`meta_rules`) never does.

log = logging.getLogger("ferrodyn.dynamic")

_SYM_TYPES = (torch.SymInt, torch.SymFloat, torch.SymBool)
# Keys of a code object's dynamic state (a dict owned by its caches; `reset()` clears it).
_SEEN = "seen"


# Shape-environment sources of values drawn from `random` start here (not graph-input numbers
# the shape guard reads: no guard may name them).
_RANDOM_INDEX = 1 << 20


@dataclasses.dataclass(frozen=True)
class InputSource(Source):
    """Graph input number `index`: the shape guards name it `a[index]`."""

    index: int

    @property
    def _name_template(self) -> str:
        return f"a[{self.index}]"

    @functools.cached_property
    def guard_source(self) -> GuardSource:
        return GuardSource.LOCAL


def mode_of(compiler: Any) -> bool | None:
    """`dynamic=` of the compile that made this backend (None: automatic)."""
    return compiler.ferrodyn_dynamic if isinstance(compiler, DynamicBackend) else None


def runs_graph_as_is(compiler: Any) -> bool:
    """Whether the backend runs the FX graph as traced (`"eager"`, the test counters):
    there a symbolic float input is safe. AOTAutograd and inductor turn such floats into
    tensors, and where they cannot they ask Dynamo to trace again with the float constant
    (TensorifyScalarRestartAnalysis) or bake its value in without a guard; ferrodyn keeps
    floats constants (guarded) for them, and values drawn from `random` break the graph."""
    inner = compiler.backend if isinstance(compiler, DynamicBackend) else compiler
    if isinstance(inner, str):
        return inner == "eager"
    if getattr(inner, "backend", None) == "eager":
        return True  # CompileCounterWithBackend("eager")
    name = getattr(inner, "__name__", None)
    return name == "_eager" or type(inner).__name__ == "CompileCounter"


def is_symbolic(value: Any) -> bool:
    """A SymInt/SymFloat/SymBool that is not known to be one constant."""
    if not isinstance(value, _SYM_TYPES):
        return False
    return value.node.maybe_as_int() is None if isinstance(value, torch.SymInt) else True


def python_type_of(value: Any) -> type:
    if isinstance(value, torch.SymInt):
        return int
    if isinstance(value, torch.SymFloat):
        return float
    if isinstance(value, torch.SymBool):
        return bool
    return torch.Tensor


def constant(value: Any) -> Any:
    """A result that is a constant: plain numbers for symbolic ones known to be one value
    (also inside a torch.Size, tuple or list)."""
    if isinstance(value, _SYM_TYPES):
        return specialize(value)
    if isinstance(value, (torch.Size, tuple, list)) and any(
        isinstance(d, (*_SYM_TYPES, tuple, list)) for d in value
    ):
        items = [constant(d) for d in value]
        if isinstance(value, torch.Size):
            return torch.Size(items)
        return type(value)(items) if type(value) in (tuple, list) else value
    return value


def specialize(value: Any) -> Any:
    """The concrete value of a symbolic number; the shape environment guards on it."""
    if isinstance(value, torch.SymBool):
        return bool(value)
    if isinstance(value, torch.SymFloat):
        return float(value)
    return int(value)


def symbolic_dims(fake: Any) -> tuple[list[int], list[int]] | None:
    if not isinstance(fake, torch.Tensor):
        return None
    sizes = [i for i, d in enumerate(fake.shape) if is_symbolic(d)]
    if not sizes:
        return None
    strides = [i for i, s in enumerate(fake.stride()) if is_symbolic(s)]
    return sizes, strides


def _marked(tensor: torch.Tensor, attr: str) -> set[int]:
    dims = getattr(tensor, attr, None)
    if not isinstance(dims, (set, frozenset, list, tuple)):
        return set()
    n = tensor.dim()
    return {d % n for d in dims if isinstance(d, int) and n and -n <= d < n}


def _ranges(tensor: torch.Tensor) -> list[tuple[int, int, int | None]]:
    """The (dim, min, max) ranges `mark_dynamic(t, dim, min=, max=)` recorded on `tensor`."""
    ranges = getattr(tensor, "_dynamo_dynamic_range", None)
    if not isinstance(ranges, (set, frozenset, list, tuple)):
        return []
    n = tensor.dim()
    out = []
    for r in ranges:
        dim, lo, hi = getattr(r, "dim", None), getattr(r, "min", None), getattr(r, "max", None)
        if not isinstance(dim, int) or not n or not -n <= dim < n:
            continue
        out.append((dim % n, lo if isinstance(lo, int) else 0, hi if isinstance(hi, int) else None))
    return out


class InputShapes:
    """Chooses each graph input's symbolic dimensions for one trace."""

    def __init__(self, dyn_state: dict | None, compiler: Any) -> None:
        self.mode = mode_of(compiler)
        self.symbolic_floats = runs_graph_as_is(compiler)
        self.state = dyn_state if dyn_state is not None else {}
        self.seen: dict[str, list[int | None]] = self.state.setdefault(_SEEN, {})
        self._env: Any = None
        # Graph inputs (by position) made with symbolic sizes or as symbolic ints: the shape
        # guard covers them, including the sizes the trace later specialised.
        self.symbolic_inputs: list[int] = []
        self.random_symbols: set[Any] = set()

    @property
    def env(self) -> Any:
        """The trace's shape environment, made on first use."""
        if self._env is None:
            from torch.fx.experimental.symbolic_shapes import ShapeEnv

            self._env = ShapeEnv(allow_scalar_outputs=False, allow_dynamic_output_shape_ops=False)
        return self._env

    def number_would_be_dynamic(self, value: Any, source_name: str) -> bool:
        """Whether `symint`/`symfloat` would make `value` symbolic (without recording it)."""
        if type(value) is float:
            if not self.symbolic_floats or not math.isfinite(value):
                return False
            key = f"float:{source_name}"
        else:
            key = f"int:{source_name}"
        if self.mode is not None:
            return self.mode
        before = self.seen.get(key)
        return before is not None and before != [value]

    def dynamic_dims_of(self, tensor: torch.Tensor, source_name: str) -> set[int]:
        """The dimensions of a graph input that are symbolic in this trace (recording its
        sizes for automatic dynamic: call once per input)."""
        ndim = tensor.dim()
        marked = _marked(tensor, "_dynamo_dynamic_indices")
        if isinstance(tensor, torch.nn.Parameter):
            return marked
        weak = _marked(tensor, "_dynamo_weak_dynamic_indices")
        static = _marked(tensor, "_dynamo_static_indices")
        sizes = list(tensor.shape)
        before = self.seen.get(source_name)
        if self.mode is False:
            dims = marked | weak
        elif self.mode is True:
            dims = set(range(ndim)) - static
        else:
            dims = (marked | weak) - static
            if before is not None and len(before) == ndim:
                changed = {i for i, (b, n) in enumerate(zip(before, sizes)) if b not in (None, n)}
                grown = changed - static - dims
                if grown:
                    log.info(
                        "automatic dynamic: %s dimension(s) %s became dynamic (size %s -> %s)",
                        source_name,
                        sorted(grown),
                        [before[i] for i in sorted(grown)],
                        [sizes[i] for i in sorted(grown)],
                    )
                    _log_recompile(source_name, sorted(grown))
                already = {i for i, b in enumerate(before) if b is None}
                dims |= (changed | already) - static
        record: list[int | None] = [None if i in dims else s for i, s in enumerate(sizes)]
        if before is not None and len(before) == ndim:
            record = [None if b is None else r for b, r in zip(before, record)]
        self.seen[source_name] = record
        return {d for d in dims if 0 <= d < ndim}

    def _number_is_dynamic(self, kind: str, value: Any, source_name: str) -> bool:
        key = f"{kind}:{source_name}"
        before = self.seen.get(key)
        if self.mode is True:
            dynamic = True
        elif self.mode is False:
            dynamic = False
        else:
            dynamic = before is not None and before != [value]
            if dynamic and before != [None]:
                log.info("automatic dynamic: %s %s became dynamic", kind, source_name)
                _log_int(kind, source_name, before, value)
        self.seen[key] = [None] if dynamic else [value]
        return dynamic

    def symint(self, value: int, source_name: str, index: int) -> Any:
        """A symbolic int for an `int` argument, or None when it stays a constant."""
        if not self._number_is_dynamic("int", value, source_name):
            return None
        source = InputSource(index)
        # As torch.compile's unspecialised ints: any value, 0 and 1 included.
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        sym = self.env.create_unspecified_symint_and_symbol(value, source, DimDynamic.DYNAMIC)
        if not is_symbolic(sym):
            return None
        self.symbolic_inputs.append(index)
        return sym

    def random_number(self, value: float, index: int) -> Any:
        """A symbolic number for the `index`-th value drawn from `random` in the graph: always
        symbolic (it is drawn again on every call), never guarded (`random_guarded`)."""
        source = InputSource(_RANDOM_INDEX + index)
        if not self.symbolic_floats:
            return None  # (the caller breaks: this backend cannot take it)
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        if type(value) is int:
            sym = self.env.create_unspecified_symint_and_symbol(value, source, DimDynamic.DYNAMIC)
        else:
            expr = self.env.create_unspecified_symbol(value, source, DimDynamic.DYNAMIC)
            sym = self.env.create_symfloatnode(expr, hint=value, source=source)
        if not is_symbolic(sym):
            return None
        self.random_symbols |= sym.node.expr.free_symbols
        return sym

    def is_random(self, value: Any) -> bool:
        """Whether a symbolic number depends on a value drawn from `random`."""
        return is_symbolic(value) and bool(value.node.expr.free_symbols & self.random_symbols)

    def random_mark(self) -> tuple[int, frozenset[Any]]:
        """Where the shape environment's guards and replacements stand (`random_guarded_since`)."""
        return len(self.env.guards), frozenset(self.env.replacements)

    def random_guarded_since(self, mark: tuple[int, frozenset[Any]]) -> bool:
        """Whether guards or replacements on values drawn from `random` were added since
        `mark`; if so they are taken back (the operation that made them breaks instead)."""
        n, replaced = mark
        new_guards = self.env.guards[n:]
        new_reps = [s for s in self.env.replacements if s not in replaced]
        hit = any(g.expr.free_symbols & self.random_symbols for g in new_guards) or any(
            s in self.random_symbols for s in new_reps
        )
        if hit:
            del self.env.guards[n:]
            for s in new_reps:
                del self.env.replacements[s]
        return hit

    def random_guarded(self) -> bool:
        """Whether the shape environment recorded a guard or a replacement on a value drawn
        from `random` (which no later call could keep: it is drawn anew each time)."""
        if not self.random_symbols:
            return False
        if any(s in self.random_symbols for s in self.env.replacements):
            return True
        return any(g.expr.free_symbols & self.random_symbols for g in self.env.guards)

    def symfloat(self, value: float, source_name: str, index: int) -> Any:
        """A symbolic float for a `float` argument that changed since an earlier trace (or
        under `dynamic=True`), as torch.compile unspecialises floats; None when it stays a
        constant (also for NaN and infinities, which a symbol cannot stand for)."""
        if (
            not self.symbolic_floats
            or not math.isfinite(value)
            or not self._number_is_dynamic("float", value, source_name)
        ):
            return None
        from torch.fx.experimental.symbolic_shapes import DimDynamic

        source = InputSource(index)
        expr = self.env.create_unspecified_symbol(value, source, DimDynamic.DYNAMIC)
        sym = self.env.create_symfloatnode(expr, hint=value, source=source)
        if not is_symbolic(sym):
            return None
        self.symbolic_inputs.append(index)
        return sym

    def fakeify(
        self, mode: Any, tensor: torch.Tensor, source_name: str, index: int, dims: set[int]
    ) -> torch.Tensor:
        """The fake tensor of graph input `index`, symbolic in `dims` (`dynamic_dims_of`)."""
        from torch.fx.experimental.symbolic_shapes import (
            ConstraintViolationError,
            DimDynamic,
            StatelessSymbolicContext,
            StrictMinMaxConstraint,
        )
        from torch.utils._sympy.value_ranges import ValueRanges

        source = InputSource(index)
        constraints: list[Any] = [None] * tensor.dim()
        for dim, lo, hi in _ranges(tensor):
            if dim not in dims:
                continue
            size = tensor.shape[dim]
            if size < lo or (hi is not None and size > hi):
                raise ConstraintViolationError(
                    f"{source_name}.size()[{dim}] is {size}, not in the range "
                    f"[{lo}, {'inf' if hi is None else hi}] given to mark_dynamic"
                )
            constraints[dim] = StrictMinMaxConstraint(
                vr=ValueRanges(lower=lo, upper=math.inf if hi is None else hi), warn_only=False
            )
        ctx = StatelessSymbolicContext(
            dynamic_sizes=[
                DimDynamic.DYNAMIC if i in dims else DimDynamic.STATIC for i in range(tensor.dim())
            ],
            constraint_sizes=constraints,
        )
        # Structured-trace records of the input (describe_tensor/_storage) only when a trace
        # was asked for: ferrodyn has no compile id to file them under, and the first record
        # of a process captures a symbolized stack, which imports torch._inductor (and all of
        # torch._dynamo with it) just to be dropped when no trace is being written.
        fake = mode.from_tensor(
            tensor, source=source, symbolic_context=ctx, trace=bool(os.environ.get("TORCH_TRACE"))
        )
        if symbolic_dims(fake):
            self.symbolic_inputs.append(index)
        return fake  # type: ignore[no-any-return]

    def guard(self, fakes: Sequence[torch.Tensor], names: Sequence[str]) -> Any:
        if not self.symbolic_inputs:
            return None
        # Every guard on the inputs that had symbolic sizes, those specialised since
        # included (`ignore_static=False`): the tensor guard leaves their sizes to this.
        picked = [i for i in self.symbolic_inputs if i < len(fakes)]
        code = self.env.produce_guards(
            [fakes[i] for i in picked], [InputSource(i) for i in picked], ignore_static=False
        )
        if not code:
            return None
        return ShapeGuard(code, names)


# What the shape environment's guard text refers to (`torch.sym_min(...)`, `math.floor`).
_GUARD_GLOBALS: dict[str, Any] = {"torch": torch, "math": math, "__builtins__": builtins}


class ShapeGuard:
    """The shape environment's guards as one check on the list of graph inputs."""

    def __init__(self, code: Sequence[str], names: Sequence[str]) -> None:
        self.code = list(code)
        self.names = list(names)
        expr = " and ".join(f"({c})" for c in self.code)
        self._check: Callable[[Sequence[Any]], bool] = eval(
            f"lambda a: {expr}", dict(_GUARD_GLOBALS), {}
        )

    def __call__(self, inputs: Sequence[Any]) -> bool:
        try:
            return bool(self._check(inputs))
        except Exception:  # noqa: BLE001 - a guard that cannot be evaluated fails
            return False

    def explain(self, inputs: Sequence[Any]) -> str:
        """The first failing guard, with the inputs' names."""
        for c in self.code:
            try:
                ok = bool(eval(f"lambda a: {c}", dict(_GUARD_GLOBALS), {})(inputs))
            except Exception:  # noqa: BLE001
                ok = False
            if not ok:
                text = c
                for i, n in enumerate(self.names):
                    text = text.replace(f"a[{i}]", n)
                return f"shape guard failed: {text}"
        return "shape guards pass"

    def describe(self) -> list[str]:
        out = []
        for c in self.code:
            for i, n in enumerate(self.names):
                c = c.replace(f"a[{i}]", n)
            out.append(c)
        return out


def _log_int(kind: str, source_name: str, before: list[Any], value: Any) -> None:
    from . import logs

    logs.log(
        "recompiles",
        "%s",
        f"automatic dynamic shapes: {kind} {source_name} is now dynamic ({before[0]} -> {value})",
    )


def _log_recompile(source_name: str, dims: list[int]) -> None:
    from . import logs

    logs.log(
        "recompiles",
        "%s",
        f"automatic dynamic shapes: {source_name} dimension(s) {dims} are now dynamic",
    )
