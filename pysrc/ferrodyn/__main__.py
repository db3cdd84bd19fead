"""Command line: `python -m ferrodyn {demo,profile} ...`."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ferrodyn",
        description="ferrodyn: torch.compile's bytecode tracer rebuilt around a Rust core.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="compile the bundled TinyTransformer and compare it with eager",
        description="Compile the bundled TinyTransformer with ferrodyn.compile and compare "
        "results and timings with eager PyTorch.",
    )
    demo.add_argument(
        "--backend",
        default="inductor",
        help="eager, aot_eager, inductor (default; falls back to eager if it fails) "
        "or any torch.compile backend name",
    )
    demo.add_argument("--layers", type=int, default=2, help="transformer blocks (default 2)")
    demo.add_argument("--batch", type=int, default=4, help="batch size (default 4)")
    demo.add_argument("--iters", type=int, default=50, help="timed calls (default 50)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--no-graph", action="store_true", help="don't print the FX graphs")

    prof = sub.add_parser("profile", help="compile-time profile of a script (not implemented yet)")
    prof.add_argument("script", nargs="?", help="the Python script to profile")
    prof.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.layers < 1 or args.batch < 1 or args.iters < 1:
            parser.error("--layers, --batch and --iters must be positive")
        from . import demo
        from .exc import InvalidBackend

        try:
            return demo.run(
                backend=args.backend,
                layers=args.layers,
                batch=args.batch,
                iters=args.iters,
                seed=args.seed,
                show_graph=not args.no_graph,
            )
        except InvalidBackend as e:
            parser.error(str(e))
    if args.command == "profile":
        print("ferrodyn profile: not implemented yet", file=sys.stderr)
        return 2
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
