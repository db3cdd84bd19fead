"""ferrodyn's own shape propagation for common tensor ops (cold start).

Running an op on fake tensors is how a trace learns its result's sizes, dtype and device,
but torch's fake-tensor machinery imports sympy, `torch.fx.experimental.symbolic_shapes`
and parts of `torch._dynamo` on its first use: about 0.5 s, most of a cold first call with
`backend="eager"`. A trace therefore starts *light* (`GraphBuilder.light`): graph inputs are
described by `TensorMeta` records read off the real tensors, and the ops below compute
their results' records themselves. The first op without a rule here, or anything else that
needs a real fake tensor, turns the trace *full*: the fake mode is made, the inputs are
fakeified and the ops recorded so far are replayed on fake tensors in graph order, then
checked against the records (`GraphBuilder._full`). From there the trace goes on exactly as
it would have with fake tensors from the start.

A rule answers only when it is sure: it returns `NotImplemented` for any case it does not
model exactly (another dtype, a non-contiguous input where the result's strides would
depend on it, autocast, an unusual argument), and the trace turns full. Each record carries
sizes, strides, dtype, device, `requires_grad` and `is_leaf`; a rule that returns one of its
inputs' records returns the very same record, as the op returns the very same tensor.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

_FLOATS = frozenset({torch.float32, torch.float64, torch.float16, torch.bfloat16})


class TensorMeta:
    """What a trace knows of a tensor without a fake tensor."""

    __slots__ = ("device", "dtype", "is_leaf", "requires_grad", "shape", "stride")

    def __init__(
        self,
        shape: tuple[int, ...],
        stride: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
        requires_grad: bool,
        is_leaf: bool,
    ) -> None:
        self.shape = shape
        self.stride = stride
        self.dtype = dtype
        self.device = device
        self.requires_grad = requires_grad
        self.is_leaf = is_leaf

    @classmethod
    def of(cls, t: torch.Tensor) -> TensorMeta:
        return cls(tuple(t.shape), t.stride(), t.dtype, t.device, t.requires_grad, t.is_leaf)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def contiguous(self) -> bool:
        """`Tensor.is_contiguous()`: row-major, ignoring dimensions of size 1."""
        return self.numel() == 0 or _contiguous_ignoring_ones(self.shape, self.stride)

    def attr(self, name: str) -> Any:
        """A metadata attribute (`graph._CONST_ATTRS`) of the tensor this describes."""
        if name == "shape":
            return torch.Size(self.shape)
        if name == "ndim":
            return len(self.shape)
        if name == "is_cuda":
            return self.device.type == "cuda"
        if name == "is_meta":
            return self.device.type == "meta"
        if name == "layout":
            return torch.strided
        if name in ("is_sparse", "is_quantized", "is_mkldnn", "is_nested"):
            return False
        return getattr(self, name)

    def same_as(self, fake: torch.Tensor) -> bool:
        """Whether `fake` (the same value, made by fake-tensor propagation) agrees. Strides
        of dimensions of size 1 are not compared: they address nothing, and torch's fake
        `view`/`reshape` keeps some that eager's recomputes."""
        return (
            tuple(fake.shape) == self.shape
            and all(a == b or n == 1 for a, b, n in zip(fake.stride(), self.stride, self.shape))
            and fake.dtype == self.dtype
            and fake.device == self.device
            and fake.requires_grad == self.requires_grad
            and fake.is_leaf == self.is_leaf
        )

    def __repr__(self) -> str:
        return f"TensorMeta({self.shape}, {self.stride}, {self.dtype})"


def plain_input(t: torch.Tensor) -> bool:
    """Whether a graph input can start a light trace: a dense tensor of a plain type, in
    no special mode (a tensor subclass, a sparse, nested, quantized, conjugated or
    inference tensor goes through fake tensors from the start)."""
    return (
        (type(t) is torch.Tensor or type(t) is torch.nn.Parameter)
        and t.layout is torch.strided
        and not t.is_nested
        and not t.is_quantized
        and not t.is_mkldnn
        and not t.is_conj()
        and not t.is_neg()
        and not t.is_inference()
        and t.device.type in ("cpu", "cuda")
        and t.dim() > 0
    )


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = [0] * len(shape)
    s = 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = s
        s *= max(shape[i], 1)
    return tuple(strides)


def _contiguous_ignoring_ones(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    expected = 1
    for size, st in zip(reversed(shape), reversed(stride)):
        if size == 1:
            continue
        if st != expected:
            return False
        expected *= size
    return True


def _mode_ok() -> bool:
    """Modes that change what ops return (dtypes under autocast, tensors under inference
    mode, anything under a torch function mode such as `torch.set_default_device`) are left
    to fake tensors."""
    return not (
        torch.is_autocast_enabled("cpu")
        or torch.is_autocast_enabled("cuda")
        or torch.is_inference_mode_enabled()
        or torch._C._len_torch_function_stack() > 0
    )


def _result(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    inputs: tuple[TensorMeta, ...],
    stride: tuple[int, ...] | None = None,
) -> TensorMeta:
    """A new tensor computed from `inputs` (contiguous unless `stride` is given)."""
    grad = (
        torch.is_grad_enabled()
        and (dtype.is_floating_point or dtype.is_complex)
        and any(i.requires_grad for i in inputs)
    )
    return TensorMeta(
        shape,
        contiguous_strides(shape) if stride is None else stride,
        dtype,
        device,
        grad,
        not grad,
    )


def _all_metas(*values: Any) -> bool:
    return all(type(v) is TensorMeta for v in values)


def _one_device(*metas: TensorMeta) -> torch.device | None:
    dev = metas[0].device
    return dev if all(m.device == dev for m in metas) else None


def _dim(d: Any, ndim: int) -> int | None:
    if type(d) is not int or not -ndim <= d < ndim:
        return None
    return d % ndim


def _ints(args: tuple) -> tuple[int, ...] | None:
    """Sizes given as `f(2, 3)` or `f((2, 3))`; None for anything else."""
    if len(args) == 1 and type(args[0]) in (tuple, list, torch.Size):
        args = tuple(args[0])
    if all(type(a) is int for a in args):
        return tuple(args)
    return None


def _broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    n = max(len(s) for s in shapes)
    out = []
    for i in range(n):
        size = 1
        for s in shapes:
            j = i - (n - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if size not in (1, d):
                return None
            size = d
        out.append(size)
    return tuple(out)


def _infer_size(sizes: tuple[int, ...], numel: int) -> tuple[int, ...] | None:
    """`view`/`reshape` sizes with one -1 filled in; None when they do not fit `numel`."""
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        return None
    known = 1
    for s in sizes:
        if s != -1:
            known *= s
    if -1 in sizes:
        if known == 0 or numel % known:
            return None
        return tuple(numel // known if s == -1 else s for s in sizes)
    return sizes if known == numel else None


def view_strides(
    shape: tuple[int, ...], stride: tuple[int, ...], new: tuple[int, ...]
) -> tuple[int, ...] | None:
    """The strides `view(new)` gives a tensor of these sizes and strides, or None where the
    view is impossible (ATen's `computeStride`, for tensors with elements)."""
    out = [0] * len(new)
    view_d = len(new) - 1
    chunk_base = stride[-1]
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (
            shape[tensor_d - 1] != 1 and stride[tensor_d - 1] != tensor_numel * chunk_base
        ):
            while view_d >= 0 and (view_numel < tensor_numel or new[view_d] == 1):
                out[view_d] = view_numel * chunk_base
                view_numel *= new[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base = stride[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(out)


# -- type promotion (c10's ResultTypeState, for dimensioned tensors and Python numbers) --


def _category(dtype: torch.dtype) -> int:
    if dtype is torch.bool:
        return 0
    if dtype.is_complex:
        return 3
    if dtype.is_floating_point:
        return 2
    return 1


def _promoted(tensors: tuple[TensorMeta, ...], numbers: tuple[Any, ...]) -> torch.dtype | None:
    dim_dtype = tensors[0].dtype
    for t in tensors[1:]:
        dim_dtype = torch.promote_types(dim_dtype, t.dtype)
    if not numbers:
        return dim_dtype
    wrapped: torch.dtype | None = None
    for n in numbers:
        if type(n) is bool:
            d = torch.bool
        elif type(n) is int:
            d = torch.int64
        elif type(n) is float:
            d = torch.get_default_dtype()
        else:
            return None
        wrapped = d if wrapped is None else torch.promote_types(wrapped, d)
    assert wrapped is not None
    if _category(wrapped) > _category(dim_dtype):
        if _category(wrapped) == 3:
            return None
        return torch.promote_types(dim_dtype, wrapped)
    return dim_dtype


# -- rules ------------------------------------------------------------------------------

Rule = Callable[[tuple, dict], Any]


def _elementwise(op: str) -> Rule:
    def rule(args: tuple, kwargs: dict) -> Any:
        if kwargs or len(args) != 2:
            return NotImplemented
        tensors = tuple(a for a in args if type(a) is TensorMeta)
        numbers = tuple(a for a in args if type(a) is not TensorMeta)
        if not tensors or any(type(n) not in (int, float, bool) for n in numbers):
            return NotImplemented
        if any(not t.contiguous() or t.numel() == 0 for t in tensors):
            return NotImplemented
        device = _one_device(*tensors)
        shape = _broadcast(*(t.shape for t in tensors))
        dtype = _promoted(tensors, numbers)
        if device is None or shape is None or dtype is None:
            return NotImplemented
        if op == "sub" and dtype is torch.bool:
            return NotImplemented  # eager raises
        if op == "truediv" and not dtype.is_floating_point:
            if dtype.is_complex:
                return NotImplemented
            dtype = torch.get_default_dtype()
        return _result(shape, dtype, device, tensors)

    return rule


def _unary_float(args: tuple, kwargs: dict, extra: frozenset[str] = frozenset()) -> Any:
    if len(args) != 1 or not _all_metas(args[0]) or set(kwargs) - extra:
        return NotImplemented
    x = args[0]
    if x.dtype not in _FLOATS or not x.contiguous():
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,))


def _with_inplace(args: tuple, kwargs: dict) -> Any:
    """`F.relu(x, inplace=False)`-style functions: out of place only."""
    if len(args) > 2 or set(kwargs) - {"inplace"} or (len(args) == 2 and "inplace" in kwargs):
        return NotImplemented
    inplace = args[1] if len(args) == 2 else kwargs.get("inplace", False)
    if inplace is not False:
        return NotImplemented
    return _unary_float(args[:1], {})


def _functional_softmax(args: tuple, kwargs: dict) -> Any:
    names = ("input", "dim", "_stacklevel", "dtype")
    if len(args) > 4 or set(kwargs) - set(names[len(args) :]):
        return NotImplemented
    bound = dict(zip(names, args), **kwargs)
    if bound.get("dtype") is not None or "input" not in bound:
        return NotImplemented
    return _softmax((bound["input"], bound.get("dim")), {})


def _gelu(args: tuple, kwargs: dict) -> Any:
    if kwargs.get("approximate", "none") not in ("none", "tanh"):
        return NotImplemented
    return _unary_float(args, kwargs, frozenset({"approximate"}))


def _linear(args: tuple, kwargs: dict) -> Any:
    if set(kwargs) - {"bias"} or not 2 <= len(args) + len(kwargs) <= 3:
        return NotImplemented
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else kwargs.get("bias")
    if not _all_metas(x, w) or (b is not None and type(b) is not TensorMeta):
        return NotImplemented
    metas = (x, w) if b is None else (x, w, b)
    if x.dtype not in _FLOATS or any(m.dtype != x.dtype for m in metas):
        return NotImplemented
    device = _one_device(*metas)
    if device is None or x.ndim < 2 or w.ndim != 2 or not x.contiguous():
        return NotImplemented
    if x.shape[-1] != w.shape[1] or (b is not None and b.shape != (w.shape[0],)):
        return NotImplemented
    if x.numel() == 0 or w.numel() == 0:
        return NotImplemented
    return _result((*x.shape[:-1], w.shape[0]), x.dtype, device, metas)


def _matmul(args: tuple, kwargs: dict) -> Any:
    if kwargs or len(args) != 2 or not _all_metas(*args):
        return NotImplemented
    a, b = args
    if a.dtype not in _FLOATS or b.dtype != a.dtype or _one_device(a, b) is None:
        return NotImplemented
    # 2-d @ 2-d, batched @ 2-d, batched @ batched: the result is contiguous. Other forms
    # (1-d operands, 2-d @ batched) may come back transposed.
    if b.ndim < 2 or a.ndim < b.ndim or a.shape[-1] != b.shape[-2]:
        return NotImplemented
    if a.numel() == 0 or b.numel() == 0:
        return NotImplemented
    batch = _broadcast(a.shape[:-2], b.shape[:-2])
    if batch is None:
        return NotImplemented
    return _result((*batch, a.shape[-2], b.shape[-1]), a.dtype, a.device, (a, b))


def _dropout(args: tuple, kwargs: dict) -> Any:
    names = ("input", "p", "training", "inplace")
    if len(args) > 4 or set(kwargs) - set(names[len(args) :]):
        return NotImplemented
    bound = dict(zip(names, args), **kwargs)
    x = bound.get("input")
    p = bound.get("p", 0.5)
    training = bound.get("training", True)
    if type(x) is not TensorMeta or bound.get("inplace", False) is not False:
        return NotImplemented
    if type(p) not in (int, float) or not 0 <= p <= 1 or type(training) is not bool:
        return NotImplemented
    if not training or p == 0 or x.numel() == 0:
        return x  # returns its input itself
    if x.dtype not in _FLOATS or not x.contiguous():
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,))


def _layer_norm(args: tuple, kwargs: dict) -> Any:
    names = ("input", "normalized_shape", "weight", "bias", "eps")
    if len(args) > 5 or set(kwargs) - set(names[len(args) :]):
        return NotImplemented
    bound = dict(zip(names, args), **kwargs)
    x, ns = bound.get("input"), bound.get("normalized_shape")
    w, b = bound.get("weight"), bound.get("bias")
    if type(x) is not TensorMeta or type(ns) not in (tuple, list, torch.Size):
        return NotImplemented
    ns = tuple(ns)
    if not ns or any(type(d) is not int for d in ns) or x.shape[-len(ns) :] != ns:
        return NotImplemented
    if x.ndim < len(ns) or x.dtype not in _FLOATS or x.numel() == 0:
        return NotImplemented
    metas = [x]
    for p in (w, b):
        if p is None:
            continue
        if type(p) is not TensorMeta or p.shape != ns or p.dtype != x.dtype:
            return NotImplemented
        metas.append(p)
    if type(bound.get("eps", 1e-5)) not in (int, float) or _one_device(*metas) is None:
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, tuple(metas))


def _softmax(args: tuple, kwargs: dict) -> Any:
    if set(kwargs) - {"dim"} or not 1 <= len(args) + len(kwargs) <= 2:
        return NotImplemented
    x = args[0]
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if type(x) is not TensorMeta or x.dtype not in _FLOATS or not x.contiguous():
        return NotImplemented
    if _dim(dim, x.ndim) is None:
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,))


def _triangle(args: tuple, kwargs: dict) -> Any:
    if set(kwargs) - {"diagonal"} or not 1 <= len(args) + len(kwargs) <= 2:
        return NotImplemented
    x = args[0]
    diagonal = args[1] if len(args) > 1 else kwargs.get("diagonal", 0)
    if type(x) is not TensorMeta or type(diagonal) is not int or x.ndim < 2:
        return NotImplemented
    if not x.contiguous() or x.numel() == 0:
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,))


def _masked_fill(args: tuple, kwargs: dict) -> Any:
    if kwargs or len(args) != 3:
        return NotImplemented
    x, mask, value = args
    if not _all_metas(x, mask) or mask.dtype is not torch.bool or _one_device(x, mask) is None:
        return NotImplemented
    if x.dtype not in _FLOATS or type(value) not in (int, float) or not x.contiguous():
        return NotImplemented
    if x.numel() == 0 or _broadcast(x.shape, mask.shape) != x.shape:
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,))


def _factory(fill: str) -> Rule:
    def rule(args: tuple, kwargs: dict) -> Any:
        if set(kwargs) - {"dtype", "device"}:
            return NotImplemented
        shape = _ints(args)
        if shape is None or any(d < 0 for d in shape):
            return NotImplemented
        dtype = kwargs.get("dtype")
        if dtype is None:
            dtype = torch.get_default_dtype()
        if type(dtype) is not torch.dtype:
            return NotImplemented
        device = kwargs.get("device")
        if device is None:
            device = torch.get_default_device()
        elif type(device) is str:
            try:
                device = torch.device(device)
            except RuntimeError:
                return NotImplemented
        if type(device) is not torch.device or device.type not in ("cpu", "cuda"):
            return NotImplemented
        if device.type == "cuda" and device.index is None:
            return NotImplemented  # the current device's index is filled in
        return _result(shape, dtype, device, ())

    rule.__name__ = fill
    return rule


def _view_of(x: TensorMeta, shape: tuple[int, ...], stride: tuple[int, ...]) -> TensorMeta:
    """A view of `x`: it requires grad when `x` does, also under `no_grad` (where it has no
    grad_fn, so it is a leaf)."""
    grad = x.requires_grad
    return TensorMeta(
        shape, stride, x.dtype, x.device, grad, not (grad and torch.is_grad_enabled())
    )


def _view(args: tuple, kwargs: dict) -> Any:
    if kwargs or not args or type(args[0]) is not TensorMeta:
        return NotImplemented
    x = args[0]
    sizes = _ints(args[1:])
    if sizes is None or x.numel() == 0 or not sizes:
        return NotImplemented
    sizes = _infer_size(sizes, x.numel())
    if sizes is None:
        return NotImplemented
    stride = view_strides(x.shape, x.stride, sizes)
    if stride is None:
        return NotImplemented
    return _view_of(x, sizes, stride)


def _reshape(args: tuple, kwargs: dict) -> Any:
    if kwargs or not args or type(args[0]) is not TensorMeta:
        return NotImplemented
    x = args[0]
    sizes = _ints(args[1:])
    if sizes is None or x.numel() == 0 or not sizes:
        return NotImplemented
    sizes = _infer_size(sizes, x.numel())
    if sizes is None:
        return NotImplemented
    stride = view_strides(x.shape, x.stride, sizes)
    if stride is not None:
        return _view_of(x, sizes, stride)
    return _result(sizes, x.dtype, x.device, (x,))


def _transpose(args: tuple, kwargs: dict) -> Any:
    if kwargs or len(args) != 3 or type(args[0]) is not TensorMeta:
        return NotImplemented
    x = args[0]
    a, b = _dim(args[1], x.ndim), _dim(args[2], x.ndim)
    if a is None or b is None:
        return NotImplemented
    shape, stride = list(x.shape), list(x.stride)
    shape[a], shape[b] = shape[b], shape[a]
    stride[a], stride[b] = stride[b], stride[a]
    return _view_of(x, tuple(shape), tuple(stride))


def _chunk(args: tuple, kwargs: dict) -> Any:
    if set(kwargs) - {"dim"} or not 2 <= len(args) <= 3 or type(args[0]) is not TensorMeta:
        return NotImplemented
    x, chunks = args[0], args[1]
    dim = _dim(args[2] if len(args) > 2 else kwargs.get("dim", 0), x.ndim)
    if type(chunks) is not int or chunks < 1 or dim is None or x.shape[dim] == 0:
        return NotImplemented
    size = x.shape[dim]
    each = -(-size // chunks)
    out = []
    for start in range(0, size, each):
        shape = list(x.shape)
        shape[dim] = min(each, size - start)
        out.append(_view_of(x, tuple(shape), x.stride))
    return tuple(out)


def _contiguous(args: tuple, kwargs: dict) -> Any:
    if kwargs or len(args) != 1 or type(args[0]) is not TensorMeta:
        return NotImplemented
    x = args[0]
    if x.contiguous():
        return x  # returns itself
    return _result(x.shape, x.dtype, x.device, (x,))


# (kind, target) -> rule. Targets are what the interpreter records: functions for
# `call_function`, method names for `call_method` (the tensor first in `args`).
_FUNCTIONS: dict[Any, Rule] = {
    torch._C._nn.linear: _linear,
    torch.relu: _unary_float,
    torch.tanh: _unary_float,
    torch.sigmoid: _unary_float,
    torch._C._nn.gelu: _gelu,
    torch.nn.functional.relu: _with_inplace,
    torch.nn.functional.silu: _with_inplace,
    torch.nn.functional.softmax: _functional_softmax,
    torch.nn.functional.dropout: _dropout,
    torch.nn.functional.layer_norm: _layer_norm,
    operator.add: _elementwise("add"),
    operator.sub: _elementwise("sub"),
    operator.mul: _elementwise("mul"),
    operator.truediv: _elementwise("truediv"),
    operator.matmul: _matmul,
    torch.matmul: _matmul,
    torch.ones: _factory("ones"),
    torch.zeros: _factory("zeros"),
    torch.transpose: _transpose,
    torch.chunk: _chunk,
}
_METHODS: dict[str, Rule] = {
    "relu": _unary_float,
    "tanh": _unary_float,
    "sigmoid": _unary_float,
    "softmax": _softmax,
    "triu": _triangle,
    "tril": _triangle,
    "masked_fill": _masked_fill,
    "view": _view,
    "reshape": _reshape,
    "transpose": _transpose,
    "chunk": _chunk,
    "contiguous": _contiguous,
    "matmul": _matmul,
}


def lookup(kind: str, target: Any) -> Rule | None:
    """The rule for an op, or None (the trace turns full)."""
    if kind == "call_method":
        return _METHODS.get(target) if type(target) is str else None
    try:
        return _FUNCTIONS.get(target)
    except TypeError:  # an unhashable target
        return None


def apply(rule: Rule, args: tuple, kwargs: dict) -> Any:
    """The rule's result records (a TensorMeta or a tuple of them), or NotImplemented."""
    if not _mode_ok():
        return NotImplemented
    return rule(args, kwargs)
