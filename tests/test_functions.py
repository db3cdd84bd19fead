"""Plain Python functions over tensors: results, dtypes, shapes and graph counts.

Every traced function here is straight-line once Python-level values are constant, so it
must compile to exactly one graph (``frames=1``) and equal eager on every call.
"""

from __future__ import annotations

import functools
import operator
from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch.nn.functional as F
from _helpers import assert_same, assert_tree_equal

Pair = namedtuple("Pair", ["first", "second"])


def t(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


# --------------------------------------------------------------------------- straight line


def test_straight_line_op_count() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x + 1
        return y.relu()

    assert_same(fn, t(4), frames=1, ops=2)


def test_straight_line_many_ops() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a = x * y
        b = a.sin() + y.cos()
        c = torch.tanh(b) / (1 + y.abs())
        return c.sum(dim=0)

    assert_same(fn, t(3, 4), t(3, 4), frames=1, ops=9)


def test_no_tensor_ops_in_return_of_input() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        return x, 3

    got = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t(2))
    assert got[1] == 3 and got[0].shape == (2,)


# --------------------------------------------------------------------------- constants


def test_python_arithmetic_folding_on_constants() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, int, float, bool]:
        n = 3 * 4 + 2**3 - 7 // 2 % 5 - (-7) // 2 + (-7) % 3
        f = 1.5 * n / 4 - 2.0**-1 + abs(-3) + round(2.675, 2) + divmod(17, 5)[1]
        m = (n << 2) | (n >> 1) & 0xFF ^ 5
        big = 2**70 // 3
        return x * n + f + (big % 7), m, f, 1 < n <= 100 != m

    assert_same(fn, t(3), frames=1)


def test_constant_only_function_returns_python_values() -> None:
    def fn(a: int, b: int) -> tuple[int, float, str, list[int]]:
        return a * b + 1, a / b, f"{a}-{b}", [a] * b

    expected = fn(3, 4)
    got = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(3, 4)
    assert_tree_equal(got, expected)  # 0 or 1 graphs: deliberately not asserted


def test_fstrings_and_format_on_constants() -> None:
    def fn(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], str, str, str, str]:
        i, v = 3, 2.5
        key = f"layer{i}_{v:.2f}_{'a'!r}_{i:>4}|{i:04d}|{v!s}"
        other = "{}-{name}-{:x}".format(i, 255, name="n") + "%d/%s/%.1f" % (i, "s", v)  # noqa: UP031
        words = "-".join(["a", "b", str(i)]).upper().split("-")
        return {key: x + i}, key, other, ",".join(words), x.dtype.__repr__()

    assert_same(fn, t(2), frames=1)


# --------------------------------------------------------------------------- containers


def test_tuple_list_dict_set_building_and_unpacking() -> None:
    def fn(x: torch.Tensor) -> Any:
        a, *rest, z = (x, x + 1, x + 2, x + 3)
        (p, (q, r)) = (a, [z, rest[0]])
        lst = [p, q]
        lst.append(r)
        lst.extend([rest[1]])
        lst.insert(0, x * 0)
        popped = lst.pop()
        lst.reverse()
        d = {"a": p, "b": q}
        d["c"] = r
        d.update({"d": popped})
        d.setdefault("a", x)
        removed = d.pop("b")
        merged = {**d, "e": removed, **{"f": 1}}  # noqa: PIE800
        s = {3, 1, 2} | {5} - {1}
        s2 = {1, 2, 3} & {2, 3, 4} ^ {9}
        combined = [*lst, *(x,)]
        squares = [v * v for v in combined]
        inv = {k: v for k, v in merged.items() if k != "f"}
        return (
            sum(squares),
            len(lst),
            sorted(s),
            sorted(s2),
            list(merged.keys()),
            inv,
            d.get("zz", 7),
            tuple(lst[1:3]),
        )

    assert_same(fn, t(3), frames=1)


def test_slices_and_indexing() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = slice(1, 3)
        lst = [10, 20, 30, 40, 50]
        return (
            x[s],
            x[::2],
            x[-1],
            x[1:, None, :: -1 if False else 1],
            x[..., 0],
            x[:, [0, 2]],
            x[0] * 0 + x.new_tensor(lst[1:4][::-1]).sum(),
            x[1, 2:][None],
        )

    assert_same(fn, t(4, 3), frames=1)


def test_namedtuple_and_ordered_dict() -> None:
    def fn(x: torch.Tensor) -> tuple[Pair, OrderedDict[str, torch.Tensor], torch.Tensor]:
        p = Pair(x + 1, x * 2)
        first, second = p
        od = OrderedDict(one=first, two=p.second)
        od["three"] = second - first
        return p._replace(first=x), od, p[0] + p.first

    assert_same(fn, t(3), frames=1)


def test_star_args_and_kwargs_call() -> None:
    def g(a: torch.Tensor, b: torch.Tensor, *, scale: float = 1.0, shift: int = 0) -> torch.Tensor:
        return (a - b) * scale + shift

    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        args = [x, y]
        kw = {"scale": 2.0}
        return g(*args, **kw), g(*reversed(args), shift=3, **{"scale": 0.5})  # noqa: PIE804

    assert_same(fn, t(3), t(3), frames=1)


# --------------------------------------------------------------------------- operators

BINARY_FLOAT: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("truediv", lambda a, b: a / b),
    ("floordiv", lambda a, b: a // b),
    ("mod", lambda a, b: a % b),
    ("pow", lambda a, b: a.abs() ** b),
    ("matmul", lambda a, b: a @ b),
    ("lt", lambda a, b: a < b),
    ("le", lambda a, b: a <= b),
    ("eq", lambda a, b: a == b),
    ("ne", lambda a, b: a != b),
    ("gt", lambda a, b: a > b),
    ("ge", lambda a, b: a >= b),
]


@pytest.mark.parametrize("name,op", BINARY_FLOAT, ids=[n for n, _ in BINARY_FLOAT])
def test_binary_operator_float_tensors(name: str, op: Callable[[Any, Any], Any]) -> None:
    a = torch.randn(3, 3)
    b = torch.randn(3, 3).abs() + 0.5
    assert_same(op, a, b, frames=1, ops=1 if name != "pow" else 2)


BINARY_INT: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("lshift", lambda a, b: a << b),
    ("rshift", lambda a, b: a >> b),
    ("and", lambda a, b: a & b),
    ("or", lambda a, b: a | b),
    ("xor", lambda a, b: a ^ b),
    ("floordiv", lambda a, b: a // (b + 1)),
    ("mod", lambda a, b: a % (b + 1)),
    ("add", lambda a, b: a + b),
    ("mul", lambda a, b: a * b),
]


@pytest.mark.parametrize("name,op", BINARY_INT, ids=[n for n, _ in BINARY_INT])
def test_binary_operator_int_tensors(name: str, op: Callable[[Any, Any], Any]) -> None:
    a = torch.tensor([[-9, 5, 0], [7, -3, 12]], dtype=torch.int64)
    b = torch.tensor([[1, 2, 3], [0, 4, 2]], dtype=torch.int64)
    assert_same(op, a, b, frames=1)


@pytest.mark.parametrize(
    "op",
    [
        lambda x: 2 - x,
        lambda x: 2 / x,
        lambda x: 2.0**x,
        lambda x: 3 * x + 1,
        lambda x: 7 // x,
        lambda x: 5 % x,
        lambda x: -x,
        lambda x: +x,
        lambda x: abs(x),
    ],
    ids=["rsub", "rtruediv", "rpow", "mul_add", "rfloordiv", "rmod", "neg", "pos", "abs"],
)
def test_scalar_on_left_and_unary(op: Callable[[torch.Tensor], torch.Tensor]) -> None:
    assert_same(op, torch.randn(5).abs() + 0.5, frames=1)


def test_bitwise_and_logical_unary() -> None:
    def fn(i: torch.Tensor, m: torch.Tensor, flag: bool) -> tuple[Any, ...]:
        return ~i, ~m, (not flag), -i, i.bitwise_not() & 3, m & ~m, m | m.logical_not()

    ints = torch.tensor([0, 1, -2, 7])
    mask = torch.tensor([True, False, True, False])
    assert_same(fn, ints, mask, False, frames=1)


def test_python_int_operators_on_shapes() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        k = (n << 3) >> 1 | 1 ^ 2 & 7
        return x.reshape(-1) * (k % 5) + (n**2 // 3)

    assert_same(fn, t(4, 2), frames=1)


def test_inplace_operators() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        z = x.clone()
        z += y
        z *= 2
        z -= 1
        z /= 3
        z[0] = 100.0
        z.add_(y).mul_(0.5)
        n = 1
        n += 4
        n *= 3
        n //= 2
        n **= 2
        n %= 17
        n <<= 1
        n |= 1
        return z, x, n

    assert_same(fn, t(3), t(3), frames=1)


def test_inplace_mutation_of_input_is_visible() -> None:
    def fn(x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        x += 1
        x.mul_(2)
        i <<= 1
        i ^= 5
        return x.sum()

    assert_same(fn, t(4), torch.tensor([1, 2, 3]), frames=1)


def test_matmul_shapes_and_batched() -> None:
    def fn(a: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return a @ b, a @ v, v @ v, (a @ b) @ b.transpose(-1, -2), torch.matmul(v, b)

    assert_same(fn, t(2, 3, 4), t(2, 4, 4), t(4), frames=1)


# --------------------------------------------------------------------------- identity/membership


def test_is_is_not_in_not_in() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor | None, opts: dict[str, int]) -> Any:
        out = x
        if y is not None:
            out = out + y
        if y is None:
            out = out - 100
        if x is x and out is not x:  # noqa: PLR0124
            out = out * 2
        if "scale" in opts:
            out = out * opts["scale"]
        if "shift" not in opts:
            out = out + 1
        if 3 in (1, 2, 3) and 4 not in [1, 2]:
            out = out - 0.5
        return out, "scale" in opts, 2 in {1: 0, 2: 0}, "ab" in "cabd"  # noqa: PLR0133

    assert_same(fn, t(3), t(3), {"scale": 3}, frames=1)
    assert_same(fn, t(3), None, {"shift": 1}, frames=1)


def test_not_and_boolean_operators_on_constants() -> None:
    def fn(x: torch.Tensor, a: bool, b: int) -> tuple[torch.Tensor, Any, Any, bool]:
        c = a and b
        d = a or b
        if not a or b > 2:
            x = x + 1
        return x, c, d, not (a and not b)

    assert_same(fn, t(2), True, 3, frames=1)
    assert_same(fn, t(2), False, 0, frames=1)


# --------------------------------------------------------------------------- control flow


def test_branch_on_static_shape() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > 2:
            return x.sum(0)
        elif x.ndim == 2 and x.size(1) == 3:
            return x.mean(1)
        return x

    assert_same(fn, t(4, 3), frames=1, ops=1)
    assert_same(fn, t(2, 3), frames=1, ops=1)


def test_branch_on_constants_and_dtype() -> None:
    def fn(x: torch.Tensor, mode: str) -> torch.Tensor:
        if mode == "double":
            y = x * 2
        else:
            y = x * 3
        if x.dtype == torch.float32:
            y = y + 1
        if x.is_floating_point() and not x.requires_grad:
            y = y - 0.25
        return y if x.device.type == "cpu" else -y

    assert_same(fn, t(3), "double", frames=1, ops=3)
    assert_same(fn, t(3), "triple", frames=1, ops=3)
    assert_same(fn, torch.arange(3), "double", frames=1, ops=1)


def test_for_loops_over_iterables() -> None:
    def fn(x: torch.Tensor, ws: list[torch.Tensor], d: dict[str, float]) -> torch.Tensor:
        out = x
        for w in ws:
            out = out + w
        for s in (1, 2, 3):
            out = out * s
        for i in range(2, 8, 3):
            out = out - i
        for i, w in enumerate(ws, start=1):
            out = out + i * w
        for a, b in zip(ws, reversed(ws), strict=True):
            out = out + a * b
        for k, v in d.items():
            out = out + v * len(k)
        for k in d:  # noqa: PLC0206
            out = out - d[k]
        for v in d.values():
            out = out / (1 + v)
        return out

    assert_same(fn, t(3), [t(3), t(3), t(3)], {"a": 0.5, "bb": 1.5}, frames=1)


def test_while_break_continue_else() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        i = 0
        while i < 10:
            i += 1
            if i % 2 == 0:
                continue
            if i > 6:
                break
            x = x + i
        for j in range(3):
            if j > 5:
                break
            x = x * 1.5
        else:
            x = x - j
        n = 0
        for a in range(3):
            for b in range(3):
                if b > a:
                    break
                n += 1
        return x, n

    assert_same(fn, t(3), frames=1)


# --------------------------------------------------------------------------- functions


def _helper_add(x: torch.Tensor, k: int = 1) -> torch.Tensor:
    return x + k


def _helper_chain(x: torch.Tensor) -> torch.Tensor:
    return _helper_add(x, 2).relu() * _helper_add(x)


def test_nested_user_functions_inline_into_one_graph() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        def inner(y: torch.Tensor) -> torch.Tensor:
            return _helper_chain(y) - 1

        return inner(x) + _helper_chain(x.sin())

    assert_same(fn, t(4), frames=1, ops=11)


def test_recursion_with_constant_depth() -> None:
    def rec(x: torch.Tensor, n: int) -> torch.Tensor:
        return x if n == 0 else rec(x * 2, n - 1) + 1

    assert_same(lambda x: rec(x, 4), t(3), frames=1)


def test_closures_nonlocal_and_lambdas() -> None:
    scale = 3.0

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, int]:
        count = 0

        def bump(y: torch.Tensor) -> torch.Tensor:
            nonlocal count
            count += 1
            return y * scale + count

        sq = lambda y: y * y
        part = functools.partial(torch.add, alpha=2)
        return part(sq(bump(bump(x))), x), count

    assert_same(fn, t(3), frames=1)


def test_closure_returned_from_compiled_function_works() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, Callable[[int], int]]:
        k = 5

        def add_k(v: int) -> int:
            return v + k

        return x + k, add_k

    out, f = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())(t(2))
    assert f(1) == 6
    torch.testing.assert_close(out - 5, out - 5)


class _Scaler:
    factor = 2

    def __init__(self, bias: float) -> None:
        self.bias = bias

    def apply(self, x: torch.Tensor, /, extra: float = 0.0, *, neg: bool = False) -> torch.Tensor:
        y = x * self.factor + self.bias + extra
        return -y if neg else y

    @classmethod
    def make(cls, bias: float) -> _Scaler:
        return cls(bias)

    @staticmethod
    def twice(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    @property
    def total(self) -> float:
        return self.factor + self.bias


def test_methods_classmethods_staticmethods_properties() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        s = _Scaler.make(0.5)
        bound = s.apply
        return (
            bound(x),
            s.apply(x, 1.0, neg=True),
            _Scaler.apply(s, x, extra=2.0),
            _Scaler.twice(x) + s.total,
        )

    assert_same(fn, t(3), frames=1)


# --------------------------------------------------------------------------- argument binding


def _binder(
    a: Any, b: Any = 10, /, c: Any = 20, *args: Any, d: Any, e: Any = 30, **kwargs: Any
) -> Any:
    return a, b, c, args, d, e, kwargs


BIND_CASES: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((1,), {"d": 4}),
    ((1, 2), {"d": 4}),
    ((1, 2, 3), {"d": 4, "e": 5}),
    ((1, 2, 3, 6, 7), {"d": 4, "z": 9}),
    ((1,), {"c": 3, "d": 4, "a": "kw-a", "b": "kw-b"}),  # posonly names land in **kwargs
    ((1, 2), {"e": 5, "d": 4, "y": 8, "c": 3}),
]


@pytest.mark.parametrize("args,kwargs", BIND_CASES)
def test_argument_binding_of_compiled_function(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    def fn(x: torch.Tensor, *a: Any, **kw: Any) -> Any:
        bound = _binder(*a, **kw)
        return x + sum(v for v in bound[:3] if isinstance(v, int)), bound

    assert_same(fn, t(2), *args, kwargs=kwargs, frames=1)


@pytest.mark.parametrize("args,kwargs", BIND_CASES)
def test_argument_binding_at_top_level(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    def top(
        x: torch.Tensor,
        a: Any,
        b: Any = 10,
        /,
        c: Any = 20,
        *args: Any,
        d: Any,
        e: Any = 30,
        **kwargs: Any,
    ) -> Any:
        return x * 2, (a, b, c, args, d, e, kwargs)

    assert_same(top, t(2), *args, kwargs=kwargs, frames=1)


def test_defaults_are_shared_objects_and_kwdefaults() -> None:
    default = torch.ones(3)

    def inner(x: torch.Tensor, w: torch.Tensor = default, *, k: int = 4) -> torch.Tensor:
        return x * w + k

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return inner(x), inner(x, k=1), inner(x, x)

    assert_same(fn, t(3), frames=1)


def test_bad_call_raises_type_error_like_cpython() -> None:
    def callee(a: Any, /, b: Any) -> Any:
        return a + b

    def fn(x: torch.Tensor) -> Any:
        return callee(a=x, b=x)

    with pytest.raises(TypeError):
        fn(t(2))
    with pytest.raises(TypeError):
        ferrodyn.compile(fn, backend="eager")(t(2))

    def two(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y

    with pytest.raises(TypeError):
        ferrodyn.compile(two, backend="eager")(t(2))
    with pytest.raises(TypeError):
        ferrodyn.compile(two, backend="eager")(t(2), t(2), z=1)


# --------------------------------------------------------------------------- torch API


def test_torch_functions() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        return (
            torch.cat([x, y], dim=0),
            torch.stack((x, y), dim=1),
            torch.where(x > 0, x, y),
            torch.einsum("ij,kj->ik", x, y),
            torch.softmax(x, dim=-1),
            torch.cumsum(x, dim=1),
            torch.clamp(x, min=-0.5, max=0.5),
            torch.zeros_like(x) + torch.ones(2, 3) * torch.full((2, 3), 2.0),
            torch.arange(6).reshape(2, 3).to(x.dtype) + x,
            torch.max(x, dim=1),
            torch.sort(y, dim=1, descending=True).values,
            torch.topk(x, 2).indices,
            torch.nn.functional.pad(x, (1, 1)),
            torch.linalg.vector_norm(x, dim=1),
        )

    assert_same(fn, t(2, 3), t(2, 3), frames=1)


def test_nn_functional() -> None:
    w, b = t(5, 4), t(5)
    target = torch.tensor([1, 0, 4])

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        h = F.linear(x, w, b)
        return (
            F.relu(h),
            F.gelu(h),
            F.silu(h),
            F.softmax(h, dim=-1),
            F.log_softmax(h, dim=1),
            F.layer_norm(h, (5,)),
            F.dropout(h, p=0.5, training=False),
            F.cross_entropy(h, target),
            F.mse_loss(h, torch.zeros_like(h)),
            F.normalize(h, dim=1),
            F.conv1d(x.unsqueeze(1), w[:1].unsqueeze(1)[:, :, :3]),
        )

    assert_same(fn, t(3, 4), frames=1)


def test_tensor_methods_and_properties() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        y = x.view(2, 6).reshape(3, 4).permute(1, 0).contiguous()
        a, b = y.chunk(2, dim=0)
        c = y.split([1, 3], dim=0)[1]
        return (
            x.shape,
            x.dtype,
            x.device,
            x.ndim,
            x.size(),
            x.size(1),
            x.size(-1),
            x.numel(),
            x.dim(),
            x.T.shape,
            x.is_floating_point(),
            x.requires_grad,
            len(x),
            y.t().sum(dim=1, keepdim=True),
            a.mean() + b.std() + c.max(),
            x.unsqueeze(0).expand(2, 3, 4).float().double(),
            x.to(torch.float16).type_as(x),
            x.masked_fill(x > 0, 0.0).transpose(0, 1).flatten(),
            x.new_zeros(2) + x.new_ones((2,)),
            x.argmax(dim=1),
            x.clamp_min(0).sqrt().exp().log1p(),
        )

    assert_same(fn, t(3, 4), frames=1)


def test_shape_arithmetic_and_torch_size() -> None:
    def fn(x: torch.Tensor) -> tuple[Any, ...]:
        b, n, d = x.shape
        h = 2
        y = x.view(b, n, h, d // h).transpose(1, 2)
        out_shape = torch.Size([b, n * d])
        return y, y.shape[1:], out_shape, x.reshape(out_shape), tuple(x.shape) + (1,)

    assert_same(fn, t(2, 3, 4), frames=1)


def test_dtype_promotion_results() -> None:
    def fn(i: torch.Tensor, f: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return i + f, i / 2, i // 2, i * 2.5, h + f, h * 2, i.sum(), (i > 0).sum(), f.int()

    assert_same(
        fn,
        torch.tensor([1, 2, 3]),
        torch.tensor([0.5, 1.5, 2.5]),
        torch.tensor([1.0, 2.0, 3.0], dtype=torch.float16),
        frames=1,
    )


def test_returns_non_tensors() -> None:
    def fn(x: torch.Tensor) -> Any:
        return {"t": x + 1, "n": None, "f": 1.25, "s": "abc", "b": True, "l": [1, (2, "x")]}

    assert_same(fn, t(2), frames=1, ops=1)


def test_builtins_on_constants() -> None:
    def fn(x: torch.Tensor) -> Any:
        vals = [3, 1, 2]
        return (
            x * max(vals) + min(vals) - sum(vals),
            sorted(vals, reverse=True),
            list(map(lambda v: v * 2, vals)),  # noqa: C417
            list(filter(lambda v: v > 1, vals)),
            any(v > 2 for v in vals),
            all(v > 2 for v in vals),
            isinstance(x, torch.Tensor),
            isinstance(vals, tuple),
            len("hello"),
            int("12") + int(3.7),
            float(2),
            str(3.5),
            bool([]),
            hash(5) == hash(5),
            getattr(x, "ndim"),  # noqa: B009
            hasattr(x, "shape"),
            callable(fn),
            type(vals) is list,
        )

    assert_same(fn, t(2), frames=1)


def test_operator_module_functions() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        return (
            operator.add(x, y),
            operator.mul(x, 2),
            operator.getitem([x, y], 1),
            operator.itemgetter(0)((x, y)),
            operator.neg(y),
        )

    assert_same(fn, t(2), t(2), frames=1)
