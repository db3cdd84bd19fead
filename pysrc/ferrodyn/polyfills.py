"""Pure-Python equivalents of C builtins and library functions, traced in their place.

When traced code calls one of the originals in `POLYFILLS` (`itertools.chain`,
`functools.reduce`, ...), the interpreter inlines the polyfill instead, so the call stays in
the graph rather than breaking at an opaque C function. Each polyfill follows CPython's
semantics for the values it returns, the order in which it consumes its inputs (lazy where
the original is lazy) and the exceptions it raises. Iterator types become generators (their
`type()` differs; nothing else the traced code can observe does).

These functions are ferrodyn's own code: they are traced, never offered to the frame hook.
"""

from __future__ import annotations

import copy
import functools
import itertools
import operator
import sys
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch

from .polyfills_itertools import (
    accumulate,
    chain,
    chain_from_iterable,
    combinations,
    compress,
    count,
    cycle,
    dropwhile,
    filterfalse,
    groupby,
    islice,
    pairwise,
    permutations,
    product,
    repeat,
    starmap,
    takewhile,
    zip_longest,
)

_MISSING: Any = object()


# -- builtins ---------------------------------------------------------------------------------


# CPython's message for `max([])`/`min([])` (3.12 reworded it).
_EMPTY_MIN_MAX = (
    "arg is an empty sequence" if sys.version_info < (3, 12) else "iterable argument is empty"
)


def _min_max(name: str, args: tuple[Any, ...], key: Any, default: Any, better: Any) -> Any:
    if not args:
        raise TypeError(f"{name} expected at least 1 argument, got 0")
    if len(args) == 1:
        items = args[0]
    else:
        if default is not _MISSING:
            raise TypeError(
                f"Cannot specify a default for {name}() with multiple positional arguments"
            )
        items = args
    best: Any = _MISSING
    best_key: Any = None
    for item in items:
        k = item if key is None else key(item)
        # The first of equal candidates wins, as in CPython (strict comparison).
        if best is _MISSING or better(k, best_key):
            best, best_key = item, k
    if best is _MISSING:
        if default is not _MISSING:
            return default
        raise ValueError(f"{name}() {_EMPTY_MIN_MAX}")
    return best


def max_(*args: Any, key: Any = None, default: Any = _MISSING) -> Any:
    """`max(...)` with `key=`/`default=`."""
    return _min_max("max", args, key, default, operator.gt)


def min_(*args: Any, key: Any = None, default: Any = _MISSING) -> Any:
    """`min(...)` with `key=`/`default=`."""
    return _min_max("min", args, key, default, operator.lt)


# -- functools --------------------------------------------------------------------------------
def reduce(function: Callable[[Any, Any], Any], iterable: Iterable[Any], *initial: Any) -> Any:
    if len(initial) > 1:
        raise TypeError(f"reduce expected at most 3 arguments, got {2 + len(initial)}")
    it = iter(iterable)
    if initial:
        value = initial[0]
    else:
        try:
            value = next(it)
        except StopIteration:
            raise TypeError("reduce() of empty iterable with no initial value") from None
    for element in it:
        value = function(value, element)
    return value


def update_wrapper(
    wrapper: Any,
    wrapped: Any,
    assigned: tuple[str, ...] = functools.WRAPPER_ASSIGNMENTS,
    updated: tuple[str, ...] = functools.WRAPPER_UPDATES,
) -> Any:
    # CPython's, but `wrapper.__dict__.update(...)` is done attribute by attribute (the
    # traced function's namespace is its attributes).
    for attr in assigned:
        try:
            value = getattr(wrapped, attr)
        except AttributeError:
            pass
        else:
            setattr(wrapper, attr, value)
    for attr in updated:
        if attr == "__dict__":
            for k, v in getattr(wrapped, "__dict__", {}).items():
                setattr(wrapper, k, v)
        else:
            getattr(wrapper, attr).update(getattr(wrapped, attr, {}))
    wrapper.__wrapped__ = wrapped
    return wrapper


_warned_lru: set[str] = set()


# -- copy / pickle -----------------------------------------------------------------------------
class FakeId(int):
    """What `id()` gives in a trace for an object created there (it has no address yet): an
    int that works as a dict key and compares by identity of the traced object, as
    `copy.deepcopy`'s memo needs. The tracer refuses to let one leave the trace."""

    __slots__ = ()


class _PendingTraceback:
    """Stands for the traceback of an exception raised in a trace (`sys.exc_info()[2]`):
    it is not None, and any other use of it breaks the graph."""

    __slots__ = ()


PENDING_TRACEBACK = _PendingTraceback()


_PLAIN_STATE_EXCLUDED = (list, dict, set, frozenset, tuple, int, float, complex, str, bytes)


def object_reduce_ex(self: Any, protocol: int) -> Any:
    """`object.__reduce_ex__(self, protocol)` for a user object whose class keeps object's
    reduction (copyreg's protocol-2 form: `(copyreg.__newobj__, (cls,), state, None, None)`,
    the state being the instance dict itself, or None when it is empty)."""
    import copyreg

    cls = type(self)
    plain = (
        protocol >= 2
        and cls.__reduce__ is object.__reduce__
        and cls.__getstate__ is object.__getstate__
        and not hasattr(cls, "__getnewargs_ex__")
        and not hasattr(cls, "__getnewargs__")
        and not hasattr(cls, "__slots__")
        and not isinstance(self, _PLAIN_STATE_EXCLUDED)
    )
    if not plain:
        return _native_reduce_ex(self, protocol)
    state = self.__dict__
    return (copyreg.__newobj__, (cls,), state if state else None, None, None)


def _native_reduce_ex(self: Any, protocol: int) -> Any:
    return object.__reduce_ex__(self, protocol)


def copy_reconstruct(
    x: Any,
    memo: Any,
    func: Any,
    args: Any,
    state: Any = None,
    listiter: Any = None,
    dictiter: Any = None,
    *,
    deepcopy: Any = copy.deepcopy,
) -> Any:
    # copy._reconstruct, except that an instance-dict state is stored key by key past the
    # class's __setattr__ (what `y.__dict__.update(state)` does), so a new object's
    # attributes stay in the tracer's side-effect store.
    deep = memo is not None
    if deep and args:
        args = tuple(deepcopy(arg, memo) for arg in args)
    y = func(*args)
    if deep:
        memo[id(x)] = y
    if state is not None:
        if deep:
            state = deepcopy(state, memo)
        if hasattr(y, "__setstate__"):
            y.__setstate__(state)
        else:
            if isinstance(state, tuple) and len(state) == 2:
                state, slotstate = state
            else:
                slotstate = None
            if state is not None:
                _update_instance_dict(y, state)
            if slotstate is not None:
                for key, value in slotstate.items():
                    setattr(y, key, value)
    if listiter is not None:
        for item in listiter:
            if deep:
                item = deepcopy(item, memo)
            y.append(item)
    if dictiter is not None:
        for key, value in dictiter:
            if deep:
                key = deepcopy(key, memo)
                value = deepcopy(value, memo)
            y[key] = value
    return y


def _update_instance_dict(y: Any, state: Any) -> None:
    cls = type(y)
    for key, value in state.items():
        # A data descriptor of that name (or a non-str key) is not an attribute store.
        if type(key) is not str or (
            hasattr(cls, key) and hasattr(type(getattr(cls, key)), "__set__")
        ):
            y.__dict__.update({key: value})
        else:
            object.__setattr__(y, key, value)


def warn_lru_cache(wrapper: Any) -> None:
    """Once per function: a `functools.lru_cache` function is traced through `__wrapped__`,
    so its cache is neither read nor filled by compiled calls (torch's own are silent)."""
    module = getattr(wrapper, "__module__", "") or ""
    name = f"{module}.{getattr(wrapper, '__qualname__', '?')}"
    if module == "torch" or module.startswith("torch.") or name in _warned_lru:
        return
    _warned_lru.add(name)
    warnings.warn(
        f"ferrodyn traces the lru_cache-decorated function {name} through __wrapped__: "
        "its cache is ignored inside compiled code",
        UserWarning,
        stacklevel=2,
    )


# The originals, by object, and what is traced in their place.
# -- torch.nn loss modules built in the trace ----------------------------------------------
def cross_entropy_loss(
    weight: Any = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Callable[[Any, Any], Any]:
    """`nn.CrossEntropyLoss(...)` made inside the compiled region: no module is created; the
    result, called on `(input, target)`, is one `F.cross_entropy` with these options (the
    module's own forward with its defaults, as torch.compile does)."""
    F = torch.nn.functional

    def loss(input: Any, target: Any) -> Any:
        return F.cross_entropy(
            input,
            target,
            weight=weight,
            size_average=size_average,
            ignore_index=ignore_index,
            reduce=reduce,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )

    return loss


def unsupported(msg: str) -> None:
    """Called by a polyfill where the trace must break: ferrodyn treats the call as a graph
    break with `msg` as its reason (`variables/markers.py`); eagerly it does nothing."""


# -- torch's legacy tensor constructors --------------------------------------------------
def _legacy_tensor(data: Any, dtype: Any) -> Any:
    if not isinstance(data, (list, tuple)):
        unsupported("a legacy tensor constructor called with other than one list or tuple")
    if any(isinstance(v, torch.Tensor) for v in data):
        # The constructor copies the values: no autograd history.
        return torch.stack([torch.as_tensor(v) for v in data]).detach().to(dtype)
    return torch.tensor(data, dtype=dtype)


def tensor_constructor(*args: Any, **kwargs: Any) -> Any:
    """`torch.Tensor([...])` inside the region: a tensor of the default dtype holding the
    items (the sizes form `torch.Tensor(2, 3)` and keyword forms break)."""
    if kwargs or len(args) != 1:
        unsupported("torch.Tensor() with other than one list or tuple")
    return _legacy_tensor(args[0], torch.get_default_dtype())


def _typed_constructor(dtype: Any) -> Callable[..., Any]:
    def construct(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != 1:
            unsupported("a legacy typed tensor constructor with other than one list or tuple")
        return _legacy_tensor(args[0], dtype)

    return construct


_LEGACY_TYPED: dict[Any, Callable[..., Any]] = {
    torch.FloatTensor: _typed_constructor(torch.float32),
    torch.DoubleTensor: _typed_constructor(torch.float64),
    torch.HalfTensor: _typed_constructor(torch.float16),
    torch.BFloat16Tensor: _typed_constructor(torch.bfloat16),
    torch.LongTensor: _typed_constructor(torch.int64),
    torch.IntTensor: _typed_constructor(torch.int32),
    torch.ShortTensor: _typed_constructor(torch.int16),
    torch.CharTensor: _typed_constructor(torch.int8),
    torch.ByteTensor: _typed_constructor(torch.uint8),
    torch.BoolTensor: _typed_constructor(torch.bool),
}


# -- warnings -----------------------------------------------------------------------------
class CatchWarnings:
    """`warnings.catch_warnings()` made inside the compiled region (as torch.compile does):
    the graph does not touch the warnings filters, so entering and leaving are no-ops there.
    It never outlives the trace (`TRACE_ONLY`): a graph break inside its block, or one that
    is returned or stored, makes eager run the real one. Options that change the filters
    on entry (`record`, `module`, `action`) break at once."""

    def __init__(
        self,
        *,
        record: bool = False,
        module: Any = None,
        action: Any = None,
        category: Any = Warning,
        lineno: int = 0,
        append: bool = False,
    ) -> None:
        if record or module is not None or action is not None:
            unsupported("warnings.catch_warnings() that records or sets a filter")

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# -- types.MappingProxyType ------------------------------------------------------------------
class MappingProxy:
    """`types.MappingProxyType(mapping)` made inside the compiled region: a live, read-only
    view of the mapping (writes to the mapping are seen through it). A stand-in
    (`TRACE_ONLY`): returned or stored, eager makes the real one."""

    def __init__(self, mapping: Any) -> None:
        if not isinstance(mapping, dict):
            unsupported("types.MappingProxyType of something other than a dict")
        self._mapping = mapping

    def __getitem__(self, key: Any) -> Any:
        return self._mapping[key]

    def __len__(self) -> int:
        return len(self._mapping)

    def __contains__(self, key: Any) -> bool:
        return key in self._mapping

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping)

    def keys(self) -> Any:
        return self._mapping.keys()

    def values(self) -> Any:
        return self._mapping.values()

    def items(self) -> Any:
        return self._mapping.items()

    def get(self, key: Any, default: Any = None) -> Any:
        return self._mapping.get(key, default)

    def copy(self) -> Any:
        return self._mapping.copy()


# -- torch._dynamo decorators called inside the region ------------------------------------
def nonstrict_trace(traceable_fn: Any) -> Any:
    """`torch._dynamo.nonstrict_trace(fn)` called inside the compiled region on a function
    defined outside it: its calls are traced as they are (values equal; torch.compile makes
    one graph too). A function defined inside the region breaks, as torch.compile does."""
    if "<locals>" in traceable_fn.__qualname__:
        unsupported("torch._dynamo.nonstrict_trace of a function defined in the region")
    return traceable_fn


class PatchDynamoConfig:
    """`torch._dynamo.patch_dynamo_config(...)` used as a `with` block inside the region: the
    graph does not read torch._dynamo's config, so entering and leaving are no-ops there. A
    stand-in (`TRACE_ONLY`): used any other way, eager runs the real one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


# -- nn.Module.__call__ with forward hooks --------------------------------------------------
def module_call_with_hooks(module: Any, *args: Any, **kwargs: Any) -> Any:
    """`module(*args, **kwargs)` for a module with forward pre-hooks or forward hooks (and no
    backward hooks): what `nn.Module._call_impl` does, traced as torch.compile traces it
    (hooks and forward inlined, in order). Global module hooks break before this."""
    for hook_id, hook in module._forward_pre_hooks.items():
        if hook_id in module._forward_pre_hooks_with_kwargs:
            args_kwargs = hook(module, args, kwargs)
            if args_kwargs is not None:
                if isinstance(args_kwargs, tuple) and len(args_kwargs) == 2:
                    args, kwargs = args_kwargs
                else:
                    raise RuntimeError(
                        "forward pre-hook must return None or a tuple of (new_args, new_kwargs),"
                        f" but got {args_kwargs}."
                    )
        else:
            new_args = hook(module, args)
            if new_args is not None:
                if not isinstance(new_args, tuple):
                    new_args = (new_args,)
                args = new_args
    result = module.forward(*args, **kwargs)
    for hook_id, hook in module._forward_hooks.items():
        if hook_id in module._forward_hooks_with_kwargs:
            hook_result = hook(module, args, kwargs, result)
        else:
            hook_result = hook(module, args, result)
        if hook_result is not None:
            result = hook_result
    return result


# -- torch.autograd.Function ----------------------------------------------------------------
class AutogradFunctionCtx:
    """The `ctx` a traced `forward` (or `setup_context`) of a user `torch.autograd.Function`
    receives: what `forward` records on it is only read by `backward`, which the graph's
    `Fn.apply` node (or nothing, when no gradient is needed) takes care of. A stand-in
    (`TRACE_ONLY`): it never leaves the trace."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors: Any) -> None:
        self.saved_for_forward = tensors

    def mark_dirty(self, *args: Any) -> None:
        return None

    def mark_non_differentiable(self, *args: Any) -> None:
        return None

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value


_BASE_SETUP_CONTEXT = torch.autograd.function._SingleLevelFunction.setup_context


def autograd_function_forward(
    cls: Any, needs_input_grad: tuple[bool, ...], *args: Any, **kwargs: Any
) -> Any:
    """What `Fn.apply(*args)` computes: `forward` with a stand-in ctx (or `forward` then
    `setup_context`, for functions that define it)."""
    ctx = AutogradFunctionCtx(needs_input_grad)
    if cls.setup_context is _BASE_SETUP_CONTEXT:
        return cls.forward(ctx, *args, **kwargs)
    out = cls.forward(*args, **kwargs)
    cls.setup_context(ctx, args, out)
    return out


def autograd_function_apply(cls: Any, *args: Any, **kwargs: Any) -> Any:
    """`torch.autograd.Function.apply` on a user subclass, as torch.compile traces it: when
    no input needs a gradient, `forward` is traced in place (its ops join the graph);
    otherwise the graph gets one node calling `Fn.apply` (`apply_in_graph`), after
    `forward` was traced once to prove it traceable and free of side effects."""
    grad = torch.is_grad_enabled()
    needs = tuple(grad and isinstance(a, torch.Tensor) and a.requires_grad for a in args)
    if not any(needs):
        return autograd_function_forward(cls, needs, *args, **kwargs)
    base = torch.autograd.Function
    if cls.jvp is not base.jvp or cls.vjp is not base.vjp:
        unsupported("a torch.autograd.Function with a custom jvp or vjp (torch.compile breaks too)")
    return apply_in_graph(cls, needs, *args, **kwargs)


def apply_in_graph(cls: Any, needs_input_grad: tuple[bool, ...], *args: Any, **kwargs: Any) -> Any:
    """A marker (`variables/markers.py`): the tracer speculates `autograd_function_forward`
    and records one graph node calling `autograd_apply_target(cls)`. Never run."""
    return cls.apply(*args, **kwargs)


_APPLY_TARGETS: weakref.WeakKeyDictionary[Any, Callable[..., Any]] = weakref.WeakKeyDictionary()


def autograd_apply_target(cls: Any) -> Callable[..., Any]:
    """The graph node's target for `cls.apply` (one plain function per class: FX cannot
    name a classmethod of a local class)."""
    fn = _APPLY_TARGETS.get(cls)
    if fn is None:

        def fn(*args: Any, **kwargs: Any) -> Any:
            return cls.apply(*args, **kwargs)

        fn.__name__ = fn.__qualname__ = f"{cls.__name__}_apply"
        _APPLY_TARGETS[cls] = fn
    return fn


# -- torch.distributed collectives -------------------------------------------------------
def _at_trace_time(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn` at trace time on constant arguments (as `assume_constant_result` does)."""
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


@_at_trace_time
def _collective_names(op: Any, group: Any) -> tuple[str, str, int]:
    """The functional collectives' names for a reduce op and a process group (None: the
    default group), and the group's size."""
    import torch.distributed as dist
    from torch.distributed import _functional_collectives as funcol

    op_name = op.lower() if isinstance(op, str) else op.name.lower()
    pg = group if group is not None else dist.group.WORLD
    return op_name, str(funcol._resolve_group_name(pg)), dist.get_world_size(pg)


def dist_all_reduce(tensor: Any, op: Any = None, group: Any = None, async_op: bool = False) -> Any:
    """`dist.all_reduce(t)` inside the region: the functional collective, waited on and
    copied back into `t` (what torch.compile rewrites it to); `async_op=True` breaks."""
    if async_op:
        unsupported("dist.all_reduce with async_op=True (torch.compile breaks there too)")
    op_name, group_name, _ = _collective_names("sum" if op is None else op, group)
    out = torch.ops._c10d_functional.all_reduce(tensor, op_name, group_name)
    out = torch.ops._c10d_functional.wait_tensor(out)
    tensor.copy_(out)


def dist_all_gather_into_tensor(
    output_tensor: Any, input_tensor: Any, group: Any = None, async_op: bool = False
) -> Any:
    """`dist.all_gather_into_tensor(out, t)`: the functional all-gather, copied into `out`."""
    if async_op:
        unsupported("dist.all_gather_into_tensor with async_op=True (torch.compile breaks too)")
    _, group_name, size = _collective_names("sum", group)
    out = torch.ops._c10d_functional.all_gather_into_tensor(input_tensor, size, group_name)
    out = torch.ops._c10d_functional.wait_tensor(out)
    output_tensor.copy_(out)


def dist_all_gather(
    tensor_list: Any, tensor: Any, group: Any = None, async_op: bool = False
) -> Any:
    """`dist.all_gather(tensors, t)`: the functional all-gather of `t`, one chunk copied
    into each tensor of the list."""
    if async_op:
        unsupported("dist.all_gather with async_op=True (torch.compile breaks too)")
    _, group_name, size = _collective_names("sum", group)
    out = torch.ops._c10d_functional.all_gather_into_tensor(tensor, size, group_name)
    out = torch.ops._c10d_functional.wait_tensor(out)
    for dst, src in zip(tensor_list, out.chunk(size), strict=True):
        dst.copy_(src)


def dist_reduce_scatter_tensor(
    output: Any, input: Any, op: Any = None, group: Any = None, async_op: bool = False
) -> Any:
    """`dist.reduce_scatter_tensor(out, t)`: the functional reduce-scatter, copied into
    `out`."""
    if async_op:
        unsupported("dist.reduce_scatter_tensor with async_op=True (torch.compile breaks too)")
    op_name, group_name, size = _collective_names("sum" if op is None else op, group)
    out = torch.ops._c10d_functional.reduce_scatter_tensor(input, op_name, size, group_name)
    out = torch.ops._c10d_functional.wait_tensor(out)
    output.copy_(out)


def dist_all_to_all_single(
    output: Any,
    input: Any,
    output_split_sizes: Any = None,
    input_split_sizes: Any = None,
    group: Any = None,
    async_op: bool = False,
) -> Any:
    """`dist.all_to_all_single(out, t)`: the functional all-to-all (equal splits of the
    first dimension unless sizes are given), copied into `out`."""
    if async_op:
        unsupported("dist.all_to_all_single with async_op=True (torch.compile breaks too)")
    _, group_name, size = _collective_names("sum", group)
    if output_split_sizes is None and input_split_sizes is None:
        output_split_sizes = [input.shape[0] // size] * size
        input_split_sizes = output_split_sizes
    elif output_split_sizes is None or input_split_sizes is None:
        unsupported("dist.all_to_all_single with only one of the split sizes given")
    out = torch.ops._c10d_functional.all_to_all_single(
        input, output_split_sizes, input_split_sizes, group_name
    )
    out = torch.ops._c10d_functional.wait_tensor(out)
    output.copy_(out)


def dist_reduce_scatter(
    output: Any, input_list: Any, op: Any = None, group: Any = None, async_op: bool = False
) -> Any:
    """`dist.reduce_scatter(out, [t0, t1, ...])`: the inputs concatenated, reduce-scattered,
    copied into `out`."""
    if async_op:
        unsupported("dist.reduce_scatter with async_op=True (torch.compile breaks too)")
    op_name, group_name, size = _collective_names("sum" if op is None else op, group)
    if output.dim() == 0:
        unsupported("dist.reduce_scatter of scalar tensors")
    out = torch.ops._c10d_functional.reduce_scatter_tensor(
        torch.cat(input_list), op_name, size, group_name
    )
    out = torch.ops._c10d_functional.wait_tensor(out)
    output.copy_(out)


def random_with_state(state: Any) -> Any:
    """A `random.Random` in `state`: how a generator made in the compiled region leaves it."""
    import random

    gen = random.Random()
    gen.setstate(state)
    return gen


# Tensor subclasses' __torch_function__: polyfills_torch_function.py (after _at_trace_time,
# which it uses).
from .polyfills_torch_function import (
    DisableTorchFunctionSubclass,
    disabled_torch_function_impl,
    tensor_torch_function,
)

POLYFILLS: dict[Any, Callable[..., Any]] = {
    functools.reduce: reduce,
    functools.update_wrapper: update_wrapper,
    copy._reconstruct: copy_reconstruct,  # type: ignore[attr-defined]
    itertools.chain: chain,
    itertools.chain.from_iterable: chain_from_iterable,
    itertools.count: count,
    itertools.repeat: repeat,
    itertools.islice: islice,
    itertools.accumulate: accumulate,
    itertools.zip_longest: zip_longest,
    itertools.pairwise: pairwise,
    itertools.product: product,
    itertools.takewhile: takewhile,
    itertools.dropwhile: dropwhile,
    itertools.starmap: starmap,
    itertools.filterfalse: filterfalse,
    itertools.compress: compress,
    itertools.combinations: combinations,
    itertools.permutations: permutations,
    itertools.groupby: groupby,
    itertools.cycle: cycle,
    torch.nn.CrossEntropyLoss: cross_entropy_loss,
    warnings.catch_warnings: CatchWarnings,
    types.MappingProxyType: MappingProxy,
    torch.Tensor: tensor_constructor,
    torch.Tensor.__torch_function__.__func__: tensor_torch_function,  # type: ignore[attr-defined]
    torch._C._disabled_torch_function_impl: disabled_torch_function_impl,
    torch._C.DisableTorchFunctionSubclass: DisableTorchFunctionSubclass,
    torch._C.DisableTorchFunction: DisableTorchFunctionSubclass,
    **_LEGACY_TYPED,
}
if torch.distributed.is_available():
    POLYFILLS[torch.distributed.all_reduce] = dist_all_reduce
    POLYFILLS[torch.distributed.all_gather_into_tensor] = dist_all_gather_into_tensor
    POLYFILLS[torch.distributed.all_gather] = dist_all_gather
    POLYFILLS[torch.distributed.reduce_scatter_tensor] = dist_reduce_scatter_tensor
    POLYFILLS[torch.distributed.all_to_all_single] = dist_all_to_all_single
    POLYFILLS[torch.distributed.reduce_scatter] = dist_reduce_scatter
    for _legacy, _polyfill in (
        ("_all_gather_base", dist_all_gather_into_tensor),
        ("_reduce_scatter_base", dist_reduce_scatter_tensor),
    ):
        if hasattr(torch.distributed, _legacy):
            POLYFILLS[getattr(torch.distributed, _legacy)] = _polyfill

# What polyfills make in place of real objects: the code of the loss closure of
# `cross_entropy_loss`, and the stand-in classes. Such a value must not leave the trace (be
# returned, stored, or live across a graph break), where it would be seen instead of the
# object eager makes: that is a graph break.
TRACE_ONLY: frozenset[Any] = frozenset(
    [
        *(c for c in cross_entropy_loss.__code__.co_consts if isinstance(c, type(reduce.__code__))),
        CatchWarnings,
        PatchDynamoConfig,
        MappingProxy,
        AutogradFunctionCtx,
        DisableTorchFunctionSubclass,
    ]
)


def inert_hook_handle() -> Any:
    """A hook handle whose removal does nothing: what a handle registered and removed inside
    a compiled region becomes when it escapes (the hook was never installed)."""
    import collections

    from torch.utils.hooks import RemovableHandle

    return RemovableHandle(collections.OrderedDict())
