"""No stale graphs: a graph is never reused after torch global state it depended on changed.

Each test compiles a small function, calls it under a sequence of global states (A, B, A, ...)
and checks every result against eager (values, dtype, device, requires_grad, is_inference),
then checks that ferrodyn compiled as many graphs as ``torch.compile`` does on the same
function and the same sequence of calls (``torch.compile`` with a counting backend is the
reference; its own results are checked against eager first, so the reference is sound).
Where ``torch.compile`` is itself wrong the test compares with eager only and is marked
``ferrodyn_contract``.

Every test leaves the global state as it found it (``_restore_global_state``).
"""

from __future__ import annotations

import contextlib
import logging
import random
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal, clone_tree
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

State = Callable[[], contextlib.AbstractContextManager[Any]]
Steps = list[tuple[str, State]]

# --------------------------------------------------------------------------- global state


def _default_device_raw() -> Any:
    """The default device as set (None when unset; torch.get_default_device() says cpu)."""
    ctx = getattr(getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None), "device_context", None)
    return None if ctx is None else ctx.device


def _deterministic() -> tuple[bool, bool]:
    return (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def _set_deterministic(v: tuple[bool, bool]) -> None:
    torch.use_deterministic_algorithms(v[0], warn_only=v[1])


def _attr(obj: Any, name: str) -> tuple[Callable[[], Any], Callable[[Any], None]]:
    return (lambda: getattr(obj, name)), (lambda v: setattr(obj, name, v))


# (name, getter, setter) of every piece of global state a test here may change.
_GLOBALS: list[tuple[str, Callable[[], Any], Callable[[Any], Any]]] = [
    ("grad mode", torch.is_grad_enabled, torch.set_grad_enabled),
    ("default dtype", torch.get_default_dtype, torch.set_default_dtype),
    ("deterministic", _deterministic, _set_deterministic),
    ("mkldnn.enabled", *_attr(torch.backends.mkldnn, "enabled")),
    ("cudnn.enabled", *_attr(torch.backends.cudnn, "enabled")),
    ("cudnn.benchmark", *_attr(torch.backends.cudnn, "benchmark")),
    ("cudnn.deterministic", *_attr(torch.backends.cudnn, "deterministic")),
    ("cudnn.allow_tf32", *_attr(torch.backends.cudnn, "allow_tf32")),
    ("cuda.matmul.allow_tf32", *_attr(torch.backends.cuda.matmul, "allow_tf32")),
    (
        "float32 matmul precision",
        torch.get_float32_matmul_precision,
        torch.set_float32_matmul_precision,
    ),
    ("anomaly mode", torch.is_anomaly_enabled, torch.set_anomaly_enabled),
    ("warn always", torch.is_warn_always_enabled, torch.set_warn_always),
    ("num threads", torch.get_num_threads, torch.set_num_threads),
    ("forward AD", torch._C._is_fwd_grad_enabled, torch._C._set_fwd_grad_enabled),
    (
        "autograd multithreading",
        torch.autograd.is_multithreading_enabled,
        torch._C._set_multithreading_enabled,
    ),
    ("view replay", torch._C._is_view_replay_enabled, torch._C._set_view_replay_enabled),
    ("default device", _default_device_raw, torch.set_default_device),
]


def _snapshot() -> list[Any]:
    return [get() for _, get, _ in _GLOBALS]


@pytest.fixture(autouse=True)
def _restore_global_state() -> Iterator[None]:
    """Restore every global setting a test may touch, even when it fails midway."""
    before = _snapshot()
    autocast_before = torch.is_autocast_enabled("cpu")
    try:
        yield
    finally:
        for (_, get, put), old in zip(_GLOBALS, before, strict=True):
            if get() != old:
                put(old)
        assert torch.is_autocast_enabled("cpu") == autocast_before
        torch._dynamo.reset()


@contextlib.contextmanager
def setting(get: Callable[[], Any], put: Callable[[Any], Any], value: Any) -> Iterator[None]:
    old = get()
    put(value)
    try:
        yield
    finally:
        put(old)


def same() -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


def grad_enabled(on: bool) -> State:
    """torch.set_grad_enabled called as a function (a lasting change), undone afterwards."""
    return lambda: setting(torch.is_grad_enabled, torch.set_grad_enabled, on)


def default_dtype(dtype: torch.dtype) -> State:
    return lambda: setting(torch.get_default_dtype, torch.set_default_dtype, dtype)


def deterministic(on: bool, warn_only: bool = False) -> State:
    return lambda: setting(_deterministic, _set_deterministic, (on, warn_only))


def attr_flag(obj: Any, name: str, value: Any) -> State:
    return lambda: setting(*_attr(obj, name), value)


def matmul_precision(p: str) -> State:
    return lambda: setting(
        torch.get_float32_matmul_precision, torch.set_float32_matmul_precision, p
    )


def autocast(dtype: torch.dtype, **kw: Any) -> State:
    return lambda: torch.autocast("cpu", dtype=dtype, **kw)


def default_device(device: str) -> State:
    return lambda: setting(_default_device_raw, torch.set_default_device, device)


# --------------------------------------------------------------------------- comparison


def assert_like_eager(got: Any, expected: Any, where: str) -> None:
    """Values, dtype, shape and device (assert_tree_equal), plus autograd metadata."""
    assert_tree_equal(got, expected, where)
    if isinstance(expected, torch.Tensor):
        assert got.requires_grad == expected.requires_grad, (
            f"{where}: requires_grad {got.requires_grad} != {expected.requires_grad}"
        )
        assert got.is_inference() == expected.is_inference(), (
            f"{where}: is_inference() {got.is_inference()} != {expected.is_inference()}"
        )
    elif isinstance(expected, tuple | list):
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            assert_like_eager(g, e, f"{where}[{i}]")


def _call_all(
    compiled: Callable[..., Any], fn: Callable[..., Any], args: tuple, steps: Steps, who: str
) -> None:
    for i, (label, state) in enumerate(steps):
        eager_args, compiled_args = clone_tree(args), clone_tree(args)  # made outside the state
        with state():
            expected = fn(*eager_args)
            got = compiled(*compiled_args)
        assert_like_eager(got, expected, f"{who}, call {i} (under {label})")


def torch_frame_count(fn: Callable[..., Any], args: tuple, steps: Steps) -> int:
    """Graphs torch.compile makes for the same calls (its results must match eager too)."""
    torch._dynamo.reset()
    cnt = torch._dynamo.testing.CompileCounter()
    try:
        _call_all(torch.compile(fn, backend=cnt), fn, args, steps, "torch.compile (reference)")
    finally:
        torch._dynamo.reset()
    return cnt.frame_count


def check_steps(
    fn: Callable[..., Any],
    args: tuple,
    steps: Steps,
    *,
    frames: int | None = None,
    torch_reference: bool = True,
) -> ferrodyn.testing.CompileCounter:
    """Call ``fn`` compiled by ferrodyn under each state of ``steps`` in turn; every result
    must equal eager's under the same state; then the graph count must equal torch.compile's
    (and ``frames`` when given)."""
    cnt = ferrodyn.testing.CompileCounter()
    _call_all(ferrodyn.compile(fn, backend=cnt), fn, args, steps, "ferrodyn")
    if frames is not None:
        assert cnt.frame_count == frames, (
            f"ferrodyn compiled {cnt.frame_count} graphs, not {frames}"
        )
    if torch_reference:
        ref = torch_frame_count(fn, args, steps)
        assert cnt.frame_count == ref, (
            f"ferrodyn compiled {cnt.frame_count} graphs, torch.compile {ref}, for "
            f"{[label for label, _ in steps]}"
        )
    return cnt


def xr() -> torch.Tensor:
    return torch.randn(3, 3, requires_grad=True)


def xp() -> torch.Tensor:
    return torch.randn(3, 3)


# --------------------------------------------------------------------------- grad mode


def times_two(x: torch.Tensor) -> torch.Tensor:
    return x * 2


def plus_grad_flag(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + torch.is_grad_enabled()


def test_grad_mode_no_grad() -> None:
    steps = [("grad", same), ("no_grad", torch.no_grad), ("grad", same), ("no_grad", torch.no_grad)]
    check_steps(times_two, (xr(),), steps, frames=2)


def test_grad_mode_enable_grad() -> None:
    steps = [
        ("no_grad", torch.no_grad),
        ("enable_grad", torch.enable_grad),
        ("no_grad", torch.no_grad),
        ("enable_grad", torch.enable_grad),
    ]
    check_steps(times_two, (xr(),), steps, frames=2)


def test_grad_mode_set_grad_enabled() -> None:
    steps = [
        ("set_grad_enabled(True)", grad_enabled(True)),
        ("set_grad_enabled(False)", grad_enabled(False)),
        ("with set_grad_enabled(True)", lambda: torch.set_grad_enabled(True)),
        ("with set_grad_enabled(False)", lambda: torch.set_grad_enabled(False)),
    ]
    check_steps(times_two, (xr(),), steps, frames=2)


def test_grad_mode_read_inside_function() -> None:
    steps = [("grad", same), ("no_grad", torch.no_grad), ("grad", same)]
    check_steps(plus_grad_flag, (xr(),), steps, frames=2)


def test_grad_mode_backward_after_no_grad_call() -> None:
    compiled = ferrodyn.compile(times_two, backend="eager")
    x = xr()
    with torch.no_grad():
        assert not compiled(x).requires_grad
    out = compiled(x)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3, 3), 2.0))


# --------------------------------------------------------------------------- inference mode


def test_inference_mode() -> None:
    steps = [
        ("plain", same),
        ("inference_mode", torch.inference_mode),
        ("plain", same),
        ("inference_mode", torch.inference_mode),
    ]
    check_steps(times_two, (xp(),), steps, frames=2)


def test_inference_mode_with_grad_input() -> None:
    steps = [("grad", same), ("inference_mode", torch.inference_mode), ("grad", same)]
    check_steps(times_two, (xr(),), steps, frames=2)


def test_inference_mode_new_tensor() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones(3), torch.ones(3) + x.sum()

    steps = [
        ("no_grad", torch.no_grad),
        ("inference_mode", torch.inference_mode),
        ("no_grad", torch.no_grad),
    ]
    check_steps(fn, (xp(),), steps, frames=2)


def test_inference_mode_read_inside_function() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + torch.is_inference_mode_enabled()

    steps = [
        ("no_grad", torch.no_grad),
        ("inference_mode", torch.inference_mode),
        ("no_grad", torch.no_grad),
        ("inference_mode", torch.inference_mode),
    ]
    # torch.compile graph-breaks on torch.is_inference_mode_enabled() (two graphs per state),
    # so its graph count is no reference here: one graph per state.
    check_steps(fn, (xp(),), steps, frames=2, torch_reference=False)


# --------------------------------------------------------------------------- autocast


def matmul(x: torch.Tensor) -> torch.Tensor:
    return x @ x


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
def test_autocast_cpu(dtype: torch.dtype) -> None:
    steps = [
        ("plain", same),
        (f"autocast({dtype})", autocast(dtype)),
        ("plain", same),
        (f"autocast({dtype})", autocast(dtype)),
    ]
    check_steps(matmul, (xp(),), steps, frames=2)


def test_autocast_cpu_dtype_switch() -> None:
    steps = [
        ("autocast(float16)", autocast(torch.float16)),
        ("autocast(bfloat16)", autocast(torch.bfloat16)),
        ("autocast(float16)", autocast(torch.float16)),
    ]
    check_steps(matmul, (xp(),), steps, frames=2)


def test_autocast_cpu_with_grad_input() -> None:
    steps = [("plain", same), ("autocast(bfloat16)", autocast(torch.bfloat16)), ("plain", same)]
    check_steps(matmul, (xr(),), steps, frames=2)


def test_autocast_cache_enabled_false() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x @ x + int(torch.is_autocast_cache_enabled())

    steps = [
        ("plain", same),
        ("autocast(cache_enabled=False)", autocast(torch.bfloat16, cache_enabled=False)),
        ("autocast", autocast(torch.bfloat16)),
        ("autocast(cache_enabled=False)", autocast(torch.bfloat16, cache_enabled=False)),
        ("plain", same),
    ]
    check_steps(fn, (xp(),), steps, frames=3)


def test_autocast_enabled_read_inside_function() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.get_autocast_dtype("cpu")) + torch.is_autocast_enabled("cpu")

    steps = [
        ("plain", same),
        ("autocast(bfloat16)", autocast(torch.bfloat16)),
        ("autocast(float16)", autocast(torch.float16)),
        ("plain", same),
    ]
    check_steps(fn, (xp(),), steps, frames=3)


# --------------------------------------------------------------------------- default dtype


def test_default_dtype_float64() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return torch.ones(3), torch.tensor(1.5), torch.ones(3) * x.sum()

    steps = [
        ("float32", same),
        ("default float64", default_dtype(torch.float64)),
        ("float32", same),
        ("default float64", default_dtype(torch.float64)),
    ]
    check_steps(fn, (xp(),), steps, frames=2)


def test_default_dtype_read_inside_function() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.get_default_dtype()) + 1

    steps = [
        ("float32", same),
        ("default float64", default_dtype(torch.float64)),
        ("float32", same),
    ]
    check_steps(fn, (xp(),), steps, frames=2)


# --------------------------------------------------------------------------- deterministic


def test_deterministic_algorithms() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + int(torch.are_deterministic_algorithms_enabled())

    steps = [
        ("off", same),
        ("deterministic", deterministic(True)),
        ("off", same),
        ("deterministic", deterministic(True)),
    ]
    check_steps(fn, (xp(),), steps, frames=2)


@pytest.mark.ferrodyn_contract  # torch.compile's graph count includes its graph breaks
def test_deterministic_algorithms_warn_only() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        on = int(torch.are_deterministic_algorithms_enabled())
        return x + on + 10 * int(torch.is_deterministic_algorithms_warn_only_enabled())

    steps = [
        ("off", same),
        ("deterministic", deterministic(True)),
        ("deterministic warn_only", deterministic(True, warn_only=True)),
        ("off", same),
        ("deterministic warn_only", deterministic(True, warn_only=True)),
    ]
    # torch.compile graph-breaks on is_deterministic_algorithms_warn_only_enabled() (two
    # graphs per state), so its graph count is no reference here: one graph per state.
    check_steps(fn, (xp(),), steps, frames=3, torch_reference=False)


# --------------------------------------------------------------------------- backend flags


def read_mkldnn_enabled(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.mkldnn.enabled)


def read_cudnn_enabled(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.cudnn.enabled)


def read_cudnn_benchmark(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.cudnn.benchmark)


def read_cudnn_deterministic(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.cudnn.deterministic)


def read_cudnn_allow_tf32(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.cudnn.allow_tf32)


def read_cuda_matmul_allow_tf32(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.backends.cuda.matmul.allow_tf32)


BACKEND_FLAGS = {
    "mkldnn.enabled": (read_mkldnn_enabled, torch.backends.mkldnn, "enabled"),
    "cudnn.enabled": (read_cudnn_enabled, torch.backends.cudnn, "enabled"),
    "cudnn.benchmark": (read_cudnn_benchmark, torch.backends.cudnn, "benchmark"),
    "cudnn.deterministic": (read_cudnn_deterministic, torch.backends.cudnn, "deterministic"),
    "cudnn.allow_tf32": (read_cudnn_allow_tf32, torch.backends.cudnn, "allow_tf32"),
    "cuda.matmul.allow_tf32": (
        read_cuda_matmul_allow_tf32,
        torch.backends.cuda.matmul,
        "allow_tf32",
    ),
}


@pytest.mark.parametrize("flag", list(BACKEND_FLAGS))
def test_backend_flag(flag: str) -> None:
    fn, obj, name = BACKEND_FLAGS[flag]
    value = bool(getattr(obj, name))
    # State A is set explicitly too: setting a flag back does not always restore torch's
    # internal state exactly (cuda.matmul.allow_tf32 also moves its fp32 precision setting).
    steps = [
        (f"{flag}={value}", attr_flag(obj, name, value)),
        (f"{flag}={not value}", attr_flag(obj, name, not value)),
        (f"{flag}={value}", attr_flag(obj, name, value)),
        (f"{flag}={not value}", attr_flag(obj, name, not value)),
    ]
    check_steps(fn, (xp(),), steps, frames=2)


def test_backend_flags_context_manager() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + int(torch.backends.mkldnn.enabled) + 10 * int(torch.backends.cudnn.benchmark)

    steps = [
        ("default", same),
        ("mkldnn.flags(enabled=False)", lambda: torch.backends.mkldnn.flags(enabled=False)),
        ("cudnn.flags(benchmark=True)", lambda: torch.backends.cudnn.flags(benchmark=True)),
        ("default", same),
    ]
    check_steps(fn, (xp(),), steps, frames=3)


def test_float32_matmul_precision() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + len(torch.get_float32_matmul_precision())

    steps = [
        ("highest", matmul_precision("highest")),
        ("medium", matmul_precision("medium")),
        ("high", matmul_precision("high")),
        ("highest", matmul_precision("highest")),
        ("medium", matmul_precision("medium")),
    ]
    check_steps(fn, (xp(),), steps, frames=3)


# --------------------------------------------------------------------------- other global state


def read_anomaly(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.is_anomaly_enabled())


def read_warn_always(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.is_warn_always_enabled())


def read_num_threads(x: torch.Tensor) -> torch.Tensor:
    return x + torch.get_num_threads()


def read_forward_ad(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch._C._is_fwd_grad_enabled())


def read_multithreading(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.autograd.is_multithreading_enabled())


def read_view_replay(x: torch.Tensor) -> torch.Tensor:
    return x + int(torch.autograd.is_view_replay_enabled())


OTHER_STATE: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], State]] = {
    "anomaly_mode": (read_anomaly, lambda: torch.autograd.set_detect_anomaly(True)),
    "warn_always": (
        read_warn_always,
        lambda: setting(torch.is_warn_always_enabled, torch.set_warn_always, True),
    ),
    "num_threads": (
        read_num_threads,
        lambda: setting(torch.get_num_threads, torch.set_num_threads, torch.get_num_threads() + 1),
    ),
    "forward_ad_enabled": (
        read_forward_ad,
        lambda: setting(torch._C._is_fwd_grad_enabled, torch._C._set_fwd_grad_enabled, False),
    ),
    "autograd_multithreading": (
        read_multithreading,
        lambda: torch.autograd.set_multithreading_enabled(False),
    ),
    "view_replay": (read_view_replay, lambda: torch.autograd._force_original_view_tracking(True)),
}


@pytest.mark.parametrize("state", list(OTHER_STATE))
def test_other_global_state_read_inside_function(state: str) -> None:
    fn, changed = OTHER_STATE[state]
    steps = [("default", same), (state, changed), ("default", same), (state, changed)]
    check_steps(fn, (xp(),), steps, frames=2)


def test_default_device() -> None:
    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + len(str(torch.get_default_device())), torch.ones(2)

    steps = [
        ("cpu", default_device("cpu")),
        ("meta", default_device("meta")),
        ("cpu", default_device("cpu")),
        ("meta", default_device("meta")),
    ]
    check_steps(fn, (torch.zeros(2),), steps, frames=2)


class _OnesOf(TorchFunctionMode):
    """torch.ones(...) returns a vector of ``n`` ones whatever size was asked."""

    n = 3

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func is torch.ones:
            return torch.full((self.n,), 1.0)
        return func(*args, **(kwargs or {}))


class _OnesOfFive(_OnesOf):
    n = 5


def test_torch_function_mode_of_another_type_same_depth() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        return x + torch.ones(2).shape[0]

    steps = [
        ("no mode", same),
        ("_OnesOf", _OnesOf),
        ("_OnesOfFive", _OnesOfFive),
        ("_OnesOf", _OnesOf),
        ("no mode", same),
    ]
    check_steps(fn, (torch.zeros(2),), steps, frames=3)


# --------------------------------------------------------------------------- graph breaks


def test_state_read_after_a_graph_break() -> None:
    """The resume function's graphs are guarded on global state too."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        zlib.crc32(b"break")
        return y + torch.ones(3) + 10 * int(torch.is_grad_enabled())

    steps = [
        ("grad", same),
        ("no_grad", torch.no_grad),
        ("default float64", default_dtype(torch.float64)),
        ("grad", same),
    ]
    check_steps(fn, (xr(),), steps)


def test_state_changed_by_the_graph_break_step() -> None:
    """A step run natively mid-call changes the default dtype: the rest sees the new one."""

    def fn(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.ones(2) + x.sum()
        torch.set_default_dtype(torch.float64)
        zlib.crc32(b"break")
        return a, torch.ones(2) + x.sum()

    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    x = xp()
    for call in range(3):
        with default_dtype(torch.float32)():
            expected = fn(x)
        with default_dtype(torch.float32)():
            got = compiled(x)
            assert torch.get_default_dtype() == torch.float64
        assert_like_eager(got, expected, f"call {call}")
    ref = ferrodyn.testing.CompileCounter()
    torch._dynamo.reset()
    reference = torch.compile(fn, backend=ref)
    for _ in range(3):
        with default_dtype(torch.float32)():
            reference(x)
    assert cnt.frame_count == ref.frame_count


# --------------------------------------------------------------------------- recompile reasons


@pytest.fixture
def recompile_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    pytest.importorskip("ferrodyn.logs", reason="not in the torch.compile stand-in")
    root = logging.getLogger("ferrodyn")
    root.addHandler(caplog.handler)
    ferrodyn.set_logs("recompiles")
    try:
        yield caplog
    finally:
        ferrodyn.set_logs()
        root.removeHandler(caplog.handler)


# (state A, state B, a word the reason must contain, A's value, B's value as shown)
REASONS: dict[str, tuple[State, State, str, str, str]] = {
    "grad_mode": (same, torch.no_grad, "grad", "True", "False"),
    "inference_mode": (torch.no_grad, torch.inference_mode, "inference", "False", "True"),
    "autocast": (same, autocast(torch.bfloat16), "autocast", "False", "True"),
    "autocast_dtype": (
        autocast(torch.float16),
        autocast(torch.bfloat16),
        "autocast",
        "float16",
        "bfloat16",
    ),
    "autocast_cache": (
        autocast(torch.bfloat16),
        autocast(torch.bfloat16, cache_enabled=False),
        "cache",
        "True",
        "False",
    ),
    "default_dtype": (same, default_dtype(torch.float64), "default dtype", "float32", "float64"),
    "deterministic": (same, deterministic(True), "deterministic", "False", "True"),
    "mkldnn": (same, attr_flag(torch.backends.mkldnn, "enabled", False), "mkldnn", "True", "False"),
    "cudnn_benchmark": (
        same,
        attr_flag(torch.backends.cudnn, "benchmark", True),
        "benchmark",
        "False",
        "True",
    ),
    "matmul_precision": (
        matmul_precision("high"),  # not "highest": that also flips cuda.matmul.allow_tf32
        matmul_precision("medium"),
        "precision",
        "high",
        "medium",
    ),
}


@pytest.mark.parametrize("state", list(REASONS))
def test_recompile_reason_names_the_state(
    state: str, recompile_log: pytest.LogCaptureFixture
) -> None:
    a, b, word, old, new = REASONS[state]
    compiled = ferrodyn.compile(matmul, backend="eager")
    x = xp()
    with a():
        compiled(x)
    recompile_log.clear()
    with b():
        compiled(x)
    msgs = [r.getMessage() for r in recompile_log.records if r.name == "ferrodyn.recompiles"]
    assert len(msgs) == 1, msgs
    msg = msgs[0].lower()
    assert word in msg, msg
    assert old.lower() in msg and new.lower() in msg, msg


# --------------------------------------------------------------------------- random flips

FUZZ_FNS: list[tuple[str, Callable[[torch.Tensor], Any]]] = [
    ("matmul", lambda x: x @ x),
    ("ones_times_sum", lambda x: torch.ones(3) * x.sum()),
    ("sum", lambda x: x.sum()),
    ("grad_flag", lambda x: x * 2 + torch.is_grad_enabled()),
    ("deterministic_flag", lambda x: x + int(torch.are_deterministic_algorithms_enabled())),
    ("mkldnn_flag", lambda x: x - int(torch.backends.mkldnn.enabled)),
    ("tensor_const", lambda x: torch.tensor(1.5) + x.mean()),
    (
        "to_default_dtype",
        lambda x: (x.to(torch.get_default_dtype()), torch.is_inference_mode_enabled()),
    ),
]

FUZZ_FLAGS: dict[str, State] = {
    "no_grad": torch.no_grad,
    "inference_mode": torch.inference_mode,
    "autocast_bf16": autocast(torch.bfloat16),
    "default_float64": default_dtype(torch.float64),
    "deterministic": deterministic(True),
    "mkldnn_off": attr_flag(torch.backends.mkldnn, "enabled", False),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_global_state_flips(seed: int) -> None:
    rng = random.Random(seed)
    ferrodyn.config.recompile_limit = 64  # restored by conftest's _fresh_state
    compiled = {name: ferrodyn.compile(fn, backend="eager") for name, fn in FUZZ_FNS}
    x = torch.randn(3, 3, requires_grad=True)
    history: list[str] = []
    for step in range(30):
        name, fn = rng.choice(FUZZ_FNS)
        flags = sorted(f for f in FUZZ_FLAGS if rng.random() < 0.4)
        history.append(f"{name} under {flags}")
        before = _snapshot()
        with contextlib.ExitStack() as stack:
            for f in flags:
                stack.enter_context(FUZZ_FLAGS[f]())
            expected = fn(x)
            got = compiled[name](x)
        assert_like_eager(got, expected, f"seed {seed} step {step}: {history[-3:]}")
        assert _snapshot() == before, f"global state leaked at step {step}: {history[-3:]}"


def test_state_is_read_per_thread() -> None:
    """Grad mode and autocast are thread-local: each thread's own state picks the graph."""
    import threading

    def f(x: torch.Tensor) -> torch.Tensor:
        return (x @ x.T) * 2

    compiled = ferrodyn.compile(f, backend="eager")
    x = torch.randn(4, 4, requires_grad=True)
    results: dict[str, torch.Tensor] = {}

    def run(name: str) -> None:
        if name == "no_grad":
            with torch.no_grad():
                results[name] = compiled(x)
        elif name == "autocast":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                results[name] = compiled(x)
        else:
            results[name] = compiled(x)

    for name in ("plain", "no_grad", "autocast", "plain2"):
        t = threading.Thread(target=run, args=(name,))
        t.start()
        t.join()
    assert results["plain"].requires_grad and results["plain2"].requires_grad
    assert not results["no_grad"].requires_grad
    assert results["autocast"].dtype == torch.bfloat16
    assert results["plain"].dtype == torch.float32


def test_every_field_has_a_reader() -> None:
    """Each global-state field is read natively when this torch allows it; the Python-read
    ones are only the mode-stack contents (read only while a stack is non-empty)."""
    readers = dict(ferrodyn._core.global_state_readers())
    assert readers["grad mode"] != "python"
    assert readers["autocast enabled (cpu)"] != "python"
    python = {name for name, how in readers.items() if how == "python"}
    assert python <= {"torch function modes", "torch dispatch modes"}, python


class Passthrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        return func(*args, **(kwargs or {}))


def test_hot_fields_are_memory_reads() -> None:
    """The fields read on every call that torch keeps in memory we can locate (mode stacks,
    autocast cache, default dtype, warn_always) are read from memory, not through getters."""
    readers = dict(ferrodyn._core.global_state_readers())
    memory = {"per-thread bit", "per-thread memory", "context byte", "native variable"}
    for name in (
        "torch function mode stack depth",
        "torch function disabled state",
        "torch dispatch mode stack depth",
        "autocast cache",
        "default dtype",
        "warn_always",
    ):
        assert readers[name] in memory, (name, readers[name])


def test_memory_read_fields_in_a_new_thread() -> None:
    """Per-thread memory (mode stacks, the autocast-cache flag in libtorch_cpu's TLS block) is
    located per thread: a fresh thread sees its own state."""
    import threading

    def f(x: torch.Tensor) -> torch.Tensor:
        return x * 2 + int(torch.is_autocast_cache_enabled())

    cnt = torch._dynamo.testing.CompileCounter()
    compiled = ferrodyn.compile(f, backend=cnt)
    x = torch.randn(3)
    out: dict[str, torch.Tensor] = {}

    def run(name: str) -> None:
        if name == "no_cache":
            prev = torch.is_autocast_cache_enabled()
            torch.set_autocast_cache_enabled(False)
            try:
                out[name] = compiled(x)
            finally:
                torch.set_autocast_cache_enabled(prev)
        elif name == "dispatch_mode":
            with Passthrough():
                out[name] = compiled(x)
        else:
            out[name] = compiled(x)

    for name in ("plain", "no_cache", "dispatch_mode", "plain2"):
        t = threading.Thread(target=run, args=(name,))
        t.start()
        t.join()
    torch.testing.assert_close(out["plain"], x * 2 + 1)
    torch.testing.assert_close(out["no_cache"], x * 2)
    torch.testing.assert_close(out["dispatch_mode"], x * 2 + 1)
    torch.testing.assert_close(out["plain2"], x * 2 + 1)
    assert cnt.frame_count == 3  # plain, no cache, under a dispatch mode


def test_infra_dispatch_mode_slot_changes_the_state() -> None:
    """An infra dispatch mode (the fake/proxy/functional slots, outside the mode stack vector)
    counts in the dispatch-mode depth: a graph traced without one is not reused under one."""

    def f(x: torch.Tensor) -> torch.Tensor:
        return x + 1

    cnt = torch._dynamo.testing.CompileCounter()
    compiled = ferrodyn.compile(f, backend=cnt)
    x = torch.zeros(2)
    torch.testing.assert_close(compiled(x), f(x))
    mode = Passthrough()
    mode._mode_key = torch._C._TorchDispatchModeKey.FUNCTIONAL  # type: ignore[attr-defined]
    torch._C._set_dispatch_mode(mode)
    try:
        expected = f(x)
        got = compiled(x)
    finally:
        torch._C._unset_dispatch_mode(torch._C._TorchDispatchModeKey.FUNCTIONAL)
    torch.testing.assert_close(got, expected)
    assert cnt.frame_count == 2
    torch.testing.assert_close(compiled(x), f(x))
    assert cnt.frame_count == 2
