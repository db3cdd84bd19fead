"""Side-by-side benchmark: eager vs torch.compile vs ferrodyn.compile (backend="eager").

Usage (from the repository root):

    ~/.cache/ferrodyn-venv/bin/python benches/compare.py            # full run, a few minutes
    ~/.cache/ferrodyn-venv/bin/python benches/compare.py --quick    # smoke run, seconds

Per-call rows: median time of one steady-state call (after warmup), and the overhead over
eager (compiled - eager).  The ratio column is ferrodyn overhead / torch.compile overhead
(lower is better for ferrodyn; n/a when torch.compile's overhead is <= 0, which happens for
modules: the compiled graph skips nn.Module.__call__ dispatch, so it can beat eager).  The
graph-break row times a function of 20 tensor ops with one untraceable call in the middle
(two graphs and a resume function per call under torch.compile).  The first-call row is the median time of the first call
(trace + compile + run) of a freshly reset 12-block transformer.  A failing cell prints the
error and the run continues.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from _cases import (
    FIRST_CALL_CASE,
    GRAPH_BREAK_CASE,
    IMPLS,
    PER_CALL_CASES,
    Case,
    compile_with,
    load_ferrodyn,
    reset_all,
)

Cell = float | str  # a time in ns, or an error text


def _short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}".splitlines()[0]
    return text[:60] + ("..." if len(text) > 60 else "")


def per_call_ns(fn: Callable[..., Any], args: tuple[Any, ...], iters: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of one call in a loop of ``iters`` calls."""
    for _ in range(max(50, iters // 10)):
        fn(*args)
    samples = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter_ns()
            for _ in range(iters):
                fn(*args)
            samples.append((time.perf_counter_ns() - start) / iters)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples)


def run_per_call(case: Case, iters: int, repeats: int) -> dict[str, Cell]:
    row: dict[str, Cell] = {}
    for impl in IMPLS:
        try:
            reset_all()
            fn, args = case.make()
            expected = fn(*args)
            compiled = compile_with(impl, fn)
            got = compiled(*args)
            torch.testing.assert_close(got, expected)
            row[impl] = per_call_ns(compiled, args, iters, repeats)
        except Exception as e:  # noqa: BLE001 - report in the table, keep going
            row[impl] = _short(e)
    return row


def run_first_call(case: Case, runs: int) -> dict[str, Cell]:
    row: dict[str, Cell] = {}
    model, args = case.make()
    expected = model(*args)
    for impl in IMPLS:
        if impl == "eager":
            start = time.perf_counter_ns()
            model(*args)
            row[impl] = float(time.perf_counter_ns() - start)
            continue
        try:
            samples = []
            for _ in range(runs):
                reset_all()
                gc.collect()
                start = time.perf_counter_ns()
                compiled = compile_with(impl, model)
                out = compiled(*args)
                samples.append(float(time.perf_counter_ns() - start))
                torch.testing.assert_close(out, expected)
            row[impl] = statistics.median(samples)
        except Exception as e:  # noqa: BLE001 - report in the table, keep going
            row[impl] = _short(e)
    reset_all()
    return row


def fmt_time(cell: Cell) -> str:
    if isinstance(cell, str):
        return cell
    if cell >= 1e8:
        return f"{cell / 1e9:.2f} s"
    if cell >= 1e5:
        return f"{cell / 1e6:.1f} ms"
    return f"{cell / 1e3:.2f} us"


def overhead(cell: Cell, base: Cell) -> Cell:
    if isinstance(cell, str) or isinstance(base, str):
        return "n/a"
    return cell - base


def ratio(num: Cell, den: Cell) -> str:
    if isinstance(num, str) or isinstance(den, str) or den <= 0:
        return "n/a"
    return f"{num / den:.2f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--iters", type=int, default=2000, help="calls per timing loop")
    p.add_argument("--repeats", type=int, default=7, help="timing loops per cell (median)")
    p.add_argument("--first-call-runs", type=int, default=5, help="fresh compiles (median)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--skip-first-call", action="store_true")
    ns = p.parse_args(argv)
    if ns.quick:
        ns.iters, ns.repeats, ns.first_call_runs = 200, 3, 1

    torch.set_num_threads(1)
    ferrodyn, err = load_ferrodyn()
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"ferrodyn {'unavailable: ' + str(err) if ferrodyn is None else 'ok'}, "
        f"{platform.machine()}, torch threads=1"
    )
    print(f"per-call: median of {ns.repeats} loops x {ns.iters} calls; backend='eager'\n")

    rows = []
    for case in [*PER_CALL_CASES, GRAPH_BREAK_CASE]:
        print(f"running {case.name} ...", file=sys.stderr, flush=True)
        r = run_per_call(case, ns.iters, ns.repeats)
        ov_t = overhead(r["torch.compile"], r["eager"])
        ov_f = overhead(r["ferrodyn"], r["eager"])
        rows.append(
            [
                case.label,
                fmt_time(r["eager"]),
                fmt_time(r["torch.compile"]),
                fmt_time(r["ferrodyn"]),
                fmt_time(ov_t),
                fmt_time(ov_f),
                ratio(ov_f, ov_t),
                ratio(r["ferrodyn"], r["torch.compile"]),
            ]
        )
    print(
        table(
            [
                "per-call case",
                "eager",
                "torch.compile",
                "ferrodyn",
                "overhead torch.compile",
                "overhead ferrodyn",
                "ferrodyn/torch.compile overhead",
                "ferrodyn/torch.compile time",
            ],
            rows,
        )
    )

    if not ns.skip_first_call:
        print(f"running {FIRST_CALL_CASE.name} ...", file=sys.stderr, flush=True)
        r = run_first_call(FIRST_CALL_CASE, ns.first_call_runs)
        print()
        print(
            table(
                [
                    "first call (trace+compile+run)",
                    "eager run",
                    "torch.compile",
                    "ferrodyn",
                    "ferrodyn/torch.compile",
                ],
                [
                    [
                        f"{FIRST_CALL_CASE.label} (median of {ns.first_call_runs})",
                        fmt_time(r["eager"]),
                        fmt_time(r["torch.compile"]),
                        fmt_time(r["ferrodyn"]),
                        ratio(r["ferrodyn"], r["torch.compile"]),
                    ]
                ],
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
