"""Namedtuple subclasses without ``__slots__`` made in the trace: inherited fields read,
attributes stored on the instance (traced, and kept on the one rebuilt object across a
graph break), compared with eager and torch.compile (``check``)."""

from __future__ import annotations

import collections
from typing import Any

import torch
from test_checklist_classes import check


class Rec(collections.namedtuple("Rec", "a b")):
    pass


class Tagged(collections.namedtuple("Tagged", "a b")):
    note = 0  # a class attribute of that name: the store is not modelled (a break)


def test_fields_and_stored_attributes_across_a_break() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            r = Rec(x, 2)
            r.note = 5
            torch._dynamo.graph_break()
            r.note = r.note + r.b
            return r.a * r.note, r

        out, r = c(f)(torch.ones(2))
        return out, r, vars(r)

    check(scenario, graphs=1, breaks=1)


def test_a_store_that_breaks_lands_on_the_object_the_rest_of_the_frame_sees() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            r = Tagged(x, 1)
            alias = r
            r.note = 7  # not traced: the glue stores it natively on the rebuilt object
            return r.a + alias.note, alias is r, r

        out, same, r = c(f)(torch.ones(2))
        return out, same, r, vars(r)

    fd, _ = check(scenario, torch_differs=True)
    assert fd.frame_count >= 1


def test_stored_attribute_escapes_with_the_tuple() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            r = Rec(x + 1, "k")
            r.extra = x * 2
            return r

        r = c(f)(torch.ones(2))
        return r, type(r), vars(r)

    check(scenario, graphs=1, breaks=0)
