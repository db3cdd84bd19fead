"""Entries of a dict from the inputs are read (realized and guarded) only when the trace
uses them (checklist item 130, Dynamo's lazy trackers): changing an unused entry does not
recompile, changing a used one does, and every way of reading entries gives eager's
answer."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch

X = torch.ones(3)


def _compile(fn: Any) -> tuple[Any, ferrodyn.testing.CompileCounter]:
    cnt = ferrodyn.testing.CompileCounter()
    return ferrodyn.compile(fn, backend=cnt), cnt


def test_an_unused_entry_changing_does_not_recompile() -> None:
    def fn(x: torch.Tensor, d: dict) -> torch.Tensor:
        return x + d["k"]

    compiled, cnt = _compile(fn)
    for other in ([1, 2], [1, 2, 3], "text", None):
        d = {"k": 2.0, "other": other}
        torch.testing.assert_close(compiled(X, d), fn(X, d))
    assert cnt.frame_count == 1


def test_a_used_entry_changing_recompiles() -> None:
    def fn(x: torch.Tensor, d: dict) -> torch.Tensor:
        return x + d["k"]

    compiled, cnt = _compile(fn)
    for k in (1.0, 2.0):
        d = {"k": k, "other": 0}
        torch.testing.assert_close(compiled(X, d), fn(X, d))
    assert cnt.frame_count == 2


def test_unused_tensor_entries_are_not_graph_inputs() -> None:
    def fn(x: torch.Tensor, d: dict) -> torch.Tensor:
        return x * d["a"]

    compiled, cnt = _compile(fn)
    d = {"a": torch.full((3,), 2.0), "b": torch.zeros(5), "c": torch.zeros(2, 2)}
    torch.testing.assert_close(compiled(X, d), fn(X, d))
    placeholders = [n for n in cnt.graphs[0].graph.nodes if n.op == "placeholder"]
    assert len(placeholders) == 2
    d["b"] = torch.zeros(7)
    torch.testing.assert_close(compiled(X, d), fn(X, d))
    assert cnt.frame_count == 1


def test_every_way_of_reading_entries() -> None:
    def fn(x: torch.Tensor, d: dict) -> Any:
        c = {**d}
        e = dict(d)
        total = x * c["a"] + e.get("b", 0) + d.get("zzz", 5)
        keys = list(d)
        vals = [v for v in d.values() if isinstance(v, int)]
        pairs = sorted(k for k, _ in d.items())
        return total, keys, vals, pairs, "a" in d, len(d), c is d

    compiled, _ = _compile(fn)
    for b in (1, 2):
        d = {"a": 2, "b": b, "s": "x"}
        assert repr(compiled(X, d)) == repr(fn(X, d))


def test_mutating_a_dict_from_the_inputs_keeps_unread_entries() -> None:
    def fn(x: torch.Tensor, d: dict) -> Any:
        d["new"] = 1
        v = d.pop("k")
        return x + v, d

    compiled, _ = _compile(fn)
    for i in range(2):
        e, c = (
            {"k": 1.0, "keep": [i], "t": torch.ones(2)},
            {"k": 1.0, "keep": [i], "t": torch.ones(2)},
        )
        out_e, out_c = fn(X, e), compiled(X, c)
        torch.testing.assert_close(out_c[0], out_e[0])
        assert out_c[1] is c
        assert list(c) == list(e) and c["keep"] == e["keep"] and c["t"] is not None


def test_an_unread_entry_returned_is_the_same_object() -> None:
    def fn(x: torch.Tensor, d: dict) -> Any:
        return x + d["k"], {**d}

    compiled, _ = _compile(fn)
    payload = object()
    d = {"k": 1.0, "obj": payload}
    out = compiled(X, d)
    assert out[1]["obj"] is payload and out[1] is not d


def test_kwargs_from_a_dict_argument() -> None:
    def g(a: Any, b: Any = 0) -> Any:
        return a * 2 + b

    def fn(x: torch.Tensor, d: dict) -> Any:
        return g(x, **d)

    compiled, _ = _compile(fn)
    for b in (1, 3):
        d = {"b": b}
        torch.testing.assert_close(compiled(X, d), fn(X, d))
