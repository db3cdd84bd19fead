"""Items of a list or tuple argument read by a constant subscript (`seq[0]`) are realized
and guarded one by one (checklist item 130, Dynamo's lazy list items): changing an item the
trace never reads does not recompile, changing one it reads does, and every other use of the
sequence still sees eager's values (including writes through another name)."""

from __future__ import annotations

from typing import Any

import ferrodyn
import pytest
import torch

X = torch.ones(3)


def _compile(fn: Any) -> tuple[Any, ferrodyn.testing.CompileCounter]:
    cnt = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=cnt), cnt


def scale_by_first(x: torch.Tensor, cfg: Any) -> torch.Tensor:
    return x * cfg[0]


def shift_by_last(x: torch.Tensor, cfg: Any) -> torch.Tensor:
    return x + cfg[-1]


@pytest.mark.parametrize("kind", [list, tuple])
def test_an_unread_item_changing_does_not_recompile(kind: type) -> None:
    compiled, cnt = _compile(scale_by_first)
    for other in (3, 4, "text", None, torch.zeros(5)):
        cfg = kind([2, other])
        torch.testing.assert_close(compiled(X, cfg), scale_by_first(X, cfg))
    assert cnt.frame_count == 1


@pytest.mark.parametrize("kind", [list, tuple])
def test_a_read_item_changing_recompiles(kind: type) -> None:
    compiled, cnt = _compile(scale_by_first)
    for first in (2, 3):
        cfg = kind([first, 0])
        torch.testing.assert_close(compiled(X, cfg), scale_by_first(X, cfg))
    assert cnt.frame_count == 2


def test_negative_index_guards_the_length() -> None:
    compiled, cnt = _compile(shift_by_last)
    for cfg in ([1, 2], [5, 2], [1, 2, 7], (4, 2)):
        torch.testing.assert_close(compiled(X, cfg), shift_by_last(X, cfg))
    # [1, 2] and [5, 2] share a graph; a longer list and a tuple do not
    assert cnt.frame_count == 3


def test_unread_tensor_items_are_not_graph_inputs() -> None:
    compiled, cnt = _compile(scale_by_first)
    cfg = (torch.full((3,), 2.0), torch.zeros(5))
    torch.testing.assert_close(compiled(X, cfg), scale_by_first(X, cfg))
    placeholders = [n for n in cnt.graphs[0].graph.nodes if n.op == "placeholder"]
    assert len(placeholders) == 2
    cfg = (torch.full((3,), 3.0), torch.zeros(2, 2))
    torch.testing.assert_close(compiled(X, cfg), scale_by_first(X, cfg))
    assert cnt.frame_count == 1


def test_out_of_range_raises_like_eager() -> None:
    compiled, _ = _compile(scale_by_first)
    with pytest.raises(IndexError):
        compiled(X, [])


def test_write_through_another_name_is_seen() -> None:
    def fn(x: torch.Tensor, a: list, b: list) -> torch.Tensor:
        first = a[0]
        b[0] = 10
        return x * first + a[0]

    compiled, _ = _compile(fn)
    a1 = [2, 3]
    a2 = [2, 3]
    torch.testing.assert_close(compiled(X, a1, a1), fn(X, a2, a2))
    assert a1 == a2
    b1, b2 = [2, 3], [2, 3]
    c1, c2 = [7], [7]
    torch.testing.assert_close(compiled(X, b1, c1), fn(X, b2, c2))
    assert (b1, c1) == (b2, c2)


def test_mutation_after_a_lazy_read_is_replayed() -> None:
    def fn(x: torch.Tensor, a: list) -> tuple[torch.Tensor, list]:
        v = a[1]
        a.append(v + 1)
        a[0] = -1
        return x * a[1] + a[0], a

    compiled, _ = _compile(fn)
    a1, a2 = [1, 2], [1, 2]
    out1, out2 = compiled(X, a1), fn(X, a2)
    torch.testing.assert_close(out1[0], out2[0])
    assert a1 == a2 == out1[1]


def test_other_uses_read_every_item() -> None:
    def fn(x: torch.Tensor, t: tuple) -> torch.Tensor:
        return x * t[0] + sum(t)

    compiled, cnt = _compile(fn)
    for t in ((1, 2), (1, 3)):
        torch.testing.assert_close(compiled(X, t), fn(X, t))
    assert cnt.frame_count == 2
