"""functools.wraps on functions made in the trace, attributes of such functions,
`setattr`/`delattr` builtins, `contextlib.contextmanager` in the trace, and `import`
statements of loaded modules that the function's globals do not bind (absolute and
relative): all traced without a graph break, with eager's results."""

from __future__ import annotations

import functools
from typing import Any

import ferrodyn
import torch
from _helpers import assert_same, assert_tree_equal
from ferrodyn.testing import CompileCounter

X = torch.arange(3.0)


def test_wraps_inner_function_called_and_read() -> None:
    def fn(x: torch.Tensor) -> Any:
        def deco(f: Any) -> Any:
            @functools.wraps(f)
            def wrapper(*a: Any) -> Any:
                return f(*a) + 1

            return wrapper

        @deco
        def inner(y: torch.Tensor) -> torch.Tensor:
            """Doubles."""
            return y * 2

        return inner(x), inner.__name__, inner.__doc__, inner.__qualname__.split(".")[-1]

    assert_same(fn, X, frames=1, fullgraph=True)


def test_wrapped_function_escapes_with_metadata() -> None:
    def fn(x: torch.Tensor) -> Any:
        def inner(y: torch.Tensor) -> torch.Tensor:
            """Doc of inner."""
            return y * 3

        @functools.wraps(inner)
        def wrapper(y: torch.Tensor) -> torch.Tensor:
            return inner(y) - 1

        wrapper.tag = "t"  # type: ignore[attr-defined]
        return x + 1, wrapper

    cnt = CompileCounter()
    out, w = ferrodyn.compile(fn, backend=cnt, fullgraph=True)(X)
    ref_out, ref_w = fn(X)
    assert_tree_equal(out, ref_out)
    for attr in ("__name__", "__qualname__", "__doc__", "__module__", "tag"):
        assert getattr(w, attr) == getattr(ref_w, attr), attr
    assert w.__wrapped__.__name__ == "inner"
    assert_tree_equal(w(X), ref_w(X))
    assert cnt.frame_count == 1


def test_function_attributes_read_back() -> None:
    def fn(x: torch.Tensor) -> Any:
        def f() -> int:
            return 1

        f.scale = 4  # type: ignore[attr-defined]
        f.__name__ = "renamed"
        missing = hasattr(f, "nope")
        return x * f.scale, f.__name__, f.__module__, missing  # type: ignore[attr-defined]

    assert_same(fn, X, frames=1, fullgraph=True)


class _Box:
    def __init__(self) -> None:
        self.a = 1
        self.b = 2


def test_setattr_delattr_builtins() -> None:
    box = _Box()
    ref = _Box()

    def fn(x: torch.Tensor, o: _Box) -> Any:
        setattr(o, "a", 10)  # noqa: B010 - the builtin under test
        delattr(o, "b")
        return x + o.a, hasattr(o, "b")

    out = ferrodyn.compile(fn, backend="eager", fullgraph=True)(X, box)
    assert_tree_equal(out, fn(X, ref))
    assert box.__dict__ == ref.__dict__ == {"a": 10}


def test_contextmanager_defined_in_trace() -> None:
    def fn(x: torch.Tensor) -> Any:
        import contextlib

        log: list[str] = []

        @contextlib.contextmanager
        def scope(tag: str) -> Any:
            log.append(f"enter {tag}")
            try:
                yield 2
            finally:
                log.append(f"exit {tag}")

        with scope("a") as v:
            y = x * v
        return y, log

    assert_same(fn, X, frames=1, fullgraph=True)


def test_import_of_loaded_modules_not_in_globals() -> None:
    def fn(x: torch.Tensor) -> Any:
        import collections
        import json.decoder
        from math import sqrt
        from os import path as p

        return x * sqrt(4), collections.OrderedDict.__name__, json.decoder.__name__, p.sep

    assert_same(fn, X, frames=1, fullgraph=True)


def test_relative_import_in_package_module() -> None:
    # A function defined in a package module (`ferrodyn.testing`'s package) doing
    # `from . import x`: resolved through __package__, traced.
    ns: dict[str, Any] = {"__name__": "ferrodyn._probe", "__package__": "ferrodyn"}
    exec(  # noqa: S102 - a function compiled as if it lived in ferrodyn's package
        "def fn(x):\n    from . import config\n    from .testing import CompileCounter\n"
        "    return x + 1, config.__name__, CompileCounter.__name__\n",
        ns,
    )
    assert_same(ns["fn"], X, frames=1, fullgraph=True)
