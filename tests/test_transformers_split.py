"""A real model from `transformers` (tiny random config, no downloads) whose top-level
`forward` contains a graph break: ops are captured on both sides of it, the callee that
broke (the encoder) is compiled in its own frame, and the outputs equal eager."""

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


def test_resnet_ops_on_both_sides_of_the_encoder_break() -> None:
    m = tiny_resnet()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        exp = ferrodyn.explain(m, x)
    ops = dict(zip(exp.graph_names, exp.ops_per_graph, strict=True))
    # Before the break: the embedder, in ResNetModel.forward's first graph.
    assert ops.get("ResNetModel.forward", 0) > 0, ops
    # After it: the pooler, in the resume function of ResNetModel.forward.
    assert any(n.startswith("__resume_forward") and k > 0 for n, k in ops.items()), ops
    # The encoder (where the break is) compiled in its own frame.
    assert ops.get("ResNetEncoder.forward", 0) > 0, ops
    assert exp.break_reasons


def test_resnet_outputs_equal_eager() -> None:
    m = tiny_resnet()
    x = torch.randn(2, 3, 32, 32)
    compiled = ferrodyn.compile(m, backend="eager")
    with torch.no_grad():
        for _ in range(2):
            out, ref = compiled(x), m(x)
            torch.testing.assert_close(out.last_hidden_state, ref.last_hidden_state)
            torch.testing.assert_close(out.pooler_output, ref.pooler_output)
