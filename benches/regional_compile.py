"""Regional compilation: the 12 blocks of the benchmark transformer compiled one by one
(`compile(block)` for each), as users compile a model's repeated layers. torch.compile
shares one cache per code object and does not specialise on the module object, so one
graph serves all twelve blocks; ferrodyn matches modules by class and shares the compiled
forward of a class between its compiles, so it should too.

    ~/.cache/ferrodyn-venv/bin/python benches/regional_compile.py [backend [ferrodyn|torch.compile]]

Prints, for torch.compile and ferrodyn.compile, the graphs the backend received and the wall
time of the first pass through the twelve compiled blocks (tracing + backend compiles +
run), then the steady-state time of one pass. The backend defaults to "inductor". Inductor
caches compiled kernels on disk, so the first-pass times are only comparable across fresh
processes with a fresh cache (`TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)`), one compiler each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cases import Transformer, reset_all


def run(impl: str, backend: str) -> tuple[int, float, float]:
    reset_all()
    torch.manual_seed(0)
    model = Transformer().eval()
    graphs = 0

    def counting(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        nonlocal graphs
        graphs += 1
        if backend == "eager":
            return gm.forward
        from torch._inductor.compile_fx import compile_fx

        return compile_fx(gm, example_inputs)

    if impl == "torch.compile":
        blocks = [torch.compile(b, backend=counting) for b in model.blocks]
    else:
        import ferrodyn

        blocks = [ferrodyn.compile(b, backend=counting) for b in model.blocks]
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        t0 = time.perf_counter()
        y = x
        for b in blocks:
            y = b(y)
        first = time.perf_counter() - t0
        steady = float("inf")
        for _ in range(20):
            t0 = time.perf_counter()
            y = x
            for b in blocks:
                y = b(y)
            steady = min(steady, time.perf_counter() - t0)
    return graphs, first, steady


def main() -> None:
    backend = sys.argv[1] if len(sys.argv) > 1 else "inductor"
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, backend {backend}")
    print("| compiler | graphs | first pass (12 blocks) | steady pass |")
    print("|---|---|---|---|")
    impls = sys.argv[2:] or ["torch.compile", "ferrodyn"]
    for impl in impls:
        graphs, first, steady = run(impl, backend)
        print(f"| {impl} | {graphs} | {first:.2f} s | {steady * 1e6:.0f} us |")


if __name__ == "__main__":
    main()
