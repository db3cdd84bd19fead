"""A real model from `transformers` (tiny random config, no downloads) whose top-level
`forward` contains a graph break (a data-dependent `.item()` check before the model runs):
ops are captured on both sides of it, and the outputs equal eager. Without the check the
model is one graph."""

from __future__ import annotations

import ferrodyn
import pytest
import torch

transformers = pytest.importorskip("transformers")


def tiny_resnet() -> torch.nn.Module:
    cfg = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3
    )
    torch.manual_seed(0)
    return transformers.ResNetModel(cfg).eval()


def checked_resnet() -> torch.nn.Module:
    class CheckedResNet(transformers.ResNetModel):
        def forward(self, pixel_values: torch.Tensor, **kwargs: object) -> object:
            scale = pixel_values.abs().amax()
            if scale.item() > 1e6:  # data-dependent: a graph break
                raise ValueError("input out of range")
            return super().forward(pixel_values / scale.clamp(min=1.0), **kwargs)

    cfg = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3
    )
    torch.manual_seed(0)
    return CheckedResNet(cfg).eval()


def test_resnet_ops_on_both_sides_of_a_break_in_forward() -> None:
    m = checked_resnet()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        exp = ferrodyn.explain(m, x)
        torch.testing.assert_close(
            ferrodyn.compile(m, backend="eager")(x).pooler_output, m(x).pooler_output
        )
    ops = dict(zip(exp.graph_names, exp.ops_per_graph, strict=True))
    # Before the break: abs and amax, in CheckedResNet.forward's first graph.
    assert ops.get("checked_resnet.<locals>.CheckedResNet.forward", 0) >= 2, ops
    # After it: the whole model (embedder, encoder, pooler) in the resume function.
    assert any(n.startswith("__resume_forward") and k > 10 for n, k in ops.items()), ops
    assert exp.graph_break_count == 1, exp.break_reasons


def test_resnet_is_one_graph() -> None:
    m = tiny_resnet()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        exp = ferrodyn.explain(m, x)
    assert exp.graph_count == 1 and exp.graph_break_count == 0, exp.break_reasons


def test_resnet_outputs_equal_eager() -> None:
    m = tiny_resnet()
    x = torch.randn(2, 3, 32, 32)
    compiled = ferrodyn.compile(m, backend="eager")
    with torch.no_grad():
        for _ in range(2):
            out, ref = compiled(x), m(x)
            torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state)
            torch.testing.assert_close(out.pooler_output, ref.pooler_output)
