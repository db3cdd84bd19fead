"""Issue 13's point-1 models (the configurations of tests/test_model_suite.py), built without
importing torch._dynamo, for fresh-process benchmarks (benches/bench_cold_start.py).

`build(name)` returns (model, args, kwargs, train): the model in eval mode unless `train`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

VOCAB = 99


def _ids(n: int = 7) -> torch.Tensor:
    return torch.randint(1, VOCAB, (1, n))


class LSTMHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _encoder() -> nn.Module:
    layer = nn.TransformerEncoderLayer(
        d_model=16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True
    )
    return nn.TransformerEncoder(layer, num_layers=2)


def build(name: str) -> tuple[nn.Module, tuple, dict[str, Any], bool]:
    if name == "lstm":
        return LSTMHead().eval(), (torch.randn(2, 5, 8),), {}, False
    if name in ("transformer_encoder", "transformer_encoder_train"):
        train = name.endswith("train")
        model = _encoder()
        return model.train(train), (torch.randn(2, 5, 16),), {}, train
    import transformers

    transformers.logging.set_verbosity_error()
    small = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
    }
    if name == "bert":
        m = transformers.BertModel(transformers.BertConfig(vocab_size=VOCAB, **small))
        return m.eval(), (_ids(),), {}, False
    if name == "gpt2":
        cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB)
        return transformers.GPT2LMHeadModel(cfg).eval(), (_ids(),), {}, False
    if name == "llama":
        cfg = transformers.LlamaConfig(vocab_size=VOCAB, num_key_value_heads=2, **small)
        return transformers.LlamaForCausalLM(cfg).eval(), (_ids(),), {}, False
    if name == "t5":
        cfg = transformers.T5Config(
            d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=2, vocab_size=VOCAB
        )
        kwargs = {"input_ids": _ids(), "decoder_input_ids": _ids(4)}
        return transformers.T5ForConditionalGeneration(cfg).eval(), (), kwargs, False
    if name == "vit":
        cfg = transformers.ViTConfig(image_size=16, patch_size=4, **small)
        return transformers.ViTModel(cfg).eval(), (torch.randn(1, 3, 16, 16),), {}, False
    if name == "resnet":
        cfg = transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_channels=3
        )
        return transformers.ResNetModel(cfg).eval(), (torch.randn(1, 3, 32, 32),), {}, False
    if name == "mixtral":
        cfg = transformers.MixtralConfig(
            vocab_size=VOCAB,
            num_key_value_heads=2,
            num_local_experts=4,
            num_experts_per_tok=2,
            experts_implementation="eager",
            **small,
        )
        return transformers.MixtralForCausalLM(cfg).eval(), (_ids(),), {}, False
    if name == "distilbert":
        cfg = transformers.DistilBertConfig(
            dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=VOCAB
        )
        return transformers.DistilBertModel(cfg).eval(), (_ids(),), {}, False
    raise ValueError(f"unknown model {name!r}")


NAMES = (
    "bert",
    "gpt2",
    "llama",
    "t5",
    "vit",
    "resnet",
    "mixtral",
    "distilbert",
    "transformer_encoder",
    "transformer_encoder_train",
    "lstm",
)
