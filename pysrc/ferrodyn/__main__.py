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

    prof = sub.add_parser(
        "profile",
        help="compile-time profile of a script (or of the bundled model: --demo)",
        description="Run a script as __main__ and profile every ferrodyn.compile'd function "
        "and module it calls: trace, backend and guard time per frame, graph breaks, "
        "recompiles; a summary at the end and optionally a Chrome trace. Options go before "
        "the script; what follows the script is its own arguments.",
    )
    from .profile.cli import add_arguments

    add_arguments(prof)
    prof.set_defaults(subparser=prof)  # for usage errors that show the subcommand's usage
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
        from .profile import cli

        return cli.run(args, args.subparser)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
