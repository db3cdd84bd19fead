"""Real `transformers` models (tiny random configs, no downloads) compiled with ferrodyn:
outputs equal eager, and ops are captured in graphs (they captured none before: the first
decorator of each forward broke the graph and ran everything eagerly)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch

transformers = pytest.importorskip("transformers")


def _ids() -> tuple[torch.Tensor]:
    return (torch.randint(0, 99, (1, 7)),)


MODELS: dict[str, tuple[Callable[[], Any], Callable[[], tuple[torch.Tensor, ...]]]] = {
    "bert": (
        lambda: transformers.BertModel(
            transformers.BertConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                vocab_size=99,
            )
        ),
        _ids,
    ),
    "gpt2": (
        lambda: transformers.GPT2Model(
            transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=99)
        ),
        _ids,
    ),
    "distilbert": (
        lambda: transformers.DistilBertModel(
            transformers.DistilBertConfig(
                dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=99
            )
        ),
        _ids,
    ),
    "llama": (
        lambda: transformers.LlamaModel(
            transformers.LlamaConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=2,
                intermediate_size=37,
                vocab_size=99,
            )
        ),
        _ids,
    ),
    "vit": (
        lambda: transformers.ViTModel(
            transformers.ViTConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                image_size=16,
                patch_size=4,
            )
        ),
        lambda: (torch.randn(1, 3, 16, 16),),
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_captures_ops_and_equals_eager(name: str) -> None:
    make, inputs = MODELS[name]
    torch.manual_seed(0)
    m = make().eval()
    args = inputs()
    with torch.no_grad():
        exp = ferrodyn.explain(m, *args)
        assert sum(exp.ops_per_graph) > 10, (exp.ops_per_graph, exp.break_reasons[:3])
        compiled = ferrodyn.compile(m, backend="eager")
        for _ in range(2):
            out, ref = compiled(*args), m(*args)
            torch.testing.assert_close(out[0], ref[0])


@pytest.mark.parametrize("name", list(MODELS))
def test_model_graph_count_is_torch_compiles(name: str) -> None:
    # These forwards are one graph in torch.compile, and in ferrodyn too, with its ops (the
    # ModelOutput results are modelled, not built while tracing).
    import torch._dynamo

    make, inputs = MODELS[name]
    torch.manual_seed(0)
    m = make().eval()
    args = inputs()
    fd = ferrodyn.testing.CompileCounter()
    tc = ferrodyn.testing.CompileCounter()
    torch._dynamo.reset()
    with torch.no_grad():
        out = ferrodyn.compile(m, backend=fd)(*args)
        ref = torch.compile(m, backend=tc)(*args)
        torch.testing.assert_close(out[0], m(*args)[0])
        torch.testing.assert_close(ref[0], m(*args)[0])
    assert fd.frame_count <= tc.frame_count == 1, (fd.frame_count, tc.frame_count)
    # The same ops (Llama: torch.compile's graph has one node more, 142 against 141).
    assert fd.op_count >= tc.op_count - 1, (fd.op_count, tc.op_count)
