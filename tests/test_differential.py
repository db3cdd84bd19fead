"""Differential testing: generated programs, compiled vs eager.

``tests/_progen.py`` builds small seeded Python programs (tensor ops, local containers,
branches, loops, inlined helpers, closures, comprehensions, local generators drained by
``sum``/``for``/``next``/``send``, try/except/else/finally with builtin and user exceptions
and chaining, occasional graph breaks).  Each one is compiled with
``ferrodyn.compile(fn, backend=CompileCounter())``, run twice on fresh copies of its
arguments and compared with eager; the second call must not compile anything new.

Budget: ``FERRODYN_FUZZ_PROGRAMS`` programs (default 150), seeds starting at
``FERRODYN_FUZZ_SEED`` (default 0).  A failure prints the seed and the program's source;
rerun one program with ``pytest tests/test_differential.py -k seed123``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import _progen
import ferrodyn
import pytest
import torch
from _helpers import assert_tree_equal, clone_tree
from torch.utils._python_dispatch import TorchDispatchMode

BUDGET = int(os.environ.get("FERRODYN_FUZZ_PROGRAMS", "150"))
FIRST_SEED = int(os.environ.get("FERRODYN_FUZZ_SEED", "0"))
SEEDS = list(range(FIRST_SEED, FIRST_SEED + BUDGET))
BREAKING = {"break", "item", "tensor_bool", "mask_index", "format", "slot_store", "import"}


class _AtenCounter(TorchDispatchMode):
    """Counts the aten ops an eager run executes."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += 1
        return func(*args, **(kwargs or {}))


def run_differential(
    prog: _progen.Program, compile_fn: Callable[..., Any] | None = None
) -> ferrodyn.testing.CompileCounter:
    """Compare eager and compiled runs of ``prog``; raise AssertionError with its source."""
    fn = prog.build()
    args = prog.make_args()
    eager_args = clone_tree(args)
    with _AtenCounter() as aten:
        expected = fn(*eager_args)  # a generator bug if this raises: let it propagate
    cnt = ferrodyn.testing.CompileCounter()
    compiled = (compile_fn or ferrodyn.compile)(fn, backend=cnt)
    try:
        first = None
        for call in range(2):
            c_args = clone_tree(args)
            got = compiled(*c_args)
            assert_tree_equal(got, expected, f"call {call}: result", equal_nan=True)
            assert_tree_equal(c_args, eager_args, f"call {call}: args after call")
            if first is None:
                first = cnt.frame_count
        assert cnt.frame_count == first, (
            f"second call recompiled: {first} -> {cnt.frame_count} graphs"
        )
        if not prog.features & BREAKING:  # straight-line once Python values are constant
            want = 1 if aten.count else 0  # no graph when no tensor op ran
            assert cnt.frame_count == want, f"a program without breaks gave {first} graphs"
    except Exception as e:
        raise AssertionError(
            f"program seed={prog.seed} (features: {sorted(prog.features)}) failed: "
            f"{type(e).__name__}: {e}\n"
            f"reproduce: pytest tests/test_differential.py -k 'seed{prog.seed}]'\n"
            f"--- source ---\n{prog.source}"
        ) from e
    return cnt


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_generated_program_matches_eager(seed: int) -> None:
    run_differential(_progen.generate(seed))


def _through_the_frame_hook(fn: Callable[..., Any], backend: Any) -> Callable[..., Any]:
    """A compiled outer frame that ferrodyn runs eagerly (`skip_frame`) and that calls `fn`:
    `fn` is reached natively and compiled through the PEP 523 frame hook."""

    def outer(*args: Any) -> Any:
        torch._dynamo.skip_frame()
        return fn(*args)

    return ferrodyn.compile(outer, backend=backend)


HOOK_SEEDS = SEEDS[: max(1, len(SEEDS) // 3)]


@pytest.mark.parametrize("seed", HOOK_SEEDS, ids=[f"seed{s}" for s in HOOK_SEEDS])
def test_generated_program_reached_through_the_frame_hook_matches_eager(seed: int) -> None:
    run_differential(_progen.generate(seed), _through_the_frame_hook)


# --------------------------------------------------------------------------- the harness itself


def test_generator_is_deterministic() -> None:
    for seed in (0, 1, 17, 4242):
        a, b = _progen.generate(seed), _progen.generate(seed)
        assert a.source == b.source
        assert_tree_equal(a.make_args(), b.make_args())
        assert a.build()(*a.make_args()) is not None
    assert _progen.generate(1).source != _progen.generate(2).source


def test_generator_covers_every_feature() -> None:
    seen: set[str] = set()
    for seed in SEEDS:
        seen |= _progen.generate(seed).features
    wanted = {
        "append",
        "break",
        "cat",
        "dict",
        "helper",
        "if",
        "item",
        "list",
        "loop",
        "tensor_bool",
        "mask_index",
        "format",
        "slot_store",
        "import",
        "tuple",
        "view",
        "closure",
        "comprehension",
    }
    if BUDGET >= 100:
        wanted.add("nested_helper")
    assert wanted <= seen, f"not generated in {BUDGET} programs: {sorted(wanted - seen)}"


def test_half_the_programs_have_no_break() -> None:
    progs = [_progen.generate(s) for s in range(200)]
    without = [p for p in progs if not BREAKING & p.features]
    assert 60 <= len(without) <= 140, len(without)
    for p in without:
        assert "zlib" not in p.source and ".item()" not in p.source, p.source


def test_harness_reports_a_wrong_result_with_seed_and_source() -> None:
    prog = _progen.generate(5)

    def miscompile(fn: Callable[..., Any], backend: Any) -> Callable[..., Any]:
        compiled = ferrodyn.compile(fn, backend=backend)

        def wrong(*args: Any) -> Any:
            out = compiled(*args)
            return _perturb(out)

        return wrong

    with pytest.raises(AssertionError) as info:
        run_differential(prog, miscompile)
    msg = str(info.value)
    assert "seed=5" in msg and prog.source in msg and "seed5]" in msg


def test_harness_reports_a_recompile_on_the_second_call() -> None:
    prog = _progen.generate(7)

    def recompiling(fn: Callable[..., Any], backend: Any) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            backend.frame_count += 1  # as if every call compiled a new graph
            return fn(*args)

        return run

    with pytest.raises(AssertionError, match="second call recompiled"):
        run_differential(prog, recompiling)


def _perturb(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out + 1
    if isinstance(out, dict):
        return {k: _perturb(v) for k, v in out.items()}
    if isinstance(out, tuple | list):
        return type(out)(_perturb(v) for v in out)
    if isinstance(out, int):
        return out + 1
    return out
