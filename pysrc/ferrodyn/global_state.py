"""The torch global state every compiled graph depends on, defined once.

Each cache entry records a snapshot of these fields taken when its trace started; a call whose
snapshot differs never reuses the entry (and the recompile reason names the field, old and new
value). The Rust core (`rust/guards/global_state.rs`) reads each field natively through the
C++ symbol named here, after checking at start-up that the native reading agrees with the
Python one in several states (`flips`); a field whose native reading is missing or disagrees is
read through its Python `read` on every call instead (correct, slower).

Every value is an int code: bools are 0/1, dtypes are c10 ScalarType codes, enums their index.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

_C = torch._C

# c10::ScalarType codes (c10/core/ScalarType.h order); checked against native reads at start.
_DTYPE_CODES: dict[torch.dtype, int] = {
    torch.uint8: 0,
    torch.int8: 1,
    torch.int16: 2,
    torch.int32: 3,
    torch.int64: 4,
    torch.float16: 5,
    torch.float32: 6,
    torch.float64: 7,
    torch.complex32: 8,
    torch.complex64: 9,
    torch.complex128: 10,
    torch.bool: 11,
    torch.bfloat16: 15,
}
_DTYPE_NAMES: dict[int, str] = {c: str(d) for d, c in _DTYPE_CODES.items()}
_MATMUL_PRECISIONS = ("highest", "high", "medium")
# c10::DeviceType codes of the devices whose autocast state is part of the snapshot.
_AUTOCAST_DEVICES = (("cpu", 0), ("cuda", 1), ("xpu", 12), ("mps", 13), ("hpu", 15))
# at::CuBLASReductionOption from torch._C's (allow_reduced_precision, allow_splitk) pair.
_REDUCTION_OPTIONS = {(True, True): 0, (False, True): 1, (False, False): 2}


def _dtype_code(d: torch.dtype) -> int:
    return _DTYPE_CODES.get(d, -1)


def _reduction_code(pair: object) -> int:
    if isinstance(pair, tuple):
        return _REDUCTION_OPTIONS.get((bool(pair[0]), bool(pair[1])), -1)
    return 0 if pair else 1  # older torch: a plain bool


def _legacy_precision(read: Callable[[], int]) -> int:
    """A legacy TF32/matmul-precision getter, which raises once torch's per-backend
    fp32_precision API has been used too: -2 then."""
    try:
        return read()
    except RuntimeError:
        return -2


def _torch_function_state() -> int:
    if _C._is_torch_function_all_disabled():
        return 2
    return 0 if _C._is_torch_function_enabled() else 1


def _mode_key(mode: object) -> object:
    # A mode's class, and for the default-device mode the device it forces.
    return (type(mode), str(getattr(mode, "device", "")))


def _function_modes() -> int:
    """Which torch-function modes are on the stack (by class, and device for the default
    device mode), hashed: read only while the stack is not empty."""
    n = _C._len_torch_function_stack()
    return hash(tuple(_mode_key(_C._get_function_stack_at(i)) for i in range(n)))


def _dispatch_modes() -> int:
    n = _C._len_torch_dispatch_stack()
    return hash(tuple(_mode_key(_C._get_dispatch_stack_at(i)) for i in range(n)))


# Bits of c10::AutogradState's flag byte (offset 24 in torch 2.15, after its other members;
# bit 0 is grad mode, 1 inference mode). Checked by the flips at start-up.
_AUTOGRAD_FLAGS_OFFSET = 24
_AUTOGRAD_STATE_BITS = (
    ("forward AD enabled", "_is_fwd_grad_enabled", "_set_fwd_grad_enabled", 2),
    ("autograd multithreading", "_is_multithreading_enabled", "_set_multithreading_enabled", 3),
    ("autograd view replay", "_is_view_replay_enabled", "_set_view_replay_enabled", 4),
)


def _autograd_state_fields() -> Iterator[Field]:
    for name, getter, setter, bit in _AUTOGRAD_STATE_BITS:
        read = getattr(_C, getter, None)
        put = getattr(_C, setter, None)
        if read is None:
            continue
        yield Field(
            name,
            lambda read=read: int(bool(read())),  # type: ignore[misc]
            (
                "c10",
                _AUTOGRAD_TLS,
                f"getter_bit:{_AUTOGRAD_FLAGS_OFFSET}:{bit}",
            ),
            (_flip_bool(read, put),) if put is not None else (),
        )


Undo = Callable[[], None]


@dataclass(frozen=True)
class Field:
    """One piece of global state.

    name: shown in recompile reasons. read: the Python reading (int code).
    native: None, or one or more (library, C++ symbol, kind) candidates, tried in order; the
    first that resolves and agrees with `read` (now and after each flip) is used. Kinds:
    "u8" `T f()` with a byte-sized result, "i32" `int f()`, "i64" `int64_t f()`, "u8_dev:N"
    `T f(DeviceType N)`, "data_u8" a `bool` variable, "ctx_u8" a const member of
    `at::globalContext()` (read at the flag's byte offset when a flip shows it), "ctx_byte"
    the byte only (for getters that may throw),
    "ctx_u8_nullopt" the same with one `std::optional` argument left empty,
    "getter_bit:O:K" bit K of the byte at offset O of the per-thread object `T& f()`
    returns, "tls_flip_bit:SIZE" the bit of a `thread_local` variable that the first flip
    changes. flips: setters that move the state elsewhere and return an undo. show: renders
    a code for messages."""

    name: str
    read: Callable[[], int]
    native: tuple[str, str, str] | tuple[tuple[str, str, str], ...] | None
    flips: tuple[Callable[[], Undo], ...] = ()
    show: Callable[[int], str] = lambda c: str(bool(c))
    # The name of an earlier field: this one is read only while that one is non-zero (else
    # recorded as -1), e.g. an autocast dtype matters only while that autocast is enabled.
    only_if: str | None = None


def _setter(get: Callable[[], object], put: Callable[[object], object], value: object) -> Undo:
    old = get()
    put(value)
    return lambda: put(old)


def _flip_bool(get: Callable[[], object], put: Callable[[bool], object]) -> Callable[[], Undo]:
    return lambda: _setter(get, put, not get())  # type: ignore[arg-type]


def _enter(cm_factory: Callable[[], contextlib.AbstractContextManager[object]]) -> Undo:
    cm = cm_factory()
    cm.__enter__()
    return lambda: cm.__exit__(None, None, None) and None


def _function_mode() -> contextlib.AbstractContextManager[object]:
    from torch.overrides import TorchFunctionMode

    return TorchFunctionMode()


def _dispatch_mode() -> contextlib.AbstractContextManager[object]:
    from torch.utils._python_dispatch import TorchDispatchMode

    return TorchDispatchMode()


def _enter_modes(factory: Callable[[], contextlib.AbstractContextManager[object]], n: int) -> Undo:
    """Enter `n` nested modes (validation flips of the mode-stack depth)."""
    stack = contextlib.ExitStack()
    for _ in range(n):
        stack.enter_context(factory())
    return lambda: stack.close()


_INFRA_MODE_KEYS = tuple(
    getattr(_C._TorchDispatchModeKey, k)
    for k in ("FAKE", "PROXY", "FUNCTIONAL")
    if hasattr(getattr(_C, "_TorchDispatchModeKey", None), k)
)


def _set_infra_mode(key: object) -> Undo:
    """Occupy one infra dispatch-mode slot (fake, proxy, functional) with a bare mode."""
    from torch.utils._python_dispatch import TorchDispatchMode

    mode = TorchDispatchMode()
    mode._mode_key = key  # type: ignore[attr-defined]
    _C._set_dispatch_mode(mode)
    return lambda: _C._unset_dispatch_mode(key) and None


# The thread's per-thread mode-stack objects (`T& get_state()`).
_TORCH_FUNCTION_TLS = "_ZN2at4impl22PythonTorchFunctionTLS9get_stateEv"
_DISPATCH_MODE_TLS = "_ZN3c104impl20TorchDispatchModeTLS9get_stateEv"

# `c10::impl::raw_local_dispatch_key_set`, the thread's included/excluded dispatch keys.
_DISPATCH_TLS = "_ZN3c104impl26raw_local_dispatch_key_setE"
_AUTOGRAD_TLS = "_ZN3c1013AutogradState13get_tls_stateEv"


def _autocast_fields() -> Iterator[Field]:
    for dev, code in _AUTOCAST_DEVICES:
        yield Field(
            f"autocast enabled ({dev})",
            lambda dev=dev: int(torch.is_autocast_enabled(dev)),  # type: ignore[misc]
            (
                # The thread's dispatch-key set holds each device's autocast key: one bit,
                # found by flipping it.
                ("c10", _DISPATCH_TLS, "tls_flip_bit:16"),
                (
                    "torch_cpu",
                    "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE",
                    f"u8_dev:{code}",
                ),
            ),
            (
                lambda dev=dev: _setter(  # type: ignore[misc]
                    lambda: torch.is_autocast_enabled(dev),
                    lambda v: torch.set_autocast_enabled(dev, v),
                    not torch.is_autocast_enabled(dev),
                ),
            ),
        )
        yield Field(
            f"autocast dtype ({dev})",
            lambda dev=dev: _dtype_code(torch.get_autocast_dtype(dev)),  # type: ignore[misc]
            (
                "torch_cpu",
                "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE",
                f"u8_dev:{code}",
            ),
            (
                (
                    lambda dev=dev: _setter(  # type: ignore[misc]
                        lambda: torch.get_autocast_dtype(dev),
                        lambda v: torch.set_autocast_dtype(dev, v),
                        torch.float16
                        if torch.get_autocast_dtype(dev) != torch.float16
                        else torch.bfloat16,
                    )
                ),
            )
            if dev == "cpu"
            else (),
            lambda c: _DTYPE_NAMES.get(c, f"dtype code {c}"),
            only_if=f"autocast enabled ({dev})",
        )


def _ctx(name: str, getter: str, symbol: str, setter: str) -> Field | None:
    """A flag of `at::globalContext()` with torch._C getter/setter names (None when this
    torch build lacks the getter)."""
    read = getattr(_C, getter, None)
    put = getattr(_C, setter, None)
    if read is None:
        return None
    flips = (_flip_bool(read, put),) if put is not None else ()
    return Field(name, lambda: int(bool(read())), ("torch_cpu", symbol, "ctx_u8"), flips)


def _fields() -> tuple[Field, ...]:
    fields: list[Field | None] = [
        Field(
            "grad mode",
            lambda: int(torch.is_grad_enabled()),
            (
                ("c10", _AUTOGRAD_TLS, f"getter_bit:{_AUTOGRAD_FLAGS_OFFSET}:0"),
                ("c10", "_ZN3c108GradMode10is_enabledEv", "u8"),
            ),
            (_flip_bool(torch.is_grad_enabled, _C._set_grad_enabled),),
        ),
        Field(
            "inference mode",
            lambda: int(torch.is_inference_mode_enabled()),
            (
                ("c10", _AUTOGRAD_TLS, f"getter_bit:{_AUTOGRAD_FLAGS_OFFSET}:1"),
                ("c10", "_ZN3c1013InferenceMode10is_enabledEv", "u8"),
            ),
            (lambda: _enter(torch.inference_mode),),
        ),
        *_autocast_fields(),
        Field(
            "autocast cache",
            lambda: int(torch.is_autocast_cache_enabled()),
            (
                # A thread_local of libtorch_cpu: its bit in the thread's TLS block.
                ("torch_cpu", "_ZN2at8autocast25is_autocast_cache_enabledEv", "tls_block_flip"),
                ("torch_cpu", "_ZN2at8autocast25is_autocast_cache_enabledEv", "u8"),
            ),
            (_flip_bool(torch.is_autocast_cache_enabled, torch.set_autocast_cache_enabled),),
        ),
        Field(
            "default dtype",
            lambda: _dtype_code(torch.get_default_dtype()),
            (
                # A static of libc10 (its TypeMeta index is the ScalarType code).
                ("c10", "_ZN3c1031get_default_dtype_as_scalartypeEv", "data_flip_byte"),
                ("c10", "_ZN3c1031get_default_dtype_as_scalartypeEv", "u8"),
            ),
            (
                lambda: _setter(
                    torch.get_default_dtype,
                    torch.set_default_dtype,  # type: ignore[arg-type]
                    torch.float64 if torch.get_default_dtype() != torch.float64 else torch.float32,
                ),
                lambda: _setter(
                    torch.get_default_dtype,
                    torch.set_default_dtype,  # type: ignore[arg-type]
                    torch.float16 if torch.get_default_dtype() != torch.float16 else torch.float32,
                ),
            ),
            lambda c: _DTYPE_NAMES.get(c, f"dtype code {c}"),
        ),
        Field(
            "deterministic algorithms",
            lambda: int(torch.are_deterministic_algorithms_enabled()),
            ("torch_cpu", "_ZNK2at7Context23deterministicAlgorithmsEv", "ctx_u8"),
            (
                _flip_bool(
                    torch.are_deterministic_algorithms_enabled,
                    # The C setter: `torch.use_deterministic_algorithms` also imports
                    # torch._inductor (and with it torch._dynamo) to set a config flag.
                    lambda v: torch._C._set_deterministic_algorithms(
                        v, warn_only=torch.is_deterministic_algorithms_warn_only_enabled()
                    ),
                ),
            ),
        ),
        Field(
            "deterministic algorithms warn_only",
            lambda: int(torch.is_deterministic_algorithms_warn_only_enabled()),
            ("torch_cpu", "_ZNK2at7Context31deterministicAlgorithmsWarnOnlyEv", "ctx_u8"),
            (
                _flip_bool(
                    torch.is_deterministic_algorithms_warn_only_enabled,
                    lambda v: torch._C._set_deterministic_algorithms(
                        torch.are_deterministic_algorithms_enabled(), warn_only=v
                    ),
                ),
            ),
        ),
        _ctx(
            "torch.backends.mkldnn.enabled",
            "_get_mkldnn_enabled",
            "_ZNK2at7Context17userEnabledMkldnnEv",
            "_set_mkldnn_enabled",
        ),
        _ctx(
            "torch.backends.mkldnn.deterministic",
            "_get_mkldnn_deterministic",
            "_ZNK2at7Context19deterministicMkldnnEv",
            "_set_mkldnn_deterministic",
        ),
        _ctx(
            "torch.backends.cudnn.enabled",
            "_get_cudnn_enabled",
            "_ZNK2at7Context16userEnabledCuDNNEv",
            "_set_cudnn_enabled",
        ),
        _ctx(
            "torch.backends.cudnn.benchmark",
            "_get_cudnn_benchmark",
            "_ZNK2at7Context14benchmarkCuDNNEv",
            "_set_cudnn_benchmark",
        ),
        _ctx(
            "torch.backends.cudnn.deterministic",
            "_get_cudnn_deterministic",
            "_ZNK2at7Context18deterministicCuDNNEv",
            "_set_cudnn_deterministic",
        ),
        Field(
            "torch.backends.cudnn.allow_tf32",
            lambda: _legacy_precision(lambda: int(bool(_C._get_cudnn_allow_tf32()))),
            # Memory only: the getter raises (a C++ exception) once the per-backend
            # fp32_precision API has been mixed in.
            (
                "torch_cpu",
                "_ZNK2at7Context14allowTF32CuDNNESt8optionalINS_9Float32OpEE",
                "ctx_byte",
            ),
            (_flip_bool(_C._get_cudnn_allow_tf32, _C._set_cudnn_allow_tf32),),
        ),
        # torch.backends.cuda.matmul.allow_tf32 follows the float32 matmul precision (False
        # exactly when it is "highest"; setting it moves the precision): one field for both.
        Field(
            "float32 matmul precision",
            lambda: _legacy_precision(
                lambda: _MATMUL_PRECISIONS.index(torch.get_float32_matmul_precision())
            ),
            ("torch_cpu", "_ZNK2at7Context22float32MatmulPrecisionEv", "ctx_byte"),
            (
                lambda: _setter(
                    torch.get_float32_matmul_precision,
                    torch.set_float32_matmul_precision,  # type: ignore[arg-type]
                    "medium" if torch.get_float32_matmul_precision() != "medium" else "high",
                ),
            ),
            lambda c: _MATMUL_PRECISIONS[c] if 0 <= c < 3 else "mixed legacy/new API",
        ),
        Field(
            "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction",
            lambda: _reduction_code(_C._get_cublas_allow_fp16_reduced_precision_reduction()),
            ("torch_cpu", "_ZNK2at7Context24allowFP16ReductionCuBLASEv", "ctx_u8"),
            (
                lambda: _setter(
                    _C._get_cublas_allow_fp16_reduced_precision_reduction,
                    lambda v: _C._set_cublas_allow_fp16_reduced_precision_reduction(*v),  # type: ignore[misc]
                    (not _C._get_cublas_allow_fp16_reduced_precision_reduction()[0], True),
                ),
            ),
            show=str,
        ),
        Field(
            "torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction",
            lambda: _reduction_code(_C._get_cublas_allow_bf16_reduced_precision_reduction()),
            ("torch_cpu", "_ZNK2at7Context24allowBF16ReductionCuBLASEv", "ctx_u8"),
            (
                lambda: _setter(
                    _C._get_cublas_allow_bf16_reduced_precision_reduction,
                    lambda v: _C._set_cublas_allow_bf16_reduced_precision_reduction(*v),  # type: ignore[misc]
                    (not _C._get_cublas_allow_bf16_reduced_precision_reduction()[0], True),
                ),
            ),
            show=str,
        ),
        _ctx(
            "torch.backends.cpu fp16 reduced-precision reduction",
            "_get_cpu_allow_fp16_reduced_precision_reduction",
            "_ZNK2at7Context21allowFP16ReductionCPUEv",
            "_set_cpu_allow_fp16_reduced_precision_reduction",
        ),
        _ctx(
            "flash SDP enabled",
            "_get_flash_sdp_enabled",
            "_ZNK2at7Context19userEnabledFlashSDPEv",
            "_set_sdp_use_flash",
        ),
        _ctx(
            "mem-efficient SDP enabled",
            "_get_mem_efficient_sdp_enabled",
            "_ZNK2at7Context26userEnabledMemEfficientSDPEv",
            "_set_sdp_use_mem_efficient",
        ),
        _ctx(
            "math SDP enabled",
            "_get_math_sdp_enabled",
            "_ZNK2at7Context18userEnabledMathSDPEv",
            "_set_sdp_use_math",
        ),
        _ctx(
            "cuDNN SDP enabled",
            "_get_cudnn_sdp_enabled",
            "_ZNK2at7Context19userEnabledCuDNNSDPEv",
            "_set_sdp_use_cudnn",
        ),
        Field(
            "torch function mode stack depth",
            lambda: int(_C._len_torch_function_stack()),
            (
                # The thread's PythonTorchFunctionTLS: (disabled state, stack vector, ...).
                ("torch_cpu", _TORCH_FUNCTION_TLS, "getter_veclen:8:16"),
                ("torch_cpu", "_ZN2at4impl22PythonTorchFunctionTLS9stack_lenEv", "i64"),
            ),
            (lambda: _enter_modes(_function_mode, 1), lambda: _enter_modes(_function_mode, 2)),
            show=str,
        ),
        Field(
            "torch function disabled state",
            _torch_function_state,
            (
                ("torch_cpu", _TORCH_FUNCTION_TLS, "getter_i32:0"),
                ("torch_cpu", "_ZN2at4impl22PythonTorchFunctionTLS18get_disabled_stateEv", "u8"),
            ),
            (
                lambda: _enter(_C.DisableTorchFunctionSubclass),
                lambda: _enter(_C.DisableTorchFunction),
            ),
            lambda c: (
                ("enabled", "subclasses disabled", "all disabled")[c] if 0 <= c < 3 else str(c)
            ),
        ),
        Field(
            "torch function modes",
            _function_modes,
            None,
            show=lambda c: f"modes #{c & 0xFFFF:04x}",
            only_if="torch function mode stack depth",
        ),
        Field(
            "torch dispatch mode stack depth",
            lambda: int(_C._len_torch_dispatch_stack()),
            (
                # The thread's TorchDispatchModeTLS: the stack vector, then one
                # std::optional<shared_ptr> slot (24 bytes) per infra mode key.
                ("c10", _DISPATCH_MODE_TLS, "getter_veclen:0:16:40,64,88"),
                ("c10", "_ZN3c104impl20TorchDispatchModeTLS9stack_lenEv", "i64"),
            ),
            (
                lambda: _enter_modes(_dispatch_mode, 1),
                lambda: _enter_modes(_dispatch_mode, 2),
                *(lambda key=key: _set_infra_mode(key) for key in _INFRA_MODE_KEYS),  # type: ignore[misc]
            ),
            show=str,
        ),
        Field(
            "torch dispatch modes",
            _dispatch_modes,
            None,
            show=lambda c: f"modes #{c & 0xFFFF:04x}",
            only_if="torch dispatch mode stack depth",
        ),
        Field(
            "anomaly mode",
            lambda: int(torch.is_anomaly_enabled()),
            ("torch_cpu", "_ZN5torch8autograd11AnomalyMode8_enabledE", "data_u8"),
            (_flip_bool(torch.is_anomaly_enabled, torch.set_anomaly_enabled),),
        ),
        Field(
            "anomaly mode check_nan",
            lambda: int(torch.is_anomaly_check_nan_enabled()),
            ("torch_cpu", "_ZN5torch8autograd11AnomalyMode10_check_nanE", "data_u8"),
            (
                _flip_bool(
                    torch.is_anomaly_check_nan_enabled,
                    lambda v: torch.set_anomaly_enabled(torch.is_anomaly_enabled(), v),
                ),
            ),
        ),
        Field(
            "warn_always",
            lambda: int(torch.is_warn_always_enabled()),
            (
                ("c10", "_ZN3c1012WarningUtils14get_warnAlwaysEv", "data_flip_byte"),
                ("c10", "_ZN3c1012WarningUtils14get_warnAlwaysEv", "u8"),
            ),
            (_flip_bool(torch.is_warn_always_enabled, torch.set_warn_always),),
        ),
        Field(
            "number of threads",
            lambda: int(torch.get_num_threads()),
            ("torch_cpu", "_ZN2at15get_num_threadsEv", "i32"),
            show=str,
        ),
        *_autograd_state_fields(),
    ]
    return tuple(f for f in fields if f is not None and _readable(f))


def _readable(f: Field) -> bool:
    """A field whose Python reading fails on this torch build is left out."""
    try:
        f.read()
    except Exception:  # noqa: BLE001 - e.g. a getter this torch version lacks
        return False
    return True


FIELDS: tuple[Field, ...] = _fields()


def describe(index: int, code: int) -> str:
    """`code` of field `index` as shown in recompile reasons."""
    try:
        return FIELDS[index].show(code)
    except Exception:  # noqa: BLE001 - a message must never fail
        return str(code)


def read_all() -> list[int]:
    """Every field read through Python (what the native snapshot must agree with)."""
    values: dict[str, int] = {}
    for f in FIELDS:
        values[f.name] = -1 if f.only_if is not None and not values.get(f.only_if) else f.read()
    return list(values.values())
