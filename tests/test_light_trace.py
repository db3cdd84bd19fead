"""Light traces (`ferrodyn.meta_rules`): ferrodyn's own shape rules for common ops, so a
static trace with `backend="eager"` needs no fake tensors (no sympy, no symbolic_shapes,
no torch._dynamo): issue 13's cold start.

Every rule is checked against eager: the record it computes from the inputs' records must
equal the metadata of the tensor the op really returns (sizes, strides, dtype, device,
requires_grad, is_leaf, and identity when the op returns its input)."""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch.nn.functional as F
from ferrodyn import meta_rules
from ferrodyn.meta_rules import TensorMeta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _t(*shape: int, dtype: torch.dtype = torch.float32, grad: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(sum(shape) + len(shape))
    if dtype is torch.bool:
        return torch.rand(*shape, generator=g) > 0.5
    if not dtype.is_floating_point:
        return torch.randint(0, 5, shape, generator=g, dtype=dtype)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(grad)


def _nc(*shape: int, grad: bool = False) -> torch.Tensor:
    """A non-contiguous tensor of these sizes (a transposed one)."""
    return _t(*reversed(shape), grad=grad).transpose(0, -1)


W = _t(16, 8, grad=True)
B = _t(16, grad=True)


def _lstm_args(batch_first: bool, bidirectional: bool) -> tuple:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(8, 6, num_layers=2, batch_first=batch_first, bidirectional=bidirectional)
    dirs = 2 if bidirectional else 1
    x = _t(3, 5, 8)
    batch = 3 if batch_first else 5
    hx = (_t(2 * dirs, batch, 6), _t(2 * dirs, batch, 6))
    return (x, hx, lstm._flat_weights, True, 2, 0.0, False, bidirectional, batch_first)


def _mha_args(need_weights: bool = False) -> tuple[tuple, dict]:
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(8, 2)
    q = _t(5, 2, 8, grad=True)
    args = (q, q, q, 8, 2, mha.in_proj_weight, mha.in_proj_bias, None, None, False, 0.0)
    args += (mha.out_proj.weight, mha.out_proj.bias)
    kwargs = {"training": False, "need_weights": need_weights, "attn_mask": None}
    return args, kwargs


# (id, kind, target, args, kwargs): args hold real tensors; the rule sees their records.
CASES: list[tuple[str, str, Any, tuple, dict]] = [
    ("linear", "call_function", torch._C._nn.linear, (_t(4, 8), W, B), {}),
    ("linear_3d", "call_function", torch._C._nn.linear, (_t(2, 3, 8), W, B), {}),
    ("linear_no_bias", "call_function", torch._C._nn.linear, (_t(4, 8), W), {}),
    ("linear_kw_bias", "call_function", torch._C._nn.linear, (_t(4, 8), W), {"bias": B}),
    ("linear_noncontig", "call_function", torch._C._nn.linear, (_nc(4, 8), W, B), {}),
    ("linear_1d", "call_function", torch._C._nn.linear, (_t(8), W, B), {}),
    ("relu", "call_function", torch.relu, (_t(3, 4, grad=True),), {}),
    ("relu_noncontig", "call_function", torch.relu, (_nc(3, 4),), {}),
    ("relu_int", "call_function", torch.relu, (_t(3, 4, dtype=torch.int64),), {}),
    ("F_relu", "call_function", F.relu, (_t(3, 4),), {"inplace": False}),
    ("F_relu_inplace", "call_function", F.relu, (_t(3, 4),), {"inplace": True}),
    ("F_silu", "call_function", F.silu, (_t(3, 4, grad=True),), {}),
    ("tanh", "call_function", torch.tanh, (_t(3, 4),), {}),
    ("sigmoid", "call_method", "sigmoid", (_t(3, 4),), {}),
    ("gelu", "call_function", F.gelu, (_t(3, 4, grad=True),), {}),
    ("gelu_tanh", "call_function", F.gelu, (_t(3, 4),), {"approximate": "tanh"}),
    ("dropout_eval", "call_function", F.dropout, (_t(3, 4), 0.1, False, False), {}),
    ("dropout_train", "call_function", F.dropout, (_t(3, 4, grad=True), 0.1, True, False), {}),
    ("dropout_p0", "call_function", F.dropout, (_t(3, 4), 0.0), {}),
    ("dropout_kw", "call_function", F.dropout, (_t(3, 4),), {"p": 0.2, "training": False}),
    ("dropout_inplace", "call_function", F.dropout, (_t(3, 4), 0.1, True, True), {}),
    (
        "layer_norm",
        "call_function",
        F.layer_norm,
        (_t(2, 3, 8, grad=True), (8,), _t(8), _t(8), 1e-5),
        {},
    ),
    ("layer_norm_plain", "call_function", F.layer_norm, (_t(2, 8), [8]), {}),
    ("layer_norm_noncontig", "call_function", F.layer_norm, (_nc(3, 8), (8,)), {}),
    ("add", "call_function", operator.add, (_t(3, 4), _t(3, 4)), {}),
    ("add_broadcast", "call_function", operator.add, (_t(3, 4), _t(4)), {}),
    ("add_outer", "call_function", operator.add, (_t(3, 1), _t(1, 4)), {}),
    ("add_int_scalar", "call_function", operator.add, (_t(3, 4, dtype=torch.int64), 2), {}),
    ("add_float_to_int", "call_function", operator.add, (_t(3, dtype=torch.int32), 2.5), {}),
    ("add_mixed", "call_function", operator.add, (_t(3, 4), _t(3, 4, dtype=torch.float64)), {}),
    ("add_bool_int", "call_function", operator.add, (_t(3, dtype=torch.bool), 1), {}),
    ("radd", "call_function", operator.add, (1.5, _t(3, 4, grad=True)), {}),
    ("sub_bool", "call_function", operator.sub, (_t(3, dtype=torch.bool), True), {}),
    ("mul_half", "call_function", operator.mul, (_t(3, dtype=torch.float16), 2.0), {}),
    ("truediv_float", "call_function", operator.truediv, (_t(2, 3, 4, grad=True), 2.0), {}),
    ("truediv_int", "call_function", operator.truediv, (_t(3, dtype=torch.int64), 2), {}),
    ("add_noncontig", "call_function", operator.add, (_nc(3, 4), _t(3, 4)), {}),
    ("add_zero_dim", "call_function", operator.add, (_t(3, 4), torch.tensor(2.0)), {}),
    ("add_contig_first", "call_function", operator.add, (_t(3, 4), _nc(3, 4)), {}),
    ("add_nc_both", "call_function", operator.add, (_nc(3, 4), _nc(3, 4, grad=True)), {}),
    ("add_nc_bcast", "call_function", operator.add, (_nc(3, 4), _t(4)), {}),
    ("add_sliced", "call_function", operator.add, (_t(3, 8)[:, ::2], _t(3, 4)), {}),
    (
        "mul_channels_last",
        "call_function",
        operator.mul,
        (
            _t(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
            _t(2, 3, 4, 5).contiguous(memory_format=torch.channels_last),
        ),
        {},
    ),
    ("relu_sliced", "call_function", torch.relu, (_t(3, 8)[:, ::2],), {}),
    ("gelu_transposed", "call_function", F.gelu, (_nc(3, 4, grad=True),), {}),
    ("dropout_transposed", "call_function", F.dropout, (_nc(3, 4), 0.2, True), {}),
    ("getitem_last", "call_function", operator.getitem, (_t(2, 5, 8), (slice(None), -1)), {}),
    ("getitem_int", "call_function", operator.getitem, (_t(4, 3, grad=True), 2), {}),
    ("getitem_step", "call_function", operator.getitem, (_t(6, 4), slice(1, None, 2)), {}),
    ("getitem_none", "call_function", operator.getitem, (_t(3, 4), (None, Ellipsis, 0)), {}),
    ("getitem_ellipsis", "call_function", operator.getitem, (_t(2, 3, 4), (Ellipsis, 1)), {}),
    ("getitem_oob", "call_function", operator.getitem, (_t(3, 4), 5), {}),
    ("getitem_tensor", "call_function", operator.getitem, (_t(3, 4), _t(2, dtype=torch.int64)), {}),
    ("getitem_empty_slice", "call_function", operator.getitem, (_t(3, 4), slice(5, 9)), {}),
    ("dim", "call_method", "dim", (_t(3, 4),), {}),
    ("size", "call_method", "size", (_t(3, 4),), {}),
    ("size_neg", "call_method", "size", (_t(3, 4), -1), {}),
    ("numel", "call_method", "numel", (_t(3, 4),), {}),
    ("is_contiguous", "call_method", "is_contiguous", (_nc(3, 4),), {}),
    ("matmul_2d", "call_function", operator.matmul, (_t(3, 4), _t(4, 5)), {}),
    ("matmul_batched", "call_function", operator.matmul, (_t(2, 3, 4), _t(2, 4, 5)), {}),
    ("matmul_bcast", "call_function", operator.matmul, (_t(2, 2, 3, 4), _t(2, 4, 5)), {}),
    ("matmul_3d_2d", "call_function", operator.matmul, (_t(2, 3, 4, grad=True), _t(4, 5)), {}),
    ("matmul_nc", "call_function", operator.matmul, (_nc(3, 4), _nc(4, 5)), {}),
    ("matmul_2d_3d", "call_function", operator.matmul, (_t(3, 4), _t(2, 4, 5)), {}),
    ("matmul_1d", "call_function", operator.matmul, (_t(4), _t(4, 5)), {}),
    ("matmul_method", "call_method", "matmul", (_t(3, 4), _t(4, 5)), {}),
    ("ones", "call_function", torch.ones, (3, 4), {}),
    ("ones_tuple", "call_function", torch.ones, ((3, 4),), {"dtype": torch.bool}),
    ("zeros_dev", "call_function", torch.zeros, (2,), {"device": "cpu"}),
    ("ones_grad", "call_function", torch.ones, (2,), {"requires_grad": True}),
    ("softmax", "call_method", "softmax", (_t(2, 3, grad=True),), {"dim": -1}),
    ("softmax_pos", "call_method", "softmax", (_t(2, 3), 0), {}),
    ("F_softmax", "call_function", F.softmax, (_t(2, 3),), {"dim": 1}),
    ("softmax_dtype", "call_function", F.softmax, (_t(2, 3),), {"dim": 1, "dtype": torch.float64}),
    ("triu", "call_method", "triu", (_t(4, 4, dtype=torch.bool), 1), {}),
    ("tril", "call_method", "tril", (_t(2, 4, 4),), {"diagonal": -1}),
    (
        "masked_fill",
        "call_method",
        "masked_fill",
        (_t(2, 4, 4), _t(4, 4, dtype=torch.bool), 0.0),
        {},
    ),
    (
        "masked_fill_inf",
        "call_method",
        "masked_fill",
        (_t(2, 4, 4, grad=True), _t(4, 4, dtype=torch.bool), float("-inf")),
        {},
    ),
    (
        "masked_fill_big_mask",
        "call_method",
        "masked_fill",
        (_t(4), _t(3, 4, dtype=torch.bool), 1.0),
        {},
    ),
    ("view", "call_method", "view", (_t(2, 3, 4), 6, 4), {}),
    ("view_infer", "call_method", "view", (_t(2, 3, 4, grad=True), -1), {}),
    ("view_tuple", "call_method", "view", (_t(2, 3, 4), (2, 12)), {}),
    ("view_split_chunk", "call_method", "view", (_t(2, 6, 12)[..., :4], 2, 6, 2, 2), {}),
    ("view_of_transposed", "call_method", "view", (_t(2, 3, 4).transpose(1, 2), 2, 12), {}),
    ("view_transposed_ok", "call_method", "view", (_t(2, 3, 4).transpose(0, 1), 3, 2, 2, 2), {}),
    ("view_bad", "call_method", "view", (_t(2, 3, 4), 5, 5), {}),
    ("reshape_view", "call_method", "reshape", (_t(2, 3, 4), 4, 6), {}),
    ("reshape_copy", "call_method", "reshape", (_t(2, 3, 4).transpose(1, 2), 2, 12), {}),
    ("reshape_copy_grad", "call_method", "reshape", (_nc(3, 4, grad=True), -1), {}),
    ("transpose", "call_method", "transpose", (_t(2, 3, 4), 1, 2), {}),
    ("transpose_neg", "call_method", "transpose", (_t(2, 3, 4, grad=True), -2, -1), {}),
    ("torch_transpose", "call_function", torch.transpose, (_t(2, 3), 0, 1), {}),
    ("chunk", "call_method", "chunk", (_t(2, 3, 12), 3), {"dim": -1}),
    ("chunk_uneven", "call_method", "chunk", (_t(7, 2, grad=True), 3), {}),
    ("chunk_fewer", "call_function", torch.chunk, (_t(2, 2), 3, 1), {}),
    ("contiguous_same", "call_method", "contiguous", (_t(2, 3),), {}),
    ("lstm_batch_first", "call_function", torch.lstm, _lstm_args(True, False), {}),
    ("lstm_bidirectional", "call_function", torch.lstm, _lstm_args(False, True), {}),
    ("lstm_bidirectional_bf", "call_function", torch.lstm, _lstm_args(True, True), {}),
    ("mha", "call_function", F.multi_head_attention_forward, *_mha_args()),
    ("mha_weights", "call_function", F.multi_head_attention_forward, *_mha_args(True)),
    ("none_or_dtype", "call_function", F._none_or_dtype, (None,), {}),
    (
        "canonical_mask",
        "call_function",
        F._canonical_mask,
        (),
        {
            "mask": None,
            "mask_name": "m",
            "other_type": None,
            "other_name": "o",
            "target_type": torch.float32,
        },
    ),
    ("contiguous_copy", "call_method", "contiguous", (_nc(2, 3, grad=True),), {}),
]


def _meta_args(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return TensorMeta.of(value)
    if type(value) in (tuple, list):
        return type(value)(_meta_args(v) for v in value)
    if type(value) is dict:
        return {k: _meta_args(v) for k, v in value.items()}
    return value


def _run(kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
    if kind == "call_method":
        return getattr(args[0], target)(*args[1:], **kwargs)
    return target(*args, **kwargs)


def _check_case(kind: str, target: Any, args: tuple, kwargs: dict) -> bool:
    """Whether a rule answered; asserts its answer equals eager's tensor metadata."""
    rule = meta_rules.lookup(kind, target)
    if rule is None:
        return False
    margs, mkwargs = _meta_args(args), _meta_args(kwargs)
    got = meta_rules.apply(rule, margs, mkwargs)
    try:
        real = _run(kind, target, args, kwargs)
    except Exception:  # noqa: BLE001 - eager rejects it: the rule must not answer
        assert got is NotImplemented
        return False
    if got is NotImplemented:
        return False
    if type(got) is meta_rules.Constant:
        assert got.value == real and type(got.value) is type(real)
        return True
    reals = real if isinstance(real, tuple) else (real,)
    gots = got if isinstance(got, tuple) else (got,)
    assert len(reals) == len(gots)
    in_metas = [m for m in list(margs) + list(mkwargs.values()) if type(m) is TensorMeta]
    in_reals = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor)]
    for r, g in zip(reals, gots):
        if r is None:
            assert g is None
            continue
        expect = TensorMeta.of(r)
        assert g.shape == expect.shape
        # Strides of size-1 dimensions address nothing (torch itself is not consistent
        # about them); every other stride must match.
        assert all(a == b or n == 1 for a, b, n in zip(g.stride, expect.stride, g.shape)), (
            g.shape,
            g.stride,
            expect.stride,
        )
        assert g.dtype == expect.dtype
        assert g.device == expect.device
        assert g.requires_grad == expect.requires_grad
        assert g.is_leaf == expect.is_leaf
        # Identity: the rule returns an input's record exactly when the op returns it.
        same_real = [i for i, a in enumerate(in_reals) if a is r]
        same_meta = [i for i, m in enumerate(in_metas) if m is g]
        assert same_real == same_meta
    return True


# The cases a rule must answer (the rest may fall back to fake tensors).
MUST_ANSWER = {
    "linear",
    "linear_3d",
    "linear_no_bias",
    "linear_kw_bias",
    "relu",
    "F_relu",
    "F_silu",
    "gelu",
    "dropout_eval",
    "dropout_train",
    "layer_norm",
    "add",
    "add_broadcast",
    "truediv_float",
    "matmul_batched",
    "matmul_bcast",
    "ones_tuple",
    "softmax",
    "triu",
    "masked_fill_inf",
    "view_split_chunk",
    "reshape_copy",
    "transpose_neg",
    "chunk",
    "contiguous_same",
    "add_contig_first",
    "add_nc_both",
    "mul_channels_last",
    "getitem_last",
    "getitem_none",
    "lstm_batch_first",
    "lstm_bidirectional_bf",
    "mha",
    "size",
}


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rule_equals_eager_metadata(case: tuple, grad: bool) -> None:
    name, kind, target, args, kwargs = case
    with torch.set_grad_enabled(grad):
        answered = _check_case(kind, target, args, kwargs)
    if name in MUST_ANSWER:
        assert answered, f"{name}: the rule fell back"


def test_rules_stand_down_under_autocast_and_inference_mode() -> None:
    x = _t(4, 8)
    rule = meta_rules.lookup("call_function", torch._C._nn.linear)
    assert rule is not None
    args = (_meta_args(x), _meta_args(W), _meta_args(B))
    assert meta_rules.apply(rule, args, {}) is not NotImplemented
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert meta_rules.apply(rule, args, {}) is NotImplemented
    with torch.inference_mode():
        assert meta_rules.apply(rule, args, {}) is NotImplemented


def test_view_strides_match_torch() -> None:
    for base, new in [
        (_t(2, 3, 4), (4, 6)),
        (_t(2, 3, 4).transpose(0, 1), (3, 8)),
        (_t(2, 3, 4).transpose(1, 2), (2, 12)),
        (_t(1, 3, 1, 4), (3, 4)),
        (_t(6, 4)[::2], (3, 2, 2)),
        (_t(4, 1, 6).expand(4, 5, 6), (4, 5, 2, 3)),
    ]:
        expect: tuple | None
        try:
            expect = base.view(new).stride()
        except RuntimeError:
            expect = None
        assert meta_rules.view_strides(tuple(base.shape), base.stride(), new) == expect


# -- traces -----------------------------------------------------------------------------


class Block(torch.nn.Module):
    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.ln = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.fc = torch.nn.Linear(dim, dim)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln(x)).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / 2.0
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, d)
        return x + self.drop(self.fc(F.gelu(y)))


def _counting() -> tuple[list[torch.fx.GraphModule], Callable[..., Any]]:
    graphs: list[torch.fx.GraphModule] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        graphs.append(gm)
        return gm.forward

    return graphs, backend


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
def test_block_light_trace_equals_eager(grad: bool) -> None:
    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(2, 5, 16)
    with torch.set_grad_enabled(grad):
        expect = model(x)
        got = ferrodyn.compile(model, backend="eager")(x)
    assert torch.allclose(got, expect)
    assert got.requires_grad == expect.requires_grad


def test_other_backends_get_example_values() -> None:
    """A light trace turns full before a backend other than "eager" sees the graph: every
    node carries its fake example value, as torch.compile's graphs do."""
    graphs, backend = _counting()
    torch.manual_seed(0)
    model = Block().eval()
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        out = ferrodyn.compile(model, backend=backend)(x)
        assert torch.allclose(out, model(x))
    assert len(graphs) == 1
    for node in graphs[0].graph.nodes:
        if node.op == "output":
            continue
        value = node.meta.get("example_value")
        values = value if isinstance(value, tuple) else (value,)
        assert all(isinstance(v, torch.Tensor) for v in values), node


def test_metadata_reads_in_a_light_trace() -> None:
    def fn(x: torch.Tensor, w: torch.Tensor) -> Any:
        y = F.linear(x, w)
        z = y.transpose(0, 1)
        out = z * 2 if y.shape[0] == 3 else z * 3
        return out, y.dtype, y.requires_grad, y.is_leaf, y.ndim, len(y), z.shape, y.device

    x, w = _t(3, 4), _t(5, 4, grad=True)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            expect = fn(x, w)
            ferrodyn.reset()
            got = ferrodyn.compile(fn, backend="eager")(x, w)
        assert torch.equal(got[0], expect[0])
        assert got[1:] == expect[1:]


def test_identity_of_an_op_that_returns_its_input() -> None:
    def fn(x: torch.Tensor) -> Any:
        y = F.dropout(x, 0.5, training=False)
        z = x.contiguous()
        w = x.relu()
        return y is x, z is x, w is x, y + 1

    x = _t(3, 4)
    assert ferrodyn.compile(fn, backend="eager")(x)[:3] == fn(x)[:3] == (True, True, False)


def test_light_then_full_mid_trace() -> None:
    """An op without a rule turns the trace full in the middle: the ops before it are
    replayed on fake tensors and the rest traces as always."""

    def fn(x: torch.Tensor) -> Any:
        y = torch.relu(x @ x.transpose(0, 1))
        s = y.stride()
        z = torch.cumsum(y, 0)  # no rule
        return z.transpose(0, 1).contiguous().view(-1) + 1, s, z.is_contiguous()

    x = _t(4, 3)
    graphs, backend = _counting()
    expect = fn(x)
    got = ferrodyn.compile(fn, backend=backend)(x)
    assert torch.equal(got[0], expect[0]) and got[1:] == expect[1:]
    assert len(graphs) == 1


def test_graph_break_between_light_traces() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(x) * 2
        torch._dynamo.graph_break()
        return F.layer_norm(y, (4,)) + 1

    graphs, backend = _counting()
    x = _t(3, 4)
    assert torch.allclose(ferrodyn.compile(fn, backend=backend)(x), fn(x))
    assert len(graphs) == 2


def test_dynamic_shapes_still_symbolic_after_a_light_first_trace() -> None:
    graphs, backend = _counting()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return F.relu(x.view(-1, 2)) + 1

    cfn = ferrodyn.compile(fn, backend=backend)
    for n in (4, 6, 8):
        x = _t(n, 2)
        assert torch.equal(cfn(x), fn(x))
    assert len(graphs) == 2  # static, then one with a symbolic size
    placeholders = [n for n in graphs[1].graph.nodes if n.op == "placeholder"]
    size = placeholders[0].meta["example_value"].shape[0]
    assert isinstance(size, torch.SymInt)


def test_changing_grad_mode_between_calls_recompiles() -> None:
    graphs, backend = _counting()
    lin = torch.nn.Linear(4, 4)
    cfn = ferrodyn.compile(lin, backend=backend)
    x = _t(2, 4)
    with torch.no_grad():
        assert not cfn(x).requires_grad
    out = cfn(x)
    assert out.requires_grad and not out.is_leaf
    assert len(graphs) == 2


COLD = textwrap.dedent(
    """
    import json, sys
    import torch
    sys.path.insert(0, {benches!r})
    import _cases
    torch.manual_seed(0)
    models = [
        (_cases.MLP().eval(), torch.randn(8, 64)),
        (_cases.Transformer(depth=2).eval(), torch.randn(2, 16, 64)),
    ]
    import ferrodyn
    ok = []
    for model, x in models:
        for grad in (False, True):
            with torch.set_grad_enabled(grad):
                out = ferrodyn.compile(model, backend="eager")(x)
                ok.append(bool(torch.allclose(out, model(x))))
    loaded = [m for m in ("sympy", "torch._dynamo", "torch.fx.experimental.symbolic_shapes")
              if m in sys.modules]
    print(json.dumps({{"ok": ok, "loaded": loaded}}))
    """
)


def _run_cold(env: dict[str, str]) -> Any:
    """COLD in a fresh process; its JSON answer."""
    out = subprocess.run(
        [sys.executable, "-c", COLD.format(benches=os.path.join(ROOT, "benches"))],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cold_compile_imports_no_fake_tensor_machinery() -> None:
    """In a fresh process, compiling the benchmark MLP and transformer with the eager
    backend imports neither sympy nor symbolic_shapes nor torch._dynamo (their import is
    most of torch.compile's cold start)."""
    env = dict(os.environ)
    env.pop("FERRODYN_CHECK_META_RULES", None)
    env.pop("FERRODYN_LIGHT_TRACE", None)
    result = _run_cold(env)
    assert result["ok"] == [True] * 4
    assert result["loaded"] == []


def test_rules_checked_against_fake_tensors_on_the_models(tmp_path: Any) -> None:
    """FERRODYN_CHECK_META_RULES=path: every light trace is replayed on fake tensors at its
    end and compared; no disagreement on the benchmark models, with grad on and off."""
    report = tmp_path / "mismatches.txt"
    result = _run_cold(dict(os.environ, FERRODYN_CHECK_META_RULES=str(report)))
    assert result["ok"] == [True] * 4
    assert not report.exists(), report.read_text()


# -- randomized: rules against eager on random layouts ---------------------------------


def _random_tensor(rng: Any, shape: tuple[int, ...], dtype: torch.dtype, grad: bool) -> Any:
    """A tensor of `shape` in a random layout: contiguous, transposed, sliced, expanded
    or channels-last."""
    g = torch.Generator().manual_seed(rng.randint(0, 10**6))
    layout = rng.choice(["contiguous", "transposed", "sliced", "expanded", "channels_last"])

    def make(s: tuple[int, ...]) -> torch.Tensor:
        if dtype is torch.bool:
            return torch.rand(s, generator=g) > 0.5
        if not dtype.is_floating_point:
            return torch.randint(0, 5, s, generator=g, dtype=dtype)
        return torch.randn(s, generator=g).to(dtype)

    if layout == "transposed" and len(shape) >= 2:
        t = make((*shape[:-2], shape[-1], shape[-2])).transpose(-1, -2)
    elif layout == "sliced" and shape:
        t = make((*shape[:-1], shape[-1] * 2))[..., ::2]
    elif layout == "expanded" and shape and shape[0] > 1:
        t = make((1, *shape[1:])).expand(shape)
    elif layout == "channels_last" and len(shape) == 4:
        t = make(shape).contiguous(memory_format=torch.channels_last)
    else:
        t = make(shape)
    if grad and dtype.is_floating_point and layout != "expanded":
        t = t.detach().requires_grad_(True)
    return t


def _random_case(rng: Any) -> tuple[str, Any, tuple, dict]:
    rank = rng.randint(1, 4)
    shape = tuple(rng.randint(1, 4) for _ in range(rank))
    dtype = rng.choice([torch.float32, torch.float32, torch.float64, torch.bfloat16, torch.int64])
    grad = rng.random() < 0.4

    def t(s: tuple[int, ...] = shape, d: torch.dtype = dtype) -> Any:
        return _random_tensor(rng, s, d, grad)

    kind = rng.choice(
        ["binary", "binary_scalar", "unary", "view", "reshape", "transpose", "chunk",
         "getitem", "matmul", "linear", "softmax", "layer_norm", "masked_fill", "dropout",
         "contiguous", "triu"]
    )  # fmt: skip
    sub = tuple(shape[i] if rng.random() < 0.7 else 1 for i in range(rank))[
        rng.randint(0, rank - 1) :
    ]
    if kind == "binary":
        op = rng.choice([operator.add, operator.sub, operator.mul, operator.truediv])
        other = t(sub, rng.choice([dtype, torch.float32]))
        args = (t(), other) if rng.random() < 0.5 else (other, t())
        return "call_function", op, args, {}
    if kind == "binary_scalar":
        op = rng.choice([operator.add, operator.mul, operator.truediv])
        scalar = rng.choice([2, 0.5, True, -3])
        return "call_function", op, (t(), scalar) if rng.random() < 0.5 else (scalar, t()), {}
    if kind == "unary":
        return "call_function", rng.choice([torch.relu, torch.tanh, F.gelu, F.silu]), (t(),), {}
    if kind in ("view", "reshape"):
        n = 1
        for d in shape:
            n *= d
        target = rng.choice([(n,), (-1,), (1, n), (n, 1)] + ([(shape[0], -1)] if rank > 1 else []))
        return "call_method", kind, (t(), *target), {}
    if kind == "transpose":
        return (
            "call_method",
            "transpose",
            (t(), rng.randint(-rank, rank - 1), rng.randint(-rank, rank - 1)),
            {},
        )
    if kind == "chunk":
        return (
            "call_method",
            "chunk",
            (t(), rng.randint(1, 3)),
            {"dim": rng.randint(-rank, rank - 1)},
        )
    if kind == "getitem":
        items = rng.choice(
            [0, -1, slice(None), slice(1, None), slice(None, None, 2), None, Ellipsis]
        )
        more = rng.choice([(), (0,), (slice(None), -1), (None, Ellipsis)])
        return "call_function", operator.getitem, (t(), (items, *more) if more else items), {}
    if kind == "matmul":
        k = rng.randint(1, 4)
        a = t((*shape[:-1], k) if rank >= 2 else (2, k))
        b = t((k, rng.randint(1, 4)) if rng.random() < 0.5 else (*shape[:-2], k, 3))
        return "call_function", operator.matmul, (a, b), {}
    if kind == "linear":
        w = t((3, shape[-1]))
        return "call_function", torch._C._nn.linear, (t(), w, t((3,))), {}
    if kind == "softmax":
        return "call_method", "softmax", (t(), rng.randint(-rank, rank - 1)), {}
    if kind == "layer_norm":
        return "call_function", F.layer_norm, (t(), shape[-1:], t(shape[-1:]), t(shape[-1:])), {}
    if kind == "masked_fill":
        return "call_method", "masked_fill", (t(), t(sub, torch.bool), -1.0), {}
    if kind == "dropout":
        return "call_function", F.dropout, (t(), rng.choice([0.0, 0.3]), rng.random() < 0.5), {}
    if kind == "triu":
        return "call_method", "triu", (t(), rng.randint(-1, 1)), {}
    return "call_method", "contiguous", (t(),), {}


@pytest.mark.parametrize("block", range(8))
def test_random_rule_cases_equal_eager(block: int) -> None:
    """400 random cases (layouts, broadcasting, size-1 dimensions, dtypes, grad modes): a
    rule either declines or gives exactly eager's metadata."""
    import random

    rng = random.Random(1000 + block)
    answered = 0
    for _ in range(50):
        kind, target, args, kwargs = _random_case(rng)
        with torch.set_grad_enabled(rng.random() < 0.7):
            if _check_case(kind, target, args, kwargs):
                answered += 1
    assert answered > 10  # the rules do answer most common cases
