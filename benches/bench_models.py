"""Per-call forward time of tiny transformers models (tests/test_transformers_models.py's
configs): eager vs torch.compile vs ferrodyn.compile, both backend="eager", one thread,
best of 20 rounds of 10 calls, no_grad.

    ~/.cache/ferrodyn-venv/bin/python benches/bench_models.py bert gpt2 llama
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import time

import ferrodyn
import torch
import torch._dynamo
from test_transformers_models import MODELS

torch.set_num_threads(1)


def bench(f, args):
    with torch.no_grad():
        for _ in range(5):
            f(*args)
        best = 1e9
        for _ in range(20):
            t = time.perf_counter()
            for _ in range(10):
                f(*args)
            best = min(best, (time.perf_counter() - t) / 10)
    return best * 1e6


print("| model | eager | torch.compile | ferrodyn | ferrodyn / torch.compile |")
print("|---|---|---|---|---|")
for name in sys.argv[1:]:
    make, inputs = MODELS[name]
    torch.manual_seed(0)
    m = make().eval()
    args = inputs()
    torch._dynamo.reset()
    tc = torch.compile(m, backend="eager")
    fd = ferrodyn.compile(m, backend="eager")
    e, t, f = bench(m, args), bench(tc, args), bench(fd, args)
    print(f"| {name} | {e:.0f} us | {t:.0f} us | {f:.0f} us | {f / t:.2f} |", flush=True)
