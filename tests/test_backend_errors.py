"""A backend that fails: exc.BackendCompilerFailed is raised to the caller, unless
config.suppress_errors is on; then one BackendCompilerFailedWarning and the frame runs
eagerly without invoking the backend again."""

from __future__ import annotations

import pickle
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch

# BackendCompilerFailed / suppress_errors are ferrodyn's API; the torch.compile stand-in
# does not expose them.
pytestmark = pytest.mark.ferrodyn_contract


class CountingBackend:
    """Counts its calls; raises `error`, or returns `result`, or compiles eagerly."""

    def __init__(self, error: BaseException | None = None, result: Any = None) -> None:
        self.calls = 0
        self.error = error
        self.result = result

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        return gm.forward


def scale(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


def mybackend(gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
    raise RuntimeError("boom")


def backend_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, ferrodyn.exc.BackendCompilerFailedWarning)]


def run_recording(fn: Callable[[], Any]) -> tuple[Any, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, backend_warnings(caught)


# --------------------------------------------------------------------------- the types


def test_exception_types() -> None:
    assert issubclass(ferrodyn.exc.BackendCompilerFailed, ferrodyn.exc.FerrodynError)
    assert issubclass(ferrodyn.exc.BackendCompilerFailedWarning, UserWarning)


def test_message_and_attributes() -> None:
    inner = RuntimeError("boom")
    err = ferrodyn.exc.BackendCompilerFailed("mybackend", inner)
    assert err.backend_name == "mybackend"
    assert err.inner_exception is inner
    assert str(err) == "backend='mybackend' raised:\nRuntimeError: boom"
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.backend_name == "mybackend"


# --------------------------------------------------------------------------- raised by default


def test_backend_exception_is_raised_as_backend_compiler_failed() -> None:
    compiled = ferrodyn.compile(scale, backend=mybackend)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed) as info:
        compiled(torch.randn(3))
    err = info.value
    assert err.backend_name == "mybackend"
    assert isinstance(err.inner_exception, RuntimeError)
    assert str(err.inner_exception) == "boom"
    assert err.__cause__ is err.inner_exception
    msg = str(err)
    assert msg.startswith("backend='mybackend' raised:\nRuntimeError: boom\n"), msg
    assert "scale" in msg and "2 ops" in msg, msg


def test_backend_exception_keeps_its_identity_and_class() -> None:
    original = KeyError("missing kernel")
    backend = CountingBackend(error=original)
    compiled = ferrodyn.compile(scale, backend=backend)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed) as info:
        compiled(torch.randn(3))
    assert info.value.inner_exception is original
    assert info.value.__cause__ is original
    assert info.value.backend_name == "CountingBackend"
    assert "KeyError" in str(info.value)


def test_backend_failure_raises_on_every_call_without_suppress() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(scale, backend=backend)
    for _ in range(2):
        with pytest.raises(ferrodyn.exc.BackendCompilerFailed):
            compiled(torch.randn(3))
    assert backend.calls >= 1


def test_backend_failure_under_fullgraph_is_raised() -> None:
    compiled = ferrodyn.compile(scale, backend=mybackend, fullgraph=True)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed, match="boom"):
        compiled(torch.randn(3))


def test_backend_failure_in_a_module_is_raised() -> None:
    model = ferrodyn.compile(torch.nn.Linear(3, 2), backend=mybackend)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed, match="mybackend"):
        model(torch.randn(4, 3))


def break_in_middle(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    y = y + zlib.crc32(b"graph break")  # not traceable: the graph breaks here
    return y * 2


def test_backend_failure_after_a_graph_break_is_raised() -> None:
    compiled = ferrodyn.compile(break_in_middle, backend=mybackend)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed, match="mybackend"):
        compiled(torch.randn(3))


def test_graph_without_ops_does_not_call_the_backend() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))

    def ident(x: torch.Tensor) -> torch.Tensor:
        return x

    x = torch.randn(3)
    assert ferrodyn.compile(ident, backend=backend)(x) is x
    assert backend.calls == 0


# --------------------------------------------------------------------------- non-callable result


@pytest.mark.parametrize("returned", [42, "compiled", torch.ones(2)], ids=["int", "str", "tensor"])
def test_backend_returning_non_callable(returned: Any) -> None:
    backend = CountingBackend(result=returned)
    compiled = ferrodyn.compile(scale, backend=backend)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed) as info:
        compiled(torch.randn(3))
    err = info.value
    msg = str(err)
    assert err.backend_name == "CountingBackend"
    assert type(returned).__name__ in msg and "expected a callable" in msg, msg
    assert isinstance(err.inner_exception, TypeError)
    assert err.__cause__ is err.inner_exception


def test_backend_returning_42_names_it() -> None:
    compiled = ferrodyn.compile(scale, backend=lambda gm, inputs: 42)
    with pytest.raises(ferrodyn.exc.BackendCompilerFailed, match="returned 42"):
        compiled(torch.randn(3))


# --------------------------------------------------------------------------- suppress_errors


def test_suppress_errors_warns_once_runs_eagerly_and_compiles_once() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(scale, backend=backend)
    x = torch.randn(3)

    def five_calls() -> list[torch.Tensor]:
        return [compiled(x) for _ in range(5)]

    with ferrodyn.config.patch(suppress_errors=True):
        results, caught = run_recording(five_calls)
    for r in results:
        torch.testing.assert_close(r, scale(x))
    assert len(caught) == 1, [str(w.message) for w in caught]
    msg = str(caught[0].message)
    assert "CountingBackend" in msg and "boom" in msg, msg
    assert backend.calls == 1


def test_suppressed_failure_stays_eager_after_the_patch_ends() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(scale, backend=backend)
    x = torch.randn(3)
    with ferrodyn.config.patch(suppress_errors=True):
        _, caught = run_recording(lambda: compiled(x))
    assert len(caught) == 1
    torch.testing.assert_close(compiled(x), scale(x))  # the cached eager entry is used
    assert backend.calls == 1


def test_suppress_errors_via_torch_dynamo_config() -> None:
    import torch._dynamo.config

    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(scale, backend=backend)
    x = torch.randn(3)
    with torch._dynamo.config.patch(suppress_errors=True):
        results, caught = run_recording(lambda: [compiled(x) for _ in range(3)])
    for r in results:
        torch.testing.assert_close(r, scale(x))
    assert len(caught) == 1
    assert backend.calls == 1


def test_suppress_errors_with_non_callable_result_runs_eagerly() -> None:
    backend = CountingBackend(result=42)
    compiled = ferrodyn.compile(scale, backend=backend)
    x = torch.randn(3)
    with ferrodyn.config.patch(suppress_errors=True):
        results, caught = run_recording(lambda: [compiled(x) for _ in range(5)])
    for r in results:
        torch.testing.assert_close(r, scale(x))
    assert len(caught) == 1
    assert "expected a callable" in str(caught[0].message)
    assert backend.calls == 1


@ferrodyn.config.patch(suppress_errors=True)
def test_suppress_errors_after_a_graph_break() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(break_in_middle, backend=backend)
    x = torch.randn(3)
    results, caught = run_recording(lambda: [compiled(x) for _ in range(3)])
    for r in results:
        torch.testing.assert_close(r, break_in_middle(x))
    assert len(caught) == 1
    assert backend.calls == 1  # the first graph failed: the whole frame runs eagerly


@ferrodyn.config.patch(suppress_errors=True)
def test_reset_retries_a_suppressed_backend() -> None:
    backend = CountingBackend(error=RuntimeError("boom"))
    compiled = ferrodyn.compile(scale, backend=backend)
    x = torch.randn(3)
    run_recording(lambda: compiled(x))
    ferrodyn.reset()
    run_recording(lambda: compiled(x))
    assert backend.calls == 2
