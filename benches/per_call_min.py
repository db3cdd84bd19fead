"""Per-call overhead on a noisy machine: eager, torch.compile and ferrodyn.compile
(backend="eager") timed interleaved, 40 rounds of 1000 calls each, GC off, best round kept
(PER_CALL_ROUNDS / PER_CALL_CALLS change both).

    ~/.cache/ferrodyn-venv/bin/python benches/per_call_min.py

To compare two ferrodyn builds, run it once per build (e.g. `PYTHONPATH=<other checkout>/pysrc`
with that checkout's extension built in place) and compare the ratio columns.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import ferrodyn
import torch


def add_one(x: torch.Tensor) -> torch.Tensor:
    return x + 1


def sum10(*xs: torch.Tensor) -> torch.Tensor:
    a, b, c, d, e, f, g, h, i, j = xs
    return a + b + c + d + e + f + g + h + i + j


def named10(a, b, c, d, e, f, g, h, i, j):
    return a + b + c + d + e + f + g + h + i + j


ROUNDS = int(os.environ.get("PER_CALL_ROUNDS", "40"))
CALLS = int(os.environ.get("PER_CALL_CALLS", "1000"))


def best_ns(
    fns: dict[str, Callable[..., Any]], args: tuple[Any, ...]
) -> tuple[dict[str, float], list[float]]:
    """The best round of each callable, and the overhead ratio of every round.

    A round times eager, torch.compile and ferrodyn back to back, so the three share the
    machine's state of the moment; the ratio of that round is (fd - eager) / (tc - eager).
    """
    best = dict.fromkeys(fns, float("inf"))
    ratios: list[float] = []
    gc.disable()
    try:
        for _ in range(ROUNDS):
            now: dict[str, float] = {}
            for name, fn in fns.items():
                t = time.perf_counter_ns()
                for _ in range(CALLS):
                    fn(*args)
                now[name] = (time.perf_counter_ns() - t) / CALLS
                best[name] = min(best[name], now[name])
            if now["tc"] > now["eager"]:
                ratios.append((now["fd"] - now["eager"]) / (now["tc"] - now["eager"]))
    finally:
        gc.enable()
    return best, ratios


def main() -> None:
    torch.set_num_threads(1)
    cases = {
        "x + 1 (4 elems)": (add_one, (torch.randn(4),)),
        "sum of 10 tensor args": (sum10, tuple(torch.randn(4) for _ in range(10))),
        "10 named tensor params": (named10, tuple(torch.randn(4) for _ in range(10))),
    }
    print(f"torch {torch.__version__}, ferrodyn from {ferrodyn.__file__}")
    print(
        "| case | eager | torch.compile | ferrodyn | overhead tc | overhead ferrodyn "
        "| ratio of best rounds | median ratio of paired rounds (quartiles) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (fn, args) in cases.items():
        fns = {
            "eager": fn,
            "tc": torch.compile(fn, backend="eager"),
            "fd": ferrodyn.compile(fn, backend="eager"),
        }
        for f in fns.values():
            f(*args)
            f(*args)
        b, ratios = best_ns(fns, args)
        ot, of = b["tc"] - b["eager"], b["fd"] - b["eager"]
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [float("nan")] * 3
        print(
            f"| {name} | {b['eager']:.0f} ns | {b['tc']:.0f} ns | {b['fd']:.0f} ns "
            f"| {ot:.0f} ns | {of:.0f} ns | {of / ot:.3f}x "
            f"| {q[1]:.3f}x ({q[0]:.3f}x-{q[2]:.3f}x) |"
        )


if __name__ == "__main__":
    main()
