"""`python -m ferrodyn profile [options] script.py [args...]` and `... profile --demo`."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from . import Profiler, ProfileResult


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trace",
        metavar="PATH",
        help="write a Chrome/Perfetto trace (JSON) to PATH; open it in chrome://tracing "
        "or ui.perfetto.dev",
    )
    p.add_argument(
        "--top", type=int, default=10, metavar="N", help="frames/breaks in the summary (10)"
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress line per compiled frame on stderr"
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="profile the bundled TinyTransformer instead of a script",
    )
    p.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        help="--demo only: backend(s) to compile with, repeatable (default: eager and inductor)",
    )
    p.add_argument("--layers", type=int, default=2, help="--demo only: transformer blocks (2)")
    p.add_argument("script", nargs="?", help="the Python script to run as __main__")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.top < 0:
        parser.error("--top must be >= 0")
    if args.demo:
        if args.script is not None:
            parser.error("give either --demo or a script, not both")
        if args.layers < 1:
            parser.error("--layers must be positive")
        prof = Profiler(progress=not args.quiet)
        with prof:
            code = _demo(args.backend or ["eager", "inductor"], args.layers)
    else:
        if args.script is None:
            parser.error("the script to profile is missing (or use --demo)")
        if args.backend:
            parser.error("--backend is for --demo; a script chooses its own backends")
        if not os.path.isfile(args.script):
            parser.error(f"no such file: {args.script}")
        prof = Profiler(progress=not args.quiet)
        with prof:
            code = _run_script(args.script, args.args)
    _report(prof.result, args.top, args.trace)
    return code


def _report(result: ProfileResult, top: int, trace: str | None) -> None:
    sys.stdout.flush()
    print("\n" + result.summary(top=top), flush=True)
    if trace:
        try:
            result.export_chrome_trace(trace)
        except OSError as e:
            print(f"ferrodyn profile: cannot write {trace}: {e}", file=sys.stderr)
        else:
            print(f"Chrome trace written to {trace} (chrome://tracing or ui.perfetto.dev)")


@contextmanager
def _script_env(path: str, argv: list[str]) -> Iterator[None]:
    old_argv, old_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [path, *argv]
    script_dir = os.path.dirname(os.path.abspath(path))
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    try:
        yield
    finally:
        sys.argv = old_argv
        if old_path0 is not None and sys.path:
            sys.path[0] = old_path0


def _run_script(path: str, argv: list[str]) -> int:
    """Run `path` as `__main__` (like `python path args...`); returns its exit status."""
    with _script_env(path, argv):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as e:
            if e.code is None:
                return 0
            if isinstance(e.code, int):
                return e.code
            print(e.code, file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("ferrodyn profile: interrupted; partial profile follows", file=sys.stderr)
            return 130
        except BaseException:  # noqa: BLE001 - report the script's error, then the profile
            traceback.print_exc()
            return 1
    return 0


def _demo(backends: list[str], layers: int) -> int:
    """Compile the bundled TinyTransformer with each backend; call it on two batch sizes (the
    second one recompiles: shapes are static) and check the results against eager."""
    import torch

    from .. import api
    from ..models import TinyTransformer

    status = 0
    for backend in backends:
        api.reset()
        torch.manual_seed(0)
        model = TinyTransformer(layers=layers).eval()
        print(f"ferrodyn profile --demo: TinyTransformer(layers={layers}), backend {backend}")
        try:
            compiled = api.compile(model, backend=backend)
            with torch.no_grad():
                for batch in (4, 4, 2):
                    x = model.example_input(batch=batch)
                    ok = torch.allclose(compiled(x), model(x), rtol=1e-4, atol=1e-4)
                    if not ok:
                        print(f"  batch {batch}: MISMATCH with eager")
                        status = 1
        except Exception as e:  # noqa: BLE001 - e.g. inductor without a C++ compiler
            print(f"  backend {backend!r} failed: {type(e).__name__}: {e}")
            status = 1
    return status
