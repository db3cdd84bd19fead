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
        if any(t.numel() == 0 for t in tensors):
            return NotImplemented
        device = _one_device(*tensors)
        shape = _broadcast(*(t.shape for t in tensors))
        dtype = _promoted(tensors, numbers)
        if device is None or shape is None or dtype is None:
            return NotImplemented
        stride = _elementwise_strides(tensors, shape)
        if stride is NotImplemented:
            return NotImplemented
        if op == "sub" and dtype is torch.bool:
            return NotImplemented  # eager raises
        if op == "truediv" and not dtype.is_floating_point:
            if dtype.is_complex:
                return NotImplemented
            dtype = torch.get_default_dtype()
        return _result(shape, dtype, device, tensors, stride)

    return rule


def _dense(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """`is_non_overlapping_and_dense`: the elements fill a block of memory, in some order."""
    expected = 1
    for size, st in sorted(
        ((size, st) for size, st in zip(shape, stride) if size != 1), key=lambda p: p[1]
    ):
        if st != expected:
            return False
        expected *= size
    return True


def _elementwise_strides(tensors: tuple[TensorMeta, ...], shape: tuple[int, ...]) -> Any:
    """The strides TensorIterator gives an elementwise op's result: contiguous when every
    input is, or when the first input is contiguous and has the result's shape (it decides
    the order of the dimensions); the inputs' own strides when all have the result's shape
    and one dense layout (a transposed or channels-last tensor); None (contiguous) or
    NotImplemented (any other case: not modelled)."""
    if all(t.contiguous() for t in tensors):
        return None
    first = tensors[0]
    if first.shape == shape and first.contiguous():
        return None
    if all(t.shape == shape and t.stride == first.stride for t in tensors) and _dense(
        first.shape, first.stride
    ):
        return first.stride
    return NotImplemented


def _unary_float(args: tuple, kwargs: dict, extra: frozenset[str] = frozenset()) -> Any:
    if len(args) != 1 or not _all_metas(args[0]) or set(kwargs) - extra:
        return NotImplemented
    x = args[0]
    if x.dtype not in _FLOATS or x.numel() == 0:
        return NotImplemented
    stride = _elementwise_strides((x,), x.shape)
    if stride is NotImplemented:
        return NotImplemented
    return _result(x.shape, x.dtype, x.device, (x,), stride)


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


def _new_sizes(args: tuple, kwargs: dict) -> Any:
    """`x.view(...)`/`x.reshape(...)` arguments: (x, sizes with -1 filled in, the strides of
    the view or None where none is possible), or None where the rules do not model it."""
    if kwargs or not args or type(args[0]) is not TensorMeta:
        return None
    x = args[0]
    sizes = _ints(args[1:])
    if sizes is None or x.numel() == 0 or not sizes:
        return None
    sizes = _infer_size(sizes, x.numel())
    if sizes is None:
        return None
    return x, sizes, view_strides(x.shape, x.stride, sizes)


def _view(args: tuple, kwargs: dict) -> Any:
    new = _new_sizes(args, kwargs)
    if new is None or new[2] is None:
        return NotImplemented
    x, sizes, stride = new
    return _view_of(x, sizes, stride)


def _reshape(args: tuple, kwargs: dict) -> Any:
    """A view where one is possible, else a contiguous copy."""
    new = _new_sizes(args, kwargs)
    if new is None:
        return NotImplemented
    x, sizes, stride = new
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


def _getitem(args: tuple, kwargs: dict) -> Any:
    """`x[i]`, `x[a:b]`, `x[:, -1]`, `x[None]`, `x[..., 0]`: basic indexing, a view."""
    if kwargs or len(args) != 2 or type(args[0]) is not TensorMeta:
        return NotImplemented
    x, index = args
    items = index if type(index) is tuple else (index,)
    if any(i is not None and i is not Ellipsis and type(i) not in (int, slice) for i in items):
        return NotImplemented
    if sum(i is Ellipsis for i in items) > 1:
        return NotImplemented
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > x.ndim:
        return NotImplemented
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items = items[:at] + (slice(None),) * (x.ndim - used) + items[at + 1 :]
    shape, stride = list(x.shape), list(x.stride)
    out_shape: list[int] = []
    out_stride: list[int] = []
    d = 0
    for i in items:
        if i is None:
            # As `unsqueeze` at this point of the result.
            nxt = shape[d] * stride[d] if d < len(shape) else 1
            out_shape.append(1)
            out_stride.append(nxt)
            continue
        size, st = shape[d], stride[d]
        d += 1
        if type(i) is int:
            if not -size <= i < size:
                return NotImplemented  # eager raises IndexError
            continue
        for part in (i.start, i.stop, i.step):
            if part is not None and type(part) is not int:
                return NotImplemented
        if i.step is not None and i.step <= 0:
            return NotImplemented
        start, stop, step = i.indices(size)
        out_shape.append(len(range(start, stop, step)))
        out_stride.append(st * step)
    out_shape += shape[d:]
    out_stride += stride[d:]
    return _view_of(x, tuple(out_shape), tuple(out_stride))


def _lstm(args: tuple, kwargs: dict) -> Any:
    """`_VF.lstm(input, (h0, c0), weights, has_biases, num_layers, dropout, train,
    bidirectional, batch_first)` on a padded (not packed) batch, without projections."""
    if kwargs or len(args) != 9:
        return NotImplemented
    x, hx, weights, has_biases, layers, dropout, train, bidirectional, batch_first = args
    if type(x) is not TensorMeta or x.ndim != 3 or x.dtype not in _FLOATS:
        return NotImplemented
    if type(hx) not in (tuple, list) or len(hx) != 2 or not _all_metas(*hx):
        return NotImplemented
    if type(weights) not in (tuple, list) or not weights or not _all_metas(*weights):
        return NotImplemented
    flags = (has_biases, train, bidirectional, batch_first)
    if any(type(f) is not bool for f in flags) or type(layers) is not int or layers < 1:
        return NotImplemented
    if type(dropout) not in (int, float):
        return NotImplemented
    h0, c0 = hx
    dirs = 2 if bidirectional else 1
    per_layer = 4 if has_biases else 2
    if len(weights) != layers * dirs * per_layer:
        return NotImplemented
    metas = (x, h0, c0, *weights)
    if any(m.dtype != x.dtype for m in metas) or _one_device(*metas) is None:
        return NotImplemented
    batch, steps = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    hidden = c0.shape[-1]
    if h0.shape != (layers * dirs, batch, hidden) or c0.shape != h0.shape:
        return NotImplemented  # a projection (proj_size), or eager raises
    if weights[0].shape != (4 * hidden, x.shape[2]) or x.numel() == 0:
        return NotImplemented
    width = dirs * hidden
    if batch_first:
        out = _result((batch, steps, width), x.dtype, x.device, metas, (width, batch * width, 1))
    else:
        out = _result((steps, batch, width), x.dtype, x.device, metas)
    h = _result(h0.shape, x.dtype, x.device, metas)
    c = _result(c0.shape, x.dtype, x.device, metas)
    return (out, h, c)


_MHA_NAMES = (
    "query",
    "key",
    "value",
    "embed_dim_to_check",
    "num_heads",
    "in_proj_weight",
    "in_proj_bias",
    "bias_k",
    "bias_v",
    "add_zero_attn",
    "dropout_p",
    "out_proj_weight",
    "out_proj_bias",
    "training",
    "key_padding_mask",
    "need_weights",
    "attn_mask",
    "use_separate_proj_weight",
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "static_k",
    "static_v",
    "average_attn_weights",
    "is_causal",
)
# Arguments of multi_head_attention_forward the rule takes only at these values.
_MHA_PLAIN = {
    "bias_k": None,
    "bias_v": None,
    "add_zero_attn": False,
    "key_padding_mask": None,
    "need_weights": False,
    "attn_mask": None,
    "use_separate_proj_weight": False,
    "q_proj_weight": None,
    "k_proj_weight": None,
    "v_proj_weight": None,
    "static_k": None,
    "static_v": None,
    "is_causal": False,
}


def _multi_head_attention(args: tuple, kwargs: dict) -> Any:
    """`F.multi_head_attention_forward` on batched (L, N, E) inputs with packed input
    projections, no masks and no weights returned: `(attn_output, None)`."""
    if len(args) > len(_MHA_NAMES) or set(kwargs) - set(_MHA_NAMES[len(args) :]):
        return NotImplemented
    bound = dict(zip(_MHA_NAMES, args), **kwargs)
    if len(bound) < 13:
        return NotImplemented
    for name, value in _MHA_PLAIN.items():
        if bound.get(name, value) is not value and bound.get(name, value) != value:
            return NotImplemented
        if type(bound.get(name, value)) is not type(value):
            return NotImplemented
    q, k, v = bound["query"], bound["key"], bound["value"]
    w_in, b_in = bound["in_proj_weight"], bound["in_proj_bias"]
    w_out, b_out = bound["out_proj_weight"], bound["out_proj_bias"]
    e, heads = bound["embed_dim_to_check"], bound["num_heads"]
    if not _all_metas(q, k, v, w_in, b_in, w_out, b_out):
        return NotImplemented
    if type(e) is not int or type(heads) is not int or heads < 1 or e % heads:
        return NotImplemented
    if (
        type(bound["dropout_p"]) not in (int, float)
        or type(bound.get("training", True)) is not bool
    ):
        return NotImplemented
    if q.ndim != 3 or q.shape[2] != e or k.shape != v.shape or k.ndim != 3:
        return NotImplemented
    if k.shape[1] != q.shape[1] or k.shape[2] != e or q.numel() == 0 or k.numel() == 0:
        return NotImplemented
    if w_in.shape != (3 * e, e) or b_in.shape != (3 * e,):
        return NotImplemented
    if w_out.shape != (e, e) or b_out.shape != (e,):
        return NotImplemented
    metas = (q, k, v, w_in, b_in, w_out, b_out)
    if q.dtype not in _FLOATS or any(m.dtype != q.dtype for m in metas):
        return NotImplemented
    if _one_device(*metas) is None:
        return NotImplemented
    return (_result(q.shape, q.dtype, q.device, metas), None)


def _none_or_dtype(args: tuple, kwargs: dict) -> Any:
    """`torch.nn.functional._none_or_dtype(x)`: a helper, not an op."""
    if kwargs or len(args) != 1 or (args[0] is not None and type(args[0]) is not torch.dtype):
        return NotImplemented
    return Constant(args[0])


def _canonical_mask(args: tuple, kwargs: dict) -> Any:
    """`torch.nn.functional._canonical_mask(mask=None, ...)` is None: a helper, not an op."""
    names = ("mask", "mask_name", "other_type", "other_name", "target_type", "check_other")
    if len(args) > len(names) or set(kwargs) - set(names[len(args) :]):
        return NotImplemented
    bound = dict(zip(names, args), **kwargs)
    if "mask" not in bound or bound["mask"] is not None:
        return NotImplemented
    return Constant(None)


class Constant:
    """A rule's answer that is a Python value, not a tensor (`x.dim()`, `x.size()`): no
    node is recorded, as a full trace drops such nodes."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _metadata_method(name: str) -> Rule:
    def rule(args: tuple, kwargs: dict) -> Any:
        if kwargs or not args or type(args[0]) is not TensorMeta:
            return NotImplemented
        x, rest = args[0], args[1:]
        if name in ("dim", "ndimension") and not rest:
            return Constant(x.ndim)
        if name == "numel" and not rest:
            return Constant(x.numel())
        if name == "is_floating_point" and not rest:
            return Constant(x.dtype.is_floating_point)
        if name == "is_contiguous" and not rest:
            return Constant(x.contiguous())
        if name == "size":
            if not rest:
                return Constant(torch.Size(x.shape))
            if len(rest) == 1 and x.ndim:
                d = _dim(rest[0], x.ndim)
                if d is not None:
                    return Constant(x.shape[d])
        return NotImplemented

    return rule


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
    operator.getitem: _getitem,
    torch.lstm: _lstm,
    torch.nn.functional._none_or_dtype: _none_or_dtype,
    torch.nn.functional._canonical_mask: _canonical_mask,
    torch.nn.functional.multi_head_attention_forward: _multi_head_attention,
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
    "__getitem__": _getitem,
    "dim": _metadata_method("dim"),
    "ndimension": _metadata_method("ndimension"),
    "numel": _metadata_method("numel"),
    "size": _metadata_method("size"),
    "is_floating_point": _metadata_method("is_floating_point"),
    "is_contiguous": _metadata_method("is_contiguous"),
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
