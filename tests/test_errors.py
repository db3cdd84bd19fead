"""Bad arguments to compile(), and fullgraph=True failures pointing at the user's line."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import ferrodyn
import pytest
import torch

THIS_FILE = Path(__file__).name


def line_of(marker: str) -> int:
    """1-based line number of the unique source line carrying ``# <marker>``."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


def ident(x: torch.Tensor) -> torch.Tensor:
    return x


# --------------------------------------------------------------------------- compile() arguments


@pytest.mark.parametrize("bad", [42, "model", 3.5, [1, 2]], ids=["int", "str", "float", "list"])
def test_non_callable_is_type_error(bad: object) -> None:
    with pytest.raises(TypeError) as info:
        ferrodyn.compile(bad)
    msg = str(info.value)
    assert repr(bad) in msg or type(bad).__name__ in msg, msg


def test_int_is_type_error_mentioning_it() -> None:
    with pytest.raises(TypeError, match="42|int"):
        ferrodyn.compile(42)


def test_unknown_backend_name() -> None:
    with pytest.raises(ferrodyn.exc.InvalidBackend) as info:
        ferrodyn.compile(ident, backend="no_such_backend_xyz")
    assert isinstance(info.value, ValueError)
    assert "no_such_backend_xyz" in str(info.value)


def test_invalid_backend_class() -> None:
    assert issubclass(ferrodyn.exc.InvalidBackend, ValueError)
    assert issubclass(ferrodyn.exc.RecompileLimitWarning, UserWarning)
    assert issubclass(ferrodyn.exc.Unsupported, Exception)


def test_bad_mode_lists_valid_modes() -> None:
    with pytest.raises(ValueError) as info:
        ferrodyn.compile(ident, mode="fastest")
    msg = str(info.value)
    for valid in ("default", "reduce-overhead", "max-autotune"):
        assert valid in msg


def test_mode_and_options_together() -> None:
    with pytest.raises(ValueError):
        ferrodyn.compile(ident, mode="default", options={"max_autotune": False})


def test_errors_raised_at_compile_time_for_modules() -> None:
    with pytest.raises(ferrodyn.exc.InvalidBackend):
        ferrodyn.compile(torch.nn.Linear(2, 2), backend="no_such_backend_xyz")
    with pytest.raises(ValueError):
        ferrodyn.compile(torch.nn.Linear(2, 2), mode="fastest")


# --------------------------------------------------------------------------- fullgraph


def item_in_control_flow(x: torch.Tensor) -> torch.Tensor:
    if x.sum().item() > 0:  # BREAK-item
        return x + 1
    return x - 1


def tensor_in_control_flow(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    if y.sum() > 0:  # BREAK-branch
        return y + 1
    return y - 1


def unknown_c_function(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    return y * zlib.crc32(b"ferrodyn")  # BREAK-crc32


def print_object(x: torch.Tensor) -> torch.Tensor:
    print(object())  # BREAK-print
    return x + 1


def _inner_breaks(x: torch.Tensor) -> torch.Tensor:
    return x * zlib.adler32(b"x")  # BREAK-nested


def outer_calls_breaking(x: torch.Tensor) -> torch.Tensor:
    return _inner_breaks(x + 1) - 1


CASES: list[tuple[Callable[[torch.Tensor], torch.Tensor], str, str | None]] = [
    (item_in_control_flow, "BREAK-item", "item"),
    (tensor_in_control_flow, "BREAK-branch", None),
    (unknown_c_function, "BREAK-crc32", "crc32"),
    (print_object, "BREAK-print", "print"),
    (outer_calls_breaking, "BREAK-nested", "adler32"),
]
CASE_IDS = ["item", "branch", "crc32", "print", "nested"]


@pytest.mark.parametrize("fn,marker,step", CASES, ids=CASE_IDS)
def test_fullgraph_unsupported_names_step_and_location(
    fn: Callable[[torch.Tensor], torch.Tensor], marker: str, step: str | None
) -> None:
    compiled = ferrodyn.compile(fn, backend="eager", fullgraph=True)
    with pytest.raises(ferrodyn.exc.Unsupported) as info:
        compiled(torch.ones(3))
    msg = str(info.value)
    assert f"{THIS_FILE}:{line_of(marker)}" in msg, msg
    if step is not None:
        assert step in msg, msg


@pytest.mark.parametrize("fn,marker,step", CASES, ids=CASE_IDS)
def test_without_fullgraph_results_equal_eager(
    fn: Callable[[torch.Tensor], torch.Tensor], marker: str, step: str | None
) -> None:
    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    for x in (torch.ones(3), -torch.ones(3), torch.randn(3)):
        torch.testing.assert_close(compiled(x), fn(x))


def test_fullgraph_succeeds_on_traceable_code() -> None:
    cnt = ferrodyn.testing.CompileCounter()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return (x @ x.T).softmax(-1)

    x = torch.randn(3, 3)
    torch.testing.assert_close(ferrodyn.compile(fn, backend=cnt, fullgraph=True)(x), fn(x))
    assert cnt.frame_count == 1


def test_user_exception_propagates_unchanged() -> None:
    class Boom(Exception):
        pass

    def fn(x: torch.Tensor, fail: bool) -> torch.Tensor:
        y = x + 1
        if fail:
            raise Boom(f"bad value {3}")
        return y

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    torch.testing.assert_close(compiled(torch.ones(2), False), torch.full((2,), 2.0))
    with pytest.raises(Boom, match="bad value 3"):
        compiled(torch.ones(2), True)


def test_runtime_shape_error_propagates() -> None:
    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y

    compiled = ferrodyn.compile(fn, backend=ferrodyn.testing.CompileCounter())
    with pytest.raises(RuntimeError):
        fn(torch.randn(2, 3), torch.randn(2, 3))
    with pytest.raises(Exception):  # noqa: B017 - torch raises RuntimeError subclasses here
        compiled(torch.randn(2, 3), torch.randn(2, 3))
