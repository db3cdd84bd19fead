"""Polyfills for tensor subclasses' `__torch_function__` (checklist item 50): what torch's
own `Tensor.__torch_function__`, `torch._C._disabled_torch_function_impl` and
`torch._C.DisableTorchFunctionSubclass()` do, written so the interpreter can trace them
(`rust/interp/tensor_subclass.rs` routes each torch call on a subclass tensor here)."""

from __future__ import annotations

from typing import Any

import torch

from .polyfills import _at_trace_time


def disable_subclass_dispatch(delta: int) -> None:
    """Marker (`MARKER_TF_DISABLE`): in the trace, `delta` more (or, negative, fewer)
    `DisableTorchFunctionSubclass` blocks are open; subclass tensors then act as plain
    ones. Called natively it does nothing."""
    return


class DisableTorchFunctionSubclass:
    """`torch._C.DisableTorchFunctionSubclass()` / `torch._C.DisableTorchFunction()` made
    inside the compiled region: entering turns subclass `__torch_function__` dispatch off in
    the trace, leaving turns it back on. Never outlives the trace (`TRACE_ONLY`)."""

    def __enter__(self) -> None:
        disable_subclass_dispatch(1)

    def __exit__(self, *exc_info: object) -> None:
        disable_subclass_dispatch(-1)


@_at_trace_time
def _tf_getter_name(func: Any) -> str | None:
    from .variables.tensor_subclass import getter_name

    return getter_name(func)


@_at_trace_time
def _tf_no_wrap(func: Any) -> bool:
    from .variables.tensor_subclass import no_wrap

    return no_wrap(func)


def _tf_convert(ret: Any, cls: Any) -> Any:
    if cls is torch.Tensor:
        return ret
    if isinstance(ret, torch.Tensor) and not isinstance(ret, cls):
        return ret.as_subclass(cls)
    if isinstance(ret, (tuple, list)):
        return type(ret)([_tf_convert(r, cls) for r in ret])
    return ret


def _tf_call(func: Any, args: Any, kwargs: Any) -> Any:
    name = _tf_getter_name(func)
    if name is not None:
        return getattr(args[0], name)
    return func(*args, **kwargs)


def tensor_torch_function(
    cls: Any, func: Any, types: Any, args: Any = (), kwargs: Any = None
) -> Any:
    """`torch.Tensor.__torch_function__` (what a subclass's `super().__torch_function__`
    runs), traced: the call with subclass dispatch off, its tensors made instances of
    `cls` again (unless torch returns that function's results unwrapped)."""
    if kwargs is None:
        kwargs = {}
    for t in types:
        if not issubclass(cls, t):
            return NotImplemented
    with DisableTorchFunctionSubclass():
        ret = _tf_call(func, args, kwargs)
        if _tf_no_wrap(func):
            return ret
        return _tf_convert(ret, cls)


def disabled_torch_function_impl(func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
    """`torch._C._disabled_torch_function_impl`, traced: the call with subclass dispatch
    off, results as they come."""
    with DisableTorchFunctionSubclass():
        return _tf_call(func, args, {} if kwargs is None else kwargs)
