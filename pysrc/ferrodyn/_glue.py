"""Small runtime objects used by graph-break glue code."""

from __future__ import annotations

import torch


class GradModeExit:
    """The bound `__exit__` of a grad-mode context manager entered inside a graph: calling
    it restores the grad mode that was active before the `with`."""

    __slots__ = ("prev",)

    def __init__(self, prev: bool) -> None:
        self.prev = prev

    def __call__(self, *exc_info: object) -> None:
        torch._C._set_grad_enabled(self.prev)
