"""Which frames the frame hook offers to the tracer (`rust/frame_hook.rs`).

Frames that run natively inside a compiled call (a frame ferrodyn gave up on, or the
breaking step of a split) start other frames; those are offered to the tracer unless their
code comes from a skipped file: torch, the standard library, ferrodyn itself, and libraries
torch.compile also skips (numeric and tooling libraries whose frames never make graphs).
The decision is made once per code object and cached in the code object.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
import types

import torch

# Rule values shared with `frame_hook::Rule`.
SKIP = 1
TRACE = 2
QUIET = 3
SKIP_WRAPPED = 4

# Third-party packages whose frames are never offered (as torch.compile's skip list).
THIRD_PARTY = (
    "numpy",
    "pandas",
    "scipy",
    "sympy",
    "triton",
    "tqdm",
    "tabulate",
    "hypothesis",
    "networkx",
    "onnx",
    "onnxruntime",
    "tensorflow",
    "tensorrt",
    "tree",
    "xarray",
    "sklearn",
    "omegaconf",
    "typing_extensions",
    "_pytest",
    "pluggy",
    "pytest",
)


def _package_dir(name: str) -> str | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = spec.origin
    if spec.submodule_search_locations:
        return os.path.dirname(origin) + os.sep
    return origin


def _packages() -> tuple[str, ...]:
    dirs = {os.path.dirname(torch.__file__) + os.sep, os.path.dirname(__file__) + os.sep}
    for name in THIRD_PARTY:
        d = _package_dir(name)
        if d:
            dirs.add(d)
    return tuple(sorted(dirs))


def _stdlib() -> tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path + os.sep)
            dirs.add(os.path.realpath(path) + os.sep)
    return tuple(sorted(dirs))


def _site() -> tuple[str, ...]:
    """Installed-package directories (inside the standard library's directory on some
    installs, and not part of it)."""
    dirs = {p + os.sep for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(path + os.sep)
    return tuple(sorted(dirs))


_PACKAGES = _packages()
_STDLIB = _stdlib()
_SITE = _site()
_EVAL_FRAME = os.path.join(os.path.dirname(torch.__file__), "_dynamo", "eval_frame.py")
_EXTERNAL_UTILS = os.path.join(os.path.dirname(torch.__file__), "_dynamo", "external_utils.py")


def classify(code: types.CodeType) -> int:
    """The frame hook's rule for frames of `code`."""
    filename = code.co_filename
    if filename == _EVAL_FRAME and code.co_name == "_fn":
        # torch._dynamo.disable's wrapper (and torch.compile's own): nothing below it.
        return QUIET
    if filename == _EXTERNAL_UTILS and code.co_name == "nonrecursive_disable_wrapper":
        return SKIP_WRAPPED
    if filename == "<string>" and code.co_qualname.startswith("__create_fn__.<locals>."):
        # A dataclass's generated method (`__init__` storing fields, then `__post_init__`):
        # bookkeeping without graph ops, and for transformers' ModelOutput a break at every
        # field store when traced on its own. Runs natively, with what it calls.
        return QUIET
    if filename.startswith("<"):
        # FX-generated code, frozen modules: never user code worth tracing on its own.
        return SKIP if filename.startswith(("<eval_with_key", "<frozen")) else TRACE
    if filename.startswith(_PACKAGES):
        return SKIP
    if filename.startswith(_STDLIB) and not filename.startswith(_SITE):
        return SKIP
    return TRACE
