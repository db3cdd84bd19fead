"""Dynamic shapes on real models, side by side: GPT-2 greedy `generate()` (8 new tokens,
the forward compiled) and BERT over 4 batch sizes x 3 lengths. For eager, torch.compile and
ferrodyn.compile (backend="eager" for both compilers, so the numbers are the tracers'):
graphs compiled, and the wall time of the whole sequence in a fresh process per compiler
(compiles included), as a ratio to eager.

    ~/.cache/ferrodyn-venv/bin/python benches/bench_dynamic.py
"""

from __future__ import annotations

import subprocess
import sys
import time

CASES = ("generate", "bert_shapes")
WHO = ("eager", "torch.compile", "ferrodyn")


def run_one(case: str, who: str) -> tuple[float, int]:
    import ferrodyn
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(1)
    if who == "torch.compile":
        import torch._dynamo.testing

        cnt: object = torch._dynamo.testing.CompileCounter()
        comp = lambda f: torch.compile(f, backend=cnt)
    elif who == "ferrodyn":
        cnt = ferrodyn.testing.CompileCounter()
        comp = lambda f: ferrodyn.compile(f, backend=cnt)
    else:
        cnt = None
        comp = lambda f: f
    with torch.no_grad():
        if case == "generate":
            cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=99)
            m = transformers.GPT2LMHeadModel(cfg).eval()
            ids = torch.randint(0, 99, (1, 5))
            m.forward = comp(m.forward)
            start = time.perf_counter()
            m.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        else:
            cfg = transformers.BertConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                vocab_size=99,
            )
            m = transformers.BertModel(cfg).eval()
            cm = comp(m)
            inputs = [torch.randint(0, 99, (b, s)) for b in (1, 2, 3, 4) for s in (5, 7, 9)]
            start = time.perf_counter()
            for ids in inputs:
                cm(ids)
    elapsed = time.perf_counter() - start
    return elapsed, getattr(cnt, "frame_count", 0)


def main() -> None:
    if len(sys.argv) == 3:
        elapsed, graphs = run_one(sys.argv[1], sys.argv[2])
        print(f"{elapsed} {graphs}")
        return
    print("| case | eager | torch.compile | ferrodyn | graphs tc / fd | fd / tc time |")
    print("|---|---|---|---|---|---|")
    for case in CASES:
        res = {}
        for who in WHO:
            out = subprocess.run(
                [sys.executable, __file__, case, who], capture_output=True, text=True, check=True
            ).stdout.split()
            res[who] = (float(out[-2]), int(out[-1]))
        e, t, f = res["eager"][0], res["torch.compile"][0], res["ferrodyn"][0]
        print(
            f"| {case} | {e:.3f} s | {t:.3f} s ({t / e:.1f}x) | {f:.3f} s ({f / e:.1f}x) "
            f"| {res['torch.compile'][1]} / {res['ferrodyn'][1]} | {f / t:.2f} |"
        )


if __name__ == "__main__":
    main()
