"""torch's compiler markers, honoured as torch.compile honours them.

`marker(obj)` says whether an object is one (then `classify` answers KIND_MARKER and the
Rust core asks `marker_action` what a call, or a `with`, does):

* `torch._dynamo.graph_break()` and functions registered with
  `torch._dynamo.disallow_in_graph`: a graph break (the call then runs natively);
* functions wrapped by `torch.compiler.disable` / `torch._dynamo.disable` (any
  `recursive=`) or `torch._dynamo.skip`: a graph break whose step runs the function as is,
  eagerly (with `recursive=False` torch.compile still compiles the function's callees;
  ferrodyn runs them eagerly too);
* torch._dynamo's own functions (torch.compile skips its own modules, except the few it
  inlines) and `torch._C._dynamo` functions (`torch._dynamo.testing.unsupported`): a break;
* `torch._dynamo.skip_frame()`: the frame runs eagerly;
* `torch._dynamo.step_unsupported()`: a break; the graph before it is compiled and the rest
  of the frame runs eagerly;
* `torch.compiler.is_compiling()`, `torch._dynamo.is_compiling()`,
  `torch.compiler.is_dynamo_compiling()`: the constant True while tracing;
* `torch._dynamo.error_on_graph_break(flag)` objects (as `with` blocks and as decorators):
  while tracing their region, a graph break raises `exc.Unsupported` as under fullgraph;
* a function compiled with `torch.compile` called inside the traced code: its original
  function is traced in place (torch.compile inlines nested compiled functions too);
* `collections.namedtuple(...)` on constant arguments: the class is made at trace time
  (its `__module__` is the compiled frame's module), as torch.compile folds it;
* `torch._dynamo.comptime(fn)`: `fn` runs once at trace time with a `ferrodyn.comptime`
  context (`rust/interp/comptime.rs`);
* `Fn.apply` of a user `torch.autograd.Function`: traced through
  `polyfills.autograd_function_apply` (`forward` in place, or one `Fn.apply` node when an
  input needs a gradient: `polyfills.apply_in_graph`, carried out by
  `rust/interp/autograd_function.rs`).

Functions registered with `torch.compiler.allow_in_graph` are not markers: `classify`
answers KIND_TORCH_OP for them (one graph node; the function runs on fake tensors when the
node is recorded, as under torch.compile).

Nothing here imports torch._dynamo: a marker can only be met once the module defining it
is loaded, so the tables are built from `sys.modules` as modules appear.
"""

from __future__ import annotations

import collections
import functools
import inspect
import sys
import types
from typing import Any

import torch

from .._glue import ErrorOnBreakExit
from . import kinds
from .typecheck import is_a

_DECORATORS = "torch._dynamo.decorators"
_EXTERNAL_UTILS = "torch._dynamo.external_utils"
_TRACE_RULES = "torch._dynamo.trace_rules"
_DYNAMO_UTILS = "torch._dynamo.utils"
_COMPTIME = "torch._dynamo.comptime"

# torch._dynamo modules whose functions torch.compile traces (its MOD_INLINELIST);
# functions of any other torch._dynamo module are skipped, i.e. break the graph.
_DYNAMO_INLINED = (
    "torch._dynamo.external_utils",
    "torch._dynamo.polyfills",
    "torch._dynamo.comptime",
    "torch._dynamo.compiled_autograd",
    "torch._dynamo._trace_wrapped_higher_order_op",
    "torch._dynamo.test_case",
)
# torch._dynamo functions torch.compile inlines although their module is skipped.
_DYNAMO_INLINED_NAMES = frozenset(
    {
        "dont_skip_tracing",
        "mark_static",
        "nonstrict_trace",
        "patch_dynamo_config",
        "disable_nested_graph_breaks",
        "override_cudagraphs",
        "is_compile_supported",
    }
)

Action = tuple[int, Any]

_table: dict[int, tuple[Any, Action]] = {}
_table_key: tuple[bool, ...] = ()
_ALL_LOADED = (True, True, True, True)


def _build_table() -> dict[int, tuple[Any, Action]]:
    """Markers known by identity: id -> (the object, its action)."""
    entries: list[tuple[Any, Action]] = []
    from .. import polyfills, polyfills_torch_function

    entries.append((polyfills.unsupported, _brk("unsupported in the trace", msg=True)))
    entries.append((polyfills.apply_in_graph, (kinds.MARKER_AUTOGRAD_APPLY, None)))
    from .. import polyfills_vmap

    entries.append((polyfills_vmap.vmap_in_graph, (kinds.MARKER_VMAP, None)))
    functorch_vmap = sys.modules.get("torch._functorch.vmap")
    if functorch_vmap is not None and getattr(functorch_vmap, "vmap_impl", None) is not None:
        # Every torch.vmap / torch.func.vmap call goes through it.
        entries.append((functorch_vmap.vmap_impl, (kinds.MARKER_INLINE, polyfills_vmap.vmap_impl)))
    entries.append((collections.namedtuple, (kinds.MARKER_NAMEDTUPLE, None)))
    entries.append(
        (polyfills_torch_function.disable_subclass_dispatch, (kinds.MARKER_TF_DISABLE, None))
    )
    entries.extend((fn, (kinds.MARKER_RANDOM, None)) for fn in _random_functions())
    entries.extend(
        (fn, _brk(f"random.{fn.__name__}() draws at run time (a sequence, not one number)"))
        for fn in _random_functions(_RANDOM_SEQUENCES)
    )
    compiler = sys.modules.get("torch.compiler")
    if compiler is not None:
        for name in ("is_compiling", "is_dynamo_compiling"):
            fn = getattr(compiler, name, None)
            if fn is not None:
                entries.append((fn, (kinds.MARKER_CONST, True)))
        fn = getattr(compiler, "disable", None)
        if fn is not None:
            entries.append((fn, _brk(_direct_disable("torch.compiler.disable"))))
    utils = sys.modules.get(_EXTERNAL_UTILS)
    if utils is not None and getattr(utils, "is_compiling", None) is not None:
        entries.append((utils.is_compiling, (kinds.MARKER_CONST, True)))
    ct = sys.modules.get(_COMPTIME)
    if ct is not None and getattr(ct, "comptime", None) is not None:
        entries.append((ct.comptime, (kinds.MARKER_COMPTIME, None)))
    dec = sys.modules.get(_DECORATORS)
    if dec is not None:
        for name, action in (
            ("graph_break", _brk("call to torch._dynamo.graph_break()", msg=True)),
            (
                "step_unsupported",
                (
                    kinds.MARKER_STEP_UNSUPPORTED,
                    ("call to torch._dynamo.step_unsupported()", True),
                ),
            ),
            (
                "skip_frame",
                (kinds.MARKER_SKIP, ("call to torch._dynamo.skip_frame()", True)),
            ),
            ("disable", _brk(_direct_disable("torch._dynamo.disable"))),
            ("nonstrict_trace", (kinds.MARKER_INLINE, polyfills.nonstrict_trace)),
            ("patch_dynamo_config", (kinds.MARKER_INLINE, polyfills.PatchDynamoConfig)),
            ("error_on_graph_break", (kinds.MARKER_EOGB_CTOR, None)),
        ):
            fn = getattr(dec, name, None)
            if fn is not None:
                entries.append((fn, action))
    return {id(obj): (obj, action) for obj, action in entries}


# `random` module functions whose result is a number drawn from the module's generator: in
# the graph, an input drawn again on every call (`GraphBuilder.random_value`).
_RANDOM_NUMBERS = (
    "random",
    "randint",
    "randrange",
    "uniform",
    "triangular",
    "gauss",
    "normalvariate",
    "lognormvariate",
    "expovariate",
    "vonmisesvariate",
    "gammavariate",
    "betavariate",
    "paretovariate",
    "weibullvariate",
    "getrandbits",
    "choice",  # of a constant sequence of numbers: the number drawn
)


# What the trace runs on a `random.Random(seed)` it made itself (interp/random_objects.rs).
RANDOM_METHODS: frozenset[str] = frozenset(_RANDOM_NUMBERS) | {"seed", "getstate", "setstate"}


# `random` module functions that draw several numbers into a sequence (or reorder one in
# place): a graph break at the call, where inlining them broke inside their draw loops (a
# resume function per draw, recompiling as the loop went on).
_RANDOM_SEQUENCES = ("shuffle", "sample", "choices")


def _random_functions(names: tuple[str, ...] = _RANDOM_NUMBERS) -> list[Any]:
    """The `random` module's own bound functions (on its hidden `Random` instance), while
    that instance is a plain `random.Random` and the function is still its own."""
    import random

    inst = getattr(random, "_inst", None)
    if type(inst) is not random.Random:
        return []
    out = []
    for name in names:
        fn = getattr(random, name, None)
        if fn is not None and getattr(fn, "__self__", None) is inst:
            out.append(fn)
    return out


def _brk(reason: str, *, msg: bool = False) -> Action:
    """A graph break with this reason; `msg`: a constant first argument (graph_break's
    `msg`) is added to it."""
    return kinds.MARKER_BREAK, (reason, msg)


def _direct_disable(name: str) -> str:
    return f"call to {name} inside the compiled region (apply it outside, to the function)"


def _lookup_table(obj: Any) -> Action | None:
    global _table, _table_key
    if _table_key != _ALL_LOADED:
        mods = sys.modules
        key = (
            "torch.compiler" in mods,
            _EXTERNAL_UTILS in mods,
            _DECORATORS in mods,
            _COMPTIME in mods,
        )
        if key != _table_key:
            _table = _build_table()
            _table_key = key
    hit = _table.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    return None


def _registered(obj: Any, set_name: str) -> bool:
    """Whether `obj` is in one of torch's trace_rules id sets (allow_in_graph,
    disallow_in_graph), without initializing the set."""
    rules = sys.modules.get(_TRACE_RULES)
    if rules is None:
        return False
    ids = getattr(getattr(rules, set_name, None), "function_ids", None)
    return is_a(ids, set) and id(obj) in ids


def allowed_in_graph(obj: Any) -> bool:
    """Registered with torch.compiler.allow_in_graph (or torch._dynamo.allow_in_graph)."""
    return _registered(obj, "_allowed_callable_ids") and not _registered(
        obj, "_disallowed_callable_ids"
    )


def _function_action(fn: types.FunctionType, describe: Any) -> Action | None:
    d = fn.__dict__
    if d.get("_torchdynamo_disable"):
        orig = d.get("_torchdynamo_orig_callable")
        what = "torch._dynamo.skip" if orig is None else "torch.compiler.disable"
        if d.get("_torchdynamo_disable_recursive") is False:
            what += "(recursive=False)"
        reason = f"call to {describe(fn)}, a function marked {what}"
        msg = d.get("_torchdynamo_disable_msg")
        if is_a(msg, str) and msg:
            reason += f" ({msg})"
        return _brk(reason)
    if d.get("_dynamo_marked_constant"):
        return kinds.MARKER_ASSUME_CONSTANT, None
    inline = d.get("_torchdynamo_inline")
    if inline is not None and d.get("_torchdynamo_wrapper_id") == id(fn):
        # A torch.compile / torch._dynamo.optimize wrapper (not a copy of its __dict__ made
        # by functools.wraps): trace what torch.compile would inline in its place.
        return kinds.MARKER_INLINE, inline
    mod = fn.__module__
    if (
        is_a(mod, str)
        and mod.startswith("torch._dynamo")
        and not mod.startswith(_DYNAMO_INLINED)
        and fn.__name__ not in _DYNAMO_INLINED_NAMES
        and not _is_patched_module_init(fn)
    ):
        return _brk(f"call to {describe(fn)} (torch.compile does not trace it)")
    return None


def _is_patched_module_init(fn: Any) -> bool:
    """torch._dynamo's wrapper of `nn.Module.__init__` (installed when it is imported): the
    tracer traces the original it wraps in its place (`realize.rs`), as torch.compile does."""
    return fn.__name__ == "patched_init" and fn is torch.nn.Module.__init__


def _action(obj: Any, describe: Any) -> Action | None:
    hit = _lookup_table(obj)
    if hit is not None:
        return hit
    t = type(obj)
    if t is types.FunctionType:
        act = _function_action(obj, describe)
        if act is not None:
            return act
    elif t is types.BuiltinFunctionType:
        owner = obj.__self__
        if obj.__name__ == "apply" and _is_autograd_function(owner):
            # `Fn.apply` of a user torch.autograd.Function: traced through its polyfill.
            from .. import polyfills

            return kinds.MARKER_INLINE, functools.partial(polyfills.autograd_function_apply, owner)
        mod = getattr(owner, "__name__", None)
        if is_a(mod, str) and mod.startswith("torch._C._dynamo"):
            return _brk(f"call to {describe(obj)} (torch.compile does not trace torch._C._dynamo)")
    elif _is_eogb_object(obj):
        return kinds.MARKER_EOGB_CTX, bool(obj.error_on_graph_break)
    elif t is ErrorOnBreakExit:
        return kinds.MARKER_EOGB_EXIT, obj.prev
    if _registered(obj, "_disallowed_callable_ids"):
        return _brk(f"call to {describe(obj)}, a function marked torch._dynamo.disallow_in_graph")
    return None


def _is_autograd_function(cls: Any) -> bool:
    """A subclass of torch.autograd.Function that keeps torch's own `apply`."""
    import torch

    base = torch.autograd.Function
    return (
        is_a(cls, type)
        and cls is not base
        and issubclass(cls, base)
        and inspect.getattr_static(cls, "apply", None) is base.__dict__.get("apply")
    )


def _is_eogb_object(obj: Any) -> bool:
    dec = sys.modules.get(_DECORATORS)
    cls = getattr(dec, "ErrorOnGraphBreakDecoratorContextManager", None)
    return cls is not None and type(obj) is cls


def _describe(obj: Any) -> str:
    from .classify import describe

    return describe(obj)


def is_marker(obj: Any) -> bool:
    return _action(obj, _describe) is not None


def marker_action(obj: Any) -> Action:
    """What calling (or, for an error_on_graph_break object, entering) `obj` does:
    (MARKER_BREAK, MARKER_SKIP or MARKER_STEP_UNSUPPORTED,
     (reason, whether graph_break's `msg` joins it)),
    (MARKER_CONST, value),
    (MARKER_EOGB_CTOR, None), (MARKER_EOGB_CTX, flag), (MARKER_EOGB_EXIT, previous flag),
    (MARKER_INLINE, the function to trace instead),
    (MARKER_ASSUME_CONSTANT, None): an assume_constant_result function,
    (MARKER_AUTOGRAD_APPLY, None): `polyfills.apply_in_graph`,
    (MARKER_COMPTIME, None): `torch._dynamo.comptime.comptime`,
    (MARKER_NAMEDTUPLE, None): `collections.namedtuple`,
    (MARKER_TF_DISABLE, None): `polyfills_torch_function.disable_subclass_dispatch`,
    (MARKER_RANDOM, None): a `random` module function drawing a number."""
    act = _action(obj, _describe)
    if act is None:  # classified as a marker, then changed: be safe
        return _brk(f"call to {_describe(obj)}")
    return act


def initial_error_on_graph_break() -> bool:
    """torch's error_on_graph_break setting outside any traced region (set by an
    eagerly entered `torch._dynamo.error_on_graph_break(True)` block); False when
    torch._dynamo is not loaded."""
    utils = sys.modules.get(_DYNAMO_UTILS)
    getter = getattr(utils, "_get_error_on_graph_break", None)
    if getter is None:
        return False
    try:
        return bool(getter())
    except Exception:  # noqa: BLE001 - a private torch helper; default when it changes
        return False
