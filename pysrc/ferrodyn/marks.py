"""`mark_dynamic`, `maybe_mark_dynamic` and `mark_static` on input tensors, without
importing `torch._dynamo`: they record the same tensor attributes as torch's own functions
(`_dynamo_dynamic_indices`, ...), so a tensor marked either way is treated the same by
ferrodyn and by torch.compile (see `ferrodyn.dynamic_shapes`)."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def _dims(t: torch.Tensor, index: int | Iterable[int] | None, what: str) -> list[int]:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"ferrodyn.{what} expects a tensor, got {type(t).__qualname__}")
    if index is None:
        return list(range(t.dim()))
    items = [index] if isinstance(index, int) else list(index)
    out = []
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"ferrodyn.{what}: dimension indices are ints, got {i!r}")
        if not -t.dim() <= i < t.dim():
            raise IndexError(
                f"ferrodyn.{what}: dimension {i} is out of range for a {t.dim()}-d tensor"
            )
        out.append(i % t.dim())
    return out


def _add(t: torch.Tensor, attr: str, dims: list[int]) -> None:
    marks = getattr(t, attr, None)
    if not isinstance(marks, set):
        marks = set()
        setattr(t, attr, marks)
    marks.update(dims)
    t._has_dynamo_dim_marking = True  # type: ignore[attr-defined]


def mark_dynamic(t: torch.Tensor, index: int | Iterable[int]) -> None:
    """Make these dimensions of `t` symbolic from the first trace (sizes 0 and 1 still
    specialise, as in torch.compile)."""
    _add(t, "_dynamo_dynamic_indices", _dims(t, index, "mark_dynamic"))


def maybe_mark_dynamic(t: torch.Tensor, index: int | Iterable[int]) -> None:
    """Like `mark_dynamic`, but the dimension may still be specialised by the program."""
    _add(t, "_dynamo_weak_dynamic_indices", _dims(t, index, "maybe_mark_dynamic"))


def mark_static(t: torch.Tensor, index: int | Iterable[int] | None = None) -> None:
    """Keep these dimensions of `t` (all of them by default) static, even under
    `dynamic=True` or automatic dynamic shapes."""
    _add(t, "_dynamo_static_indices", _dims(t, index, "mark_static"))
