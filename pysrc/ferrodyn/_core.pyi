"""Typed contract of the Rust extension `ferrodyn._core` (registered in rust/py_api.rs).

Keep this file in sync with what `rust/py_api.rs` registers."""

import types
from collections.abc import Callable
from typing import Any, final

import torch

__all__ = [
    "AT_BUFFER",
    "AT_CLASS",
    "AT_DESCRIPTOR",
    "AT_DICT_READ",
    "AT_GENERIC",
    "AT_GETATTR",
    "AT_GETATTRIBUTE",
    "AT_INSTANCE",
    "AT_PARAMETER",
    "AT_PROPERTY",
    "AT_SUBMODULE",
    "AT_UNGUARDED",
    "KIND_CLASS",
    "KIND_CONST",
    "KIND_DICT",
    "KIND_FUNCTION",
    "KIND_LIST",
    "KIND_MARKER",
    "KIND_METHOD",
    "KIND_NAMEDTUPLE",
    "KIND_NDARRAY",
    "KIND_NN_MODULE",
    "KIND_NUMPY_FN",
    "KIND_OBJECT",
    "KIND_OPERATOR",
    "KIND_PURE",
    "KIND_PY_MODULE",
    "KIND_TENSOR",
    "KIND_TORCH_MODULE",
    "KIND_TORCH_OP",
    "KIND_TUPLE",
    "KIND_UNSUPPORTED",
    "MARKER_ASSUME_CONSTANT",
    "MARKER_AUTOGRAD_APPLY",
    "MARKER_BREAK",
    "MARKER_COMPTIME",
    "MARKER_CONST",
    "MARKER_EOGB_CTOR",
    "MARKER_EOGB_CTX",
    "MARKER_EOGB_EXIT",
    "MARKER_INLINE",
    "MARKER_NAMEDTUPLE",
    "MARKER_RANDOM",
    "MARKER_SKIP",
    "MARKER_STEP_UNSUPPORTED",
    "MARKER_TF_DISABLE",
    "MARKER_VMAP",
    "CompiledCode",
    "__version__",
    "frame_hook_installed",
    "frame_hook_rule",
    "global_state_readers",
    "init_torch",
    "native_tensor_reader_active",
    "native_tensor_reader_note",
    "reset",
    "set_frame_hook",
]
__version__: str

@final
class CompiledCode:
    """Per-function compiled entry point: a guard-checked cache of compiled graphs.

    Calling it checks the cached entries' guards (in Rust); on a miss it traces `fn`, hands
    the FX graph to `compiler` and caches the result. Instances have a `__dict__` (so
    `__name__`, `__doc__`, `__wrapped__`… can be copied onto them) and bind like functions."""

    fn: types.FunctionType
    def __new__(
        cls,
        func: types.FunctionType,
        compiler: Callable[[torch.fx.GraphModule, list[torch.Tensor]], Callable[..., Any]],
        *,
        fullgraph: bool = False,
        recompile_limit: int = 8,
    ) -> CompiledCode: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def for_function(self, func: types.FunctionType) -> CompiledCode:
        """This compiled code for another function object of the same code (its own
        closure, defaults and globals), sharing the cache entries."""
    def compile_count(self) -> int:
        """How many graphs have been compiled for `fn` so far."""
    def cache_size(self) -> int:
        """How many entries (guard tree + artifact) the cache holds now."""
    def clear(self) -> None:
        """Drop every cached entry of this function (the next call traces again)."""
    def _time_guard_check(self, args: tuple[Any, ...], n: int) -> tuple[bool, float]:
        """Benchmark aid: the cache-hit guard path alone (global state + guard trees) for
        positional `args`, `n` times; (an entry matched, mean seconds per check)."""
    def guards(self) -> list[list[str]]:
        """Human-readable guards of every cache entry, most recently used first."""
    def __get__(self, obj: object, objtype: type | None = None, /) -> Any:
        """Binds like a function: stored on a class, `inst.f(x)` calls `f(inst, x)`."""

def reset() -> None:
    """Clear the function-spec cache and the entries of every live CompiledCode."""

def init_torch() -> bool:
    """Load the native tensor-metadata reader against the imported torch (idempotent).

    Returns whether it is active; on failure guards read tensors through Python."""

def global_state_readers() -> list[tuple[str, str]]:
    """Each field of the global-state snapshot every cache entry records (see
    ferrodyn/global_state.py) and how it is read on each call: "per-thread bit", "context
    byte", "native call", "native context call", "native variable" or "python"."""

def native_tensor_reader_active() -> bool:
    """True when tensor metadata for guards is read natively (not through Python attributes)."""

def native_tensor_reader_note() -> str:
    """Why the native tensor reader is on or off, and whether the TensorImpl fields of the
    guard's fast path were located."""

# Object kinds and attribute locations; see pysrc/ferrodyn/variables/kinds.py.
KIND_CONST: int
KIND_TENSOR: int
KIND_TUPLE: int
KIND_LIST: int
KIND_DICT: int
KIND_NN_MODULE: int
KIND_FUNCTION: int
KIND_METHOD: int
KIND_TORCH_OP: int
KIND_PURE: int
KIND_OPERATOR: int
KIND_PY_MODULE: int
KIND_TORCH_MODULE: int
KIND_CLASS: int
KIND_OBJECT: int
KIND_UNSUPPORTED: int
KIND_NAMEDTUPLE: int
KIND_MARKER: int
KIND_NDARRAY: int
KIND_NUMPY_FN: int
AT_INSTANCE: int
AT_PARAMETER: int
AT_BUFFER: int
AT_SUBMODULE: int
AT_CLASS: int
AT_PROPERTY: int
AT_GENERIC: int
AT_UNGUARDED: int
AT_GETATTRIBUTE: int
AT_DICT_READ: int
AT_DESCRIPTOR: int
AT_GETATTR: int
# What calling or entering a KIND_MARKER object does; see pysrc/ferrodyn/variables/markers.py.
MARKER_BREAK: int
MARKER_SKIP: int
MARKER_CONST: int
MARKER_EOGB_CTOR: int
MARKER_EOGB_CTX: int
MARKER_EOGB_EXIT: int
MARKER_INLINE: int
MARKER_STEP_UNSUPPORTED: int
MARKER_ASSUME_CONSTANT: int
MARKER_AUTOGRAD_APPLY: int
MARKER_COMPTIME: int
MARKER_NAMEDTUPLE: int
MARKER_TF_DISABLE: int
MARKER_RANDOM: int
MARKER_VMAP: int

def set_frame_hook(enabled: bool) -> None:
    """Turn the PEP 523 frame hook on or off (`ferrodyn.config.frame_hook`)."""

def frame_hook_rule(code: types.CodeType) -> str:
    """How the frame hook treats frames of `code`: "trace" (offered to the tracer),
    "skip" (run as they are), "quiet" (run with nothing below offered) or "skip-wrapped"
    (a `recursive=False` disable wrapper)."""

def frame_hook_installed() -> bool:
    """Whether the frame hook is installed in the interpreter now (only while a compiled
    callable runs user code natively)."""
