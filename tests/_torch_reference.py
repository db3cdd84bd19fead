"""A stand-in for ``ferrodyn`` built on ``torch.compile``, used only to validate the tests.

Run the suite with ``FERRODYN_TEST_REFERENCE=torch`` to execute every test against
``torch.compile`` instead of ferrodyn.  This checks that the expectations written in the
tests (graph counts, op counts, recompiles, results) are what TorchDynamo itself does, so a
failure under ferrodyn is a ferrodyn bug, not a test bug.  Where the ferrodyn contract is
deliberately stricter than ``torch.compile`` (module wrapper parity, error types), tests are
marked ``ferrodyn_contract`` and skipped in reference mode; the rest of the contract
(error classes, the recompile-limit warning) is emulated here by translating torch's
behaviour.

Nothing in here is imported when the tests run against the real ferrodyn.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch._dynamo
import torch._dynamo.exc as _texc
import torch.fx

VALID_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class Unsupported(RuntimeError):
    pass


class InvalidBackend(ValueError):
    pass


class RecompileLimitWarning(UserWarning):
    pass


_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+)')
_CAUSED_RE = re.compile(r"#\s*\S*?([^/\s]+\.py):(\d+)")


def _translate(err: BaseException) -> Unsupported:
    msg = str(err)
    extra = []
    for path, line in _FRAME_RE.findall(msg):
        extra.append(f"{path.rsplit('/', 1)[-1]}:{line}")
    for name, line in _CAUSED_RE.findall(msg):
        extra.append(f"{name}:{line}")
    return Unsupported(msg + "\n" + " ".join(extra))


class _LimitHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if "recompile_limit" in record.getMessage():
            warnings.warn(record.getMessage(), RecompileLimitWarning, stacklevel=2)


logging.getLogger("torch._dynamo").addHandler(_LimitHandler())


def compile(
    model: Any = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: str | Callable[..., Any] = "inductor",
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    disable: bool = False,
) -> Any:
    kw: dict[str, Any] = {
        "fullgraph": fullgraph,
        "dynamic": dynamic,
        "backend": backend,
        "mode": mode,
        "options": options,
        "disable": disable,
    }
    if model is None:
        return lambda m: compile(m, **kw)
    if not callable(model):
        raise TypeError(f"ferrodyn.compile expects a callable or nn.Module, got {model!r}")
    if isinstance(backend, str) and backend not in torch._dynamo.list_backends(exclude_tags=()):
        raise InvalidBackend(f"unknown backend {backend!r}")
    if mode is not None and mode not in VALID_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(VALID_MODES)}")
    if mode is not None and options is not None:
        raise ValueError("mode and options cannot both be given")
    compiled = torch.compile(model, **kw)
    if isinstance(model, torch.nn.Module):
        return compiled

    @functools.wraps(model)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return compiled(*args, **kwargs)
        except (_texc.Unsupported, _texc.UserError) as e:
            raise _translate(e) from e

    return run


def reset() -> None:
    torch._dynamo.reset()


class CompileCounter:
    def __init__(self) -> None:
        self.frame_count = 0
        self.op_count = 0

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        self.frame_count += 1
        self.op_count += sum(1 for n in gm.graph.nodes if n.op.startswith("call_"))
        return gm.forward


class CompileCounterWithBackend(CompileCounter):
    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Any:
        super().__call__(gm, example_inputs)
        from torch._dynamo.backends.registry import lookup_backend

        return lookup_backend(self.backend)(gm, example_inputs)


class _Config(types.ModuleType):
    @property
    def recompile_limit(self) -> int:
        return int(torch._dynamo.config.recompile_limit)

    @recompile_limit.setter
    def recompile_limit(self, value: int) -> None:
        torch._dynamo.config.recompile_limit = value


def install() -> None:
    """Register this module as ``ferrodyn`` (plus submodules) in ``sys.modules``."""
    pkg = types.ModuleType("ferrodyn")
    exc = types.ModuleType("ferrodyn.exc")
    exc.Unsupported = Unsupported  # type: ignore[attr-defined]
    exc.InvalidBackend = InvalidBackend  # type: ignore[attr-defined]
    exc.RecompileLimitWarning = RecompileLimitWarning  # type: ignore[attr-defined]
    testing = types.ModuleType("ferrodyn.testing")
    testing.CompileCounter = CompileCounter  # type: ignore[attr-defined]
    testing.CompileCounterWithBackend = CompileCounterWithBackend  # type: ignore[attr-defined]
    config = _Config("ferrodyn.config")
    pkg.compile = compile  # type: ignore[attr-defined]
    pkg.reset = reset  # type: ignore[attr-defined]
    pkg.exc = exc  # type: ignore[attr-defined]
    pkg.testing = testing  # type: ignore[attr-defined]
    pkg.config = config  # type: ignore[attr-defined]
    pkg.__path__ = []  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "ferrodyn": pkg,
            "ferrodyn.exc": exc,
            "ferrodyn.testing": testing,
            "ferrodyn.config": config,
        }
    )
