"""Backend resolution: a name ("inductor", "eager", "aot_eager", any name in torch's backend
registry) or a callable `(gm, example_inputs) -> callable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .exc import InvalidBackend

Backend = Callable[[torch.fx.GraphModule, list], Callable[..., Any]]

VALID_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _eager(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
    return gm.forward


def _registry_names() -> list[str]:
    from torch._dynamo.backends.registry import list_backends

    return sorted(set(list_backends(exclude_tags=())) | {"eager", "aot_eager", "inductor"})


def resolve(backend: Any, mode: str | None, options: dict | None) -> Backend:
    """Turn the user's `backend=`/`mode=`/`options=` into a backend callable, or raise."""
    if mode is not None and options is not None:
        raise ValueError("ferrodyn.compile: give either mode= or options=, not both")
    if mode is not None and (not isinstance(mode, str) or mode not in VALID_MODES):
        raise ValueError(f"ferrodyn.compile: unknown mode={mode!r}; expected one of {VALID_MODES}")
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"ferrodyn.compile: options= must be a dict, got {type(options).__name__}")
    if callable(backend):
        return backend
    if not isinstance(backend, str):
        raise InvalidBackend(
            f"ferrodyn.compile: backend={backend!r} is neither a backend name nor a callable "
            "(gm, example_inputs) -> callable"
        )
    if backend == "eager":
        return _eager
    if backend == "inductor":
        return _inductor(mode, options)
    from torch._dynamo.backends.registry import lookup_backend

    try:
        fn = lookup_backend(backend)
    except Exception:  # noqa: BLE001 - the registry raises several types for unknown names
        raise InvalidBackend(
            f"ferrodyn.compile: unknown backend {backend!r}; known backends: {_registry_names()}"
        ) from None
    return fn


def _inductor(mode: str | None, options: dict | None) -> Backend:
    def compile_inductor(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        from torch._inductor.compile_fx import compile_fx

        patches: dict[str, Any] = dict(options or {})
        if mode is not None and mode != "default":
            from torch._inductor import list_mode_options

            patches = {**list_mode_options(mode), **patches}
        return compile_fx(gm, example_inputs, config_patches=patches or None)

    compile_inductor.__name__ = "inductor"
    return compile_inductor


class DynamicBackend:
    """A backend carrying `ferrodyn.compile(dynamic=True/False)` to every trace."""

    def __init__(self, backend: Callable[..., Any], dynamic: bool) -> None:
        self.backend = backend
        self.ferrodyn_dynamic = dynamic
        self.__name__ = getattr(backend, "__name__", type(backend).__name__)

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list) -> Any:
        return self.backend(gm, example_inputs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)
