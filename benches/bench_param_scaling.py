"""Per-call overhead against the number of parameters (issue 13, point 4).

For `nn.Sequential` stacks of `nn.Linear(4, 4)` (16 to 432 parameters) and a tiny 12-layer
GPT-2 (148 parameters and buffers), each compiled with `backend="eager"`: the time of one
call of the raw FX graph (the graph module the backend received, called directly), of
torch.compile's and of ferrodyn's compiled callable, interleaved in rounds, best round kept.
Overhead = compiled − raw graph. Both compile the same function, `lambda x: model(x)` with
the model a free variable. Also each one's guard check alone: torch.compile's measured from
Python (its cache entry's `guard_manager.check(f_locals)`, one Python call per check),
ferrodyn's from Rust (`CompiledCode._time_guard_check`: the global-state snapshot and the
guard tree with its fetches, as on a cache hit).

    ~/.cache/ferrodyn-venv/bin/python benches/bench_param_scaling.py [--rounds 30 --calls 300]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import ferrodyn
import torch
import torch._dynamo


def _capture() -> tuple[list[tuple[torch.fx.GraphModule, list]], Callable[..., Any]]:
    graphs: list[tuple[torch.fx.GraphModule, list]] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        graphs.append((gm, list(example_inputs)))
        return gm.forward

    return graphs, backend


def _sequential(n_layers: int) -> tuple[torch.nn.Module, tuple]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(n_layers)]).eval()
    return model, (torch.randn(2, 4),)


def _gpt2() -> tuple[torch.nn.Module, tuple]:
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_embd=32, n_layer=12, n_head=2, vocab_size=99)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    model.config.use_cache = False
    return model, (torch.randint(1, 99, (1, 8)),)


def _raw_graph_call(model: Callable[..., Any], args: tuple) -> Callable[[], Any]:
    """The FX graph ferrodyn traced, called with the inputs its backend received (the
    parameters as graph inputs): the floor both compilers add their overhead to."""
    graphs, backend = _capture()
    ferrodyn.reset()
    ferrodyn.compile(model, backend=backend)(*args)
    assert len(graphs) == 1, f"{len(graphs)} graphs"
    gm, inputs = graphs[0]
    gm(*inputs)
    return lambda: gm(*inputs)


def _calls(model: torch.nn.Module) -> Callable[..., Any]:
    """The function both compilers compile: a call of the model, the model a free
    variable (so torch.compile's guard check can be run alone with its frame's locals)."""

    def call(x: torch.Tensor) -> Any:
        return model(x)

    return call


def _tc_guard_check(fn: Callable[..., Any], args: tuple) -> Any:
    """A callable running torch.compile's guard check of `fn`'s cached graph alone."""
    from torch._C._dynamo.eval_frame import _debug_get_cache_entry_list

    code = fn.__code__
    entries = _debug_get_cache_entry_list(code)
    if not entries:
        return None
    manager = entries[0].guard_manager
    f_locals = dict(zip(code.co_varnames, args))
    f_locals.update(
        (name, cell.cell_contents) for name, cell in zip(code.co_freevars, fn.__closure__ or ())
    )
    if not manager.check(f_locals):
        return None
    return lambda: manager.check(f_locals)


def _bind(fn: Callable[..., Any], args: tuple) -> Callable[[], Any]:
    return lambda: fn(*args)


def _rounds(fns: dict[str, Callable[[], Any]], rounds: int, calls: int) -> dict[str, float]:
    best = dict.fromkeys(fns, float("inf"))
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                t = time.perf_counter_ns()
                for _ in range(calls):
                    fn()
                best[name] = min(best[name], (time.perf_counter_ns() - t) / calls)
    finally:
        gc.enable()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=300)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    cases = [(f"Sequential of {n} Linear(4, 4)", lambda n=n: _sequential(n)) for n in (8, 72, 216)]
    cases.append(("GPT-2, 12 layers (tiny)", _gpt2))
    print(
        "| model | params+buffers | raw graph | torch.compile overhead | torch.compile guard "
        "check | ferrodyn overhead | ferrodyn guard check | ferrodyn / torch.compile overhead "
        "| ferrodyn guard check / torch.compile overhead |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for label, make in cases:
            model, args = make()
            n = len(list(model.parameters())) + len(list(model.buffers()))
            fn = _calls(model)
            raw = _raw_graph_call(fn, args)
            torch._dynamo.reset()
            tc = torch.compile(fn, backend="eager")
            tc(*args)
            guard = _tc_guard_check(fn, args)
            ferrodyn.reset()
            fd = ferrodyn.compile(fn, backend="eager")
            fd(*args)
            fns = {"raw": raw, "tc": _bind(tc, args), "fd": _bind(fd, args)}
            if guard is not None:
                fns["guard"] = guard
            best = _rounds(fns, opts.rounds, opts.calls)
            fd_guard = min(
                fd._time_guard_check(args, opts.calls)[1] * 1e9 for _ in range(opts.rounds)
            )
            tc_over = best["tc"] - best["raw"]
            fd_over = best["fd"] - best["raw"]
            g = best.get("guard")
            print(
                f"| {label} | {n} | {best['raw'] / 1000:.1f} us | {tc_over / 1000:.2f} us | "
                f"{'-' if g is None else f'{g / 1000:.2f} us'} | {fd_over / 1000:.2f} us | "
                f"{fd_guard / 1000:.2f} us | {fd_over / tc_over:.2f}x | "
                f"{fd_guard / tc_over:.2f}x |"
            )


if __name__ == "__main__":
    main()
