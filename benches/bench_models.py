"""Steady-state per-call time of issue 13's point-1 models (benches/_suite_models.py, the
configurations of tests/test_model_suite.py): eager vs torch.compile vs ferrodyn.compile,
both backend="eager", one thread, interleaved rounds of 10 calls, best of 20 rounds, under
no_grad (the train-mode encoder with grad on, forward only).

    ~/.cache/ferrodyn-venv/bin/python benches/bench_models.py            # every model
    ~/.cache/ferrodyn-venv/bin/python benches/bench_models.py bert gpt2  # some

First calls (fresh processes) are benches/bench_cold_start.py's.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _suite_models
import ferrodyn
import torch
import torch._dynamo

torch.set_num_threads(1)


def bench_all(fns, args, kwargs, train, rounds=20, calls=10):
    best = dict.fromkeys(fns, float("inf"))
    with torch.set_grad_enabled(train):
        for f in fns.values():
            for _ in range(3):
                f(*args, **kwargs)
        for _ in range(rounds):
            for name, f in fns.items():
                t = time.perf_counter()
                for _ in range(calls):
                    f(*args, **kwargs)
                best[name] = min(best[name], (time.perf_counter() - t) / calls)
    return {k: v * 1e6 for k, v in best.items()}


print("| model | eager | torch.compile | ferrodyn | ferrodyn / torch.compile |")
print("|---|---|---|---|---|")
for name in sys.argv[1:] or _suite_models.NAMES:
    torch.manual_seed(0)
    m, args, kwargs, train = _suite_models.build(name)
    torch._dynamo.reset()
    ferrodyn.reset()
    tc = torch.compile(m, backend="eager")
    fd = ferrodyn.compile(m, backend="eager")
    t = bench_all({"eager": m, "tc": tc, "fd": fd}, args, kwargs, train)
    print(
        f"| {name} | {t['eager']:.0f} us | {t['tc']:.0f} us | {t['fd']:.0f} us | "
        f"{t['fd'] / t['tc']:.2f} |",
        flush=True,
    )
