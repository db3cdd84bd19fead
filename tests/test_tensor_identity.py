"""`is` between traced tensors follows eager identity (in-place results alias their input)."""

from __future__ import annotations

import ferrodyn
import torch
from ferrodyn.testing import CompileCounter


def test_inplace_result_is_its_input_and_new_tensor_is_not() -> None:
    def fn(x: torch.Tensor) -> tuple[bool, bool, torch.Tensor]:
        y = x.add_(1)
        z = x * 2
        return y is x, z is x, y + z

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    expected = fn(torch.ones(3))
    got = compiled(torch.ones(3))
    assert got[:2] == expected[:2] == (True, False)
    torch.testing.assert_close(got[2], expected[2])
    assert cnt.frame_count == 1


def test_identity_of_two_inputs_follows_each_call() -> None:
    def fn(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, torch.Tensor]:
        return a is b, a + b

    compiled = ferrodyn.compile(fn, backend=CompileCounter())
    t, u = torch.ones(2), torch.ones(2)
    assert compiled(t, t)[0] is True
    assert compiled(t, u)[0] is False
    assert compiled(t, t)[0] is True


def test_parameter_reached_through_weakref_is_the_same_input() -> None:
    lstm = torch.nn.LSTM(4, 8, batch_first=True)
    cnt = CompileCounter()
    compiled = ferrodyn.compile(lstm, backend=cnt)
    x = torch.randn(2, 3, 4)
    expected = lstm(x)
    got = compiled(x)
    torch.testing.assert_close(got[0], expected[0])
    torch.testing.assert_close(got[1][0], expected[1][0])
    assert cnt.frame_count == 1


def test_self_attention_same_tensor_is_one_input_and_cross_attention_recompiles() -> None:
    attn = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    cnt = CompileCounter()
    compiled = ferrodyn.compile(attn, backend=cnt)
    x, y = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    for q, k, v, graphs in [(x, x, x, 1), (x, x, x, 1), (x, y, y, 2), (x, x, x, 2)]:
        torch.testing.assert_close(compiled(q, k, v)[0], attn(q, k, v)[0])
        assert cnt.frame_count == graphs


def test_hasattr_of_a_missing_attribute_on_an_input_tensor_is_guarded() -> None:
    # transformers probes `hasattr(input_ids, "jax")`: False without a graph break, and
    # an attribute set on the tensor later is noticed (the instance dict is guarded).
    def f(x: torch.Tensor) -> torch.Tensor:
        if hasattr(x, "jax"):
            return x * 2
        return x + 1

    x = torch.randn(3)
    cf = ferrodyn.compile(f, backend="eager")
    torch.testing.assert_close(cf(x), f(x))
    assert ferrodyn.explain(f)(x).graph_break_count == 0
    x.jax = True  # type: ignore[attr-defined]
    torch.testing.assert_close(cf(x), x * 2)
