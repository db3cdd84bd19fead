"""A seeded generator of small Python programs over tensors, for differential testing.

``generate(seed)`` returns a ``Program``: the source text of one entry function ``f`` (and
the helper functions it calls), plus how to build its arguments.  Programs mix

* tensor ops: ``+ - *`` with tensors and Python scalars, ``relu``/``sin``/``tanh``/...,
  ``sum(dim)``, ``view``/``reshape``, ``torch.cat``, ``torch.stack``, ``torch.where``,
  indexing and slicing;
* Python containers built inside the function: lists (literal, ``append``, indexing,
  iteration), tuples (literal, indexing, unpacking), dicts (literal, ``d[k] = v``, reads);
* constant arithmetic, static-shape arithmetic, ``if``/``else`` on constants, on static
  shapes and on values that came out of a graph break, ``for`` loops over small ranges and
  over local lists, ``while`` loops with a Python counter;
* calls of generated helper functions (possibly nested, so they are inlined);
* closures over locals, list/dict comprehensions, local generator functions (drained by
  ``sum``, a ``for`` loop, ``next`` or ``send``, with ``yield from``) and generator
  expressions;
* ``try``/``except``/``else``/``finally`` around code that raises depending on an int: a
  builtin exception, a missing dict key, a user exception or ``TypeError`` raised in a
  helper, a ``ZeroDivisionError`` re-raised ``from`` as a user exception;
* graph breaks: ``zlib.crc32``/``zlib.adler32`` of constant bytes, their results used in
  Python arithmetic, ``.item()`` of a tensor in a branch condition, and breaks at
  instructions other than calls: boolean-mask indexing (``t[t > 0]``), an f-string of an
  object with its own ``__format__``, an attribute store on a ``__slots__`` object, and
  ``import`` statements (of a module the program's globals do not bind) — anywhere,
  including inside loops.

Only objects created inside the program are mutated: arguments are never touched (side
effects on pre-existing objects are out of scope here).  Everything is deterministic given
the seed: the same seed gives the same source text and the same argument values.
"""

from __future__ import annotations

import itertools
import linecache
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

ARG_SHAPES = [(2, 3), (3,), (4, 2), (2, 2, 2), (6,), (3, 2)]
MAX_NUMEL = 96
UNARY = ["relu", "sin", "cos", "tanh", "neg", "abs", "sigmoid"]
WORDS = ["alpha", "beta", "gamma", "delta", "ferro", "dyn", "x", "q"]


class _Fmt:
    """An object with its own ``__format__`` (FORMAT_VALUE breaks the graph on it)."""

    def __format__(self, spec: str) -> str:
        return "F" + spec


class _Box:
    """A ``__slots__`` object created per program (its attribute stores break the graph)."""

    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v = 0


class _Oops(Exception):
    """A user exception class the programs raise and catch."""


def _check_small(t: torch.Tensor, k: int) -> torch.Tensor:
    """A helper that raises (a user exception or a TypeError) for some ints."""
    if k > 3:
        raise _Oops(k)
    if k < -1:
        raise TypeError(-k)
    return t * k


@dataclass
class Program:
    seed: int
    source: str
    arg_shapes: list[tuple[int, ...]]
    int_args: list[int]
    features: set[str] = field(default_factory=set)

    def build(self) -> Callable[..., Any]:
        """Exec the source into a fresh module namespace and return its entry function."""
        filename = f"<progen seed={self.seed}>"
        lines = self.source.splitlines(keepends=True)
        linecache.cache[filename] = (len(self.source), None, lines, filename)
        namespace: dict[str, Any] = {
            "__name__": f"progen_{self.seed}",
            "torch": torch,
            "zlib": zlib,
            "_FMT": _Fmt(),
            "_BOX": _Box(),
            "_Oops": _Oops,
            "_check_small": _check_small,
        }
        exec(compile(self.source, filename, "exec"), namespace)  # noqa: S102 - generated code
        fn: Callable[..., Any] = namespace["f"]
        return fn

    def make_args(self) -> tuple[Any, ...]:
        """Fresh argument values (the same values every time for a given seed)."""
        gen = torch.Generator().manual_seed(self.seed)
        tensors = [torch.randn(*s, generator=gen) for s in self.arg_shapes]
        return (*tensors, *self.int_args)


def _shapes_of(numel: int) -> list[tuple[int, ...]]:
    divisors = [d for d in range(1, numel + 1) if numel % d == 0]
    out: list[tuple[int, ...]] = [(numel,)]
    for a, b in itertools.product(divisors, divisors):
        if a * b == numel:
            out.append((a, b))
    for a, b, c in itertools.product(divisors, divisors, divisors):
        if a * b * c == numel and max(a, b, c) > 1:
            out.append((a, b, c))
    return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# Variable types: ("t", shape, contiguous) | ("i",) | ("l", elem_shape) | ("d", {key: shape})
Var = tuple[Any, ...]


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.lines: list[str] = []
        self.helpers: list[str] = []
        self.helper_sigs: list[tuple[str, tuple[int, ...]]] = []
        self.env: dict[str, Var] = {}
        self.indent = 1
        self.counter = 0
        self.features: set[str] = set()
        # Half the programs have no graph break at all (they must compile to one graph).
        self.breaks = self.rng.random() < 0.5

    # ------------------------------------------------------------------ basics

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    def names(self, kind: str, shape: tuple[int, ...] | None = None) -> list[str]:
        return [n for n, v in self.env.items() if v[0] == kind and (shape is None or v[1] == shape)]

    def pick(self, options: list[str]) -> str:
        return self.rng.choice(options)

    def int_atom(self) -> str:
        ints = self.names("i")
        if ints and self.rng.random() < 0.6:
            return self.pick(ints)
        return str(self.rng.randint(-3, 5))

    def scalar_atom(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.int_atom()
        return self.pick(["0.5", "1.5", "-2.0", "0.25", "3"])

    def breaking_int(self) -> str:
        if not self.breaks:
            return f"{self.rng.randint(2, 9)} % {self.rng.randint(2, 5)}"
        self.features.add("break")
        r = self.rng.random()
        tensors = self.names("t")
        if r < 0.2 and tensors:
            self.features.add("mask_index")
            t = self.pick(tensors)
            return f"{t}[{t} > 0].numel() % {self.rng.randint(2, 9)}"
        if r < 0.3:
            self.features.add("format")
            return f'len(f"{{_FMT:>{self.rng.randint(1, 6)}}}") % {self.rng.randint(2, 9)}'
        fn = self.pick(["crc32", "adler32"])
        word = self.pick(WORDS)
        return f'zlib.{fn}(b"{word}") % {self.rng.randint(2, 9)}'

    # ------------------------------------------------------------------ expressions

    def tensor_expr(self) -> tuple[str, Var]:
        """An expression over existing variables producing a tensor, and its type."""
        a = self.pick(self.names("t"))
        _, shape, contig = self.env[a]
        rank, numel = len(shape), _numel(shape)
        same = self.names("t", shape)
        kinds = ["binop", "scalar", "unary", "where"]
        if rank >= 1:
            kinds += ["sum", "index", "reshape"]
            if numel * 2 <= MAX_NUMEL:
                kinds.append("cat")
        kind = self.pick(kinds)
        if kind == "binop":
            return f"{a} {self.pick(['+', '-', '*'])} {self.pick(same)}", ("t", shape, True)
        if kind == "scalar":
            s = self.scalar_atom()
            if self.rng.random() < 0.5:
                return f"{a} {self.pick(['+', '-', '*'])} {s}", ("t", shape, True)
            return f"{s} {self.pick(['+', '-', '*'])} {a}", ("t", shape, True)
        if kind == "unary":
            fn = self.pick(UNARY)
            if self.rng.random() < 0.5:
                return f"torch.{fn}({a})", ("t", shape, True)
            return f"{a}.{fn}()", ("t", shape, True)
        if kind == "where":
            b = self.pick(same)
            return f"torch.where({a} > 0, {a}, {b} * 0.5)", ("t", shape, True)
        if kind == "sum":
            d = self.rng.randrange(rank)
            if self.rng.random() < 0.5:
                new = tuple(1 if i == d else s for i, s in enumerate(shape))
                return f"{a}.sum(dim={d}, keepdim=True)", ("t", new, True)
            new = tuple(s for i, s in enumerate(shape) if i != d)
            return f"{a}.sum({d})", ("t", new, True)
        if kind == "index":
            options: list[tuple[str, tuple[int, ...], bool]] = [
                (f"{a}[0]", shape[1:], contig),
                (f"{a}[-1]", shape[1:], contig),
            ]
            if shape[0] >= 2:
                options.append((f"{a}[1:]", (shape[0] - 1, *shape[1:]), contig))
            if rank >= 2 and shape[1] >= 2:
                options.append((f"{a}[:, :1]", (shape[0], 1, *shape[2:]), False))
            expr, new, c = self.rng.choice(options)
            return expr, ("t", new, c)
        if kind == "reshape":
            new = self.rng.choice(_shapes_of(numel))
            dims = ", ".join(str(s) for s in new)
            self.features.add("view")
            if contig and self.rng.random() < 0.5:
                return f"{a}.view({dims})", ("t", new, True)
            return f"{a}.reshape({dims})", ("t", new, True)
        # cat
        d = self.rng.randrange(rank)
        new = tuple(s * 2 if i == d else s for i, s in enumerate(shape))
        self.features.add("cat")
        return f"torch.cat([{a}, {self.pick(same)}], dim={d})", ("t", new, True)

    def int_expr(self) -> str:
        r = self.rng.random()
        tensors = self.names("t")
        lists = self.names("l")
        if r < 0.2:
            return f"{self.rng.randint(1, 9)} * {self.rng.randint(1, 5)} - {self.rng.randint(0, 7)}"
        if r < 0.35:
            return f"({self.int_atom()} * 3 + {self.rng.randint(0, 4)}) % {self.rng.randint(5, 13)}"
        if r < 0.55 and tensors:
            t = self.pick(tensors)
            shape = self.env[t][1]
            if shape:
                return f"{t}.shape[{self.rng.randrange(len(shape))}] + {self.rng.randint(0, 3)}"
            return f"{t}.dim() + {self.rng.randint(1, 3)}"
        if r < 0.65 and lists:
            return f"len({self.pick(lists)})"
        if r < 0.72:
            return f"{self.int_atom()} // 2 + 3 ** 2 - 7"
        return self.breaking_int()

    def condition(self) -> str:
        r = self.rng.random()
        tensors = self.names("t")
        if r < 0.2:
            return self.pick(["3 * 2 > 5", "len('ab') == 3", "True", "not 0"])
        if r < 0.4 and tensors:
            t = self.pick(tensors)
            shape = self.env[t][1]
            if shape:
                return f"{t}.shape[{self.rng.randrange(len(shape))}] > {self.rng.randint(1, 3)}"
        if r < 0.6 and self.names("i"):
            return f"{self.pick(self.names('i'))} > {self.rng.randint(0, 5)}"
        if r < 0.8 and tensors and self.breaks:
            self.features.add("item")
            return f"{self.pick(tensors)}.sum().item() > 0"
        if tensors and self.breaks:
            self.features.add("tensor_bool")
            return f"{self.pick(tensors)}.mean() > 0"
        return "True"

    # ------------------------------------------------------------------ statements

    def update(self, loop_var: str | None = None) -> None:
        """One statement that keeps every variable's type and shape (safe in any block)."""
        tensors = self.names("t")
        r = self.rng.random()
        if r < 0.55 and tensors:
            a = self.pick(tensors)
            shape = self.env[a][1]
            s = loop_var if loop_var and self.rng.random() < 0.5 else self.int_atom()
            choice = self.rng.randrange(5)
            if choice == 0:
                self.emit(f"{a} = {a} + {self.pick(self.names('t', shape))}")
            elif choice == 1:
                self.emit(f"{a} = {a} * 0.5 + {s}")
            elif choice == 2:
                self.emit(f"{a} = torch.tanh({a}) * 2")
            elif choice == 3:
                self.emit(f"{a} = {a} - ({self.breaking_int()})")
            else:
                self.emit(f"{a} = {a}.{self.pick(UNARY)}() - {s}")
            self.env[a] = ("t", shape, True)
            return
        lists = [n for n in self.names("l") if self.names("t", self.env[n][1])]
        if r < 0.75 and lists:
            lst = self.pick(lists)
            item = self.pick(self.names("t", self.env[lst][1]))
            self.emit(f"{lst}.append({item} * {self.scalar_atom()})")
            self.features.add("append")
            return
        dicts = [n for n in self.names("d") if self.env[n][2]]
        if r < 0.85 and dicts:
            d = self.pick(dicts)
            key = self.pick(sorted(self.env[d][2]))
            self.emit(f'{d}["{key}"] = {d}["{key}"] + 1')
            return
        ints = self.names("i")
        if ints and (r < 0.95 or not tensors):
            i = self.pick(ints)
            other = loop_var or self.int_atom()
            self.emit(f"{i} = ({i} + {other}) % {self.rng.randint(5, 17)}")
            return
        if tensors:
            a = self.pick(tensors)
            self.emit(f"{a} = {a} * {self.scalar_atom()}")
            return
        self.emit("pass")

    def block(self, n: int, loop_var: str | None = None, depth: int = 0) -> None:
        self.indent += 1
        for _ in range(n):
            if depth < 1 and self.rng.random() < 0.15:
                self.emit(f"if {self.condition()}:")
                self.block(self.rng.randint(1, 2), loop_var, depth + 1)
            else:
                self.update(loop_var)
        self.indent -= 1

    def stmt(self) -> None:
        kind = self.rng.choices(
            ["tensor", "int", "list", "tuple", "dict", "if", "for", "while", "helper", "multi"]
            + ["store", "import", "closure", "comprehension", "generator", "try"],
            weights=[30, 10, 9, 6, 5, 10, 8, 3, 8, 4, 3, 2, 4, 4, 4, 4],
        )[0]
        getattr(self, f"stmt_{kind}")()

    def stmt_closure(self) -> None:
        """An inner function over a local (a cell), called after a possible break; the
        local is sometimes reassigned in between (the closure must see the new value)."""
        self.features.add("closure")
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        b = self.pick(self.names("t", shape))
        fn = self.fresh("g")
        self.emit(f"def {fn}(u):")
        self.indent += 1
        self.emit(f"return u * 0.5 + {a}")
        self.indent -= 1
        k = self.fresh("i")
        self.emit(f"{k} = {self.breaking_int()}")
        self.env[k] = ("i",)
        if self.rng.random() < 0.5:
            self.emit(f"{a} = {a} + {k}")
        name = self.fresh("t")
        self.emit(f"{name} = {fn}({b})")
        self.env[name] = ("t", shape, True)

    def stmt_generator(self) -> None:
        """A local generator function (or generator expression) over two tensors, drained
        by `sum`, a `for` loop, `next` calls or `send`; its body may break."""
        self.features.add("generator")
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        b = self.pick(self.names("t", shape))
        name = self.fresh("t")
        how = self.rng.choice(["sum", "for", "next", "send", "genexpr"])
        if how == "genexpr":
            self.emit(f"{name} = sum(u * {self.scalar_atom()} for u in ({a}, {b}))")
            self.env[name] = ("t", shape, True)
            return
        fn = self.fresh("gen")
        if how == "send":
            self.emit(f"def {fn}(u):")
            self.indent += 1
            self.emit("total = u * 0")
            self.emit("while True:")
            self.indent += 1
            self.emit("got = yield total")
            self.emit("if got is None:")
            self.emit("    return")
            self.emit(f"total = total + got * {self.scalar_atom()}")
            self.indent -= 2
            it = self.fresh("it")
            self.emit(f"{it} = {fn}({a})")
            self.emit(f"next({it})")
            self.emit(f"{it}.send({b})")
            self.emit(f"{name} = {it}.send({a})")
            self.env[name] = ("t", shape, True)
            return
        self.emit(f"def {fn}(u, v):")
        self.indent += 1
        self.emit(f"yield u * {self.scalar_atom()}")
        self.emit(f"k = {self.breaking_int()}")
        self.emit("yield v + k")
        if self.rng.random() < 0.5:
            self.emit("yield from (u - v, u * v)")
        self.indent -= 1
        if how == "sum":
            self.emit(f"{name} = sum({fn}({a}, {b}))")
        elif how == "for":
            self.emit(f"{name} = {a} * 0")
            self.emit(f"for u in {fn}({a}, {b}):")
            self.emit(f"    {name} = {name} + u")
        else:
            it = self.fresh("it")
            self.emit(f"{it} = {fn}({a}, {b})")
            self.emit(f"{name} = next({it}) - next({it})")
        self.env[name] = ("t", shape, True)

    def stmt_try(self) -> None:
        """try/except/else/finally around code that raises (a builtin or user exception,
        a missing dict key, a raise in a helper) or not, depending on an int."""
        self.features.add("try")
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        name = self.fresh("t")
        k = self.fresh("i")
        self.emit(f"{name} = {a} * 0")
        self.emit(f"{k} = {self.int_expr()}")
        self.env[k] = ("i",)
        kind = self.rng.choice(["raise", "key", "helper", "chain"])
        self.emit("try:")
        self.indent += 1
        if kind == "raise":
            self.emit(f"if {k} > {self.rng.randint(-2, 4)}:")
            self.emit(f"    raise ValueError({k})")
            self.emit(f"{name} = {a} + {k}")
        elif kind == "key":
            self.emit(f"{name} = {a} * {{1: 2.0, 3: -1.0}}[{k}]")
        elif kind == "helper":
            self.emit(f"{name} = _check_small({a}, {k})")
        else:
            self.emit("try:")
            self.emit(f"    {name} = {a} / ({k} - {self.rng.randint(-2, 4)})")
            self.emit("except ZeroDivisionError as inner:")
            self.emit("    raise _Oops(2) from inner")
        self.indent -= 1
        if kind == "raise":
            self.emit("except ValueError as e:")
            self.emit(f"    {name} = {a} - e.args[0]")
        elif kind == "key":
            self.emit("except KeyError:")
            self.emit(f"    {name} = {a} + 1")
        elif kind == "helper":
            self.emit("except (_Oops, TypeError) as e:")
            self.emit(f"    {name} = {a} * e.args[0]")
        else:
            self.emit("except _Oops as e:")
            self.emit(f"    {name} = {a} + e.args[0] + (e.__cause__ is not None)")
        if self.rng.random() < 0.5:
            self.emit("else:")
            self.emit(f"    {name} = {name} * 2")
        if self.rng.random() < 0.5:
            self.emit("finally:")
            self.emit(f"    {k} = {k} + 1")
        self.env[name] = ("t", shape, True)

    def stmt_comprehension(self) -> None:
        """A list/dict comprehension over tensors whose body may break (the parent splits at
        the comprehension's call)."""
        self.features.add("comprehension")
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        b = self.pick(self.names("t", shape))
        name = self.fresh("t")
        body = f"u * {self.scalar_atom()} + {self.breaking_int()}"
        if self.rng.random() < 0.5:
            self.emit(f"{name} = sum([{body} for u in ({a}, {b})])")
        else:
            d = self.fresh("dc")
            self.emit(f"{d} = {{j: {body} for j, u in enumerate(({a}, {b}))}}")
            self.emit(f"{name} = {d}[0] - {d}[1]")
        self.env[name] = ("t", shape, True)

    def stmt_store(self) -> None:
        """An attribute store on a ``__slots__`` object, read back into an int."""
        if not self.breaks:
            return self.stmt_int()
        self.features.add("slot_store")
        self.emit(f"_BOX.v = {self.int_atom()} + {self.rng.randint(0, 3)}")
        name = self.fresh("i")
        self.emit(f"{name} = _BOX.v * 2")
        self.env[name] = ("i",)
        return None

    def stmt_import(self) -> None:
        """An import statement of a module the globals do not bind."""
        if not self.breaks:
            return self.stmt_int()
        self.features.add("import")
        name = self.fresh("i")
        if self.rng.random() < 0.5:
            self.emit("import math")
            self.emit(f"{name} = math.floor({self.int_atom()} * 1.5)")
        else:
            alias = self.fresh("fl")
            self.emit(f"from math import floor as {alias}")
            self.emit(f"{name} = {alias}({self.int_atom()} * 2.5)")
        self.env[name] = ("i",)
        return None

    def stmt_tensor(self) -> None:
        expr, typ = self.tensor_expr()
        name = self.fresh("t")
        self.emit(f"{name} = {expr}")
        self.env[name] = typ

    def stmt_int(self) -> None:
        name = self.fresh("i")
        self.emit(f"{name} = {self.int_expr()}")
        self.env[name] = ("i",)

    def stmt_list(self) -> None:
        self.features.add("list")
        lists = self.names("l")
        r = self.rng.random()
        if lists and r < 0.5:
            lst = self.pick(lists)
            shape = self.env[lst][1]
            name = self.fresh("t")
            how = self.rng.randrange(4)
            if how == 0:
                self.emit(f"{name} = {lst}[{self.pick(['0', '-1'])}]")
            elif how == 1:
                self.emit(f"{name} = torch.stack({lst}).sum(0)")
            elif how == 2:
                self.emit(f"{name} = sum({lst}) / len({lst})")
            else:
                self.emit(f"{name} = {lst}[len({lst}) // 2] * {self.scalar_atom()}")
            self.env[name] = ("t", shape, True)
            return
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        items = [self.pick(self.names("t", shape)) for _ in range(self.rng.randint(1, 3))]
        name = self.fresh("l")
        self.emit(f"{name} = [{', '.join(items)}]")
        self.env[name] = ("l", shape)

    def stmt_tuple(self) -> None:
        self.features.add("tuple")
        a = self.pick(self.names("t"))
        expr, typ = self.tensor_expr()
        p, x, y, z = self.fresh("p"), self.fresh("t"), self.fresh("i"), self.fresh("t")
        self.emit(f"{p} = ({a}, {self.int_expr()}, {expr})")
        if self.rng.random() < 0.5:
            self.emit(f"{x}, {y}, {z} = {p}")
        else:
            self.emit(f"{x}, {y}, {z} = {p}[0], {p}[1], {p}[-1]")
        self.env[x] = self.env[a]
        self.env[y] = ("i",)
        self.env[z] = typ

    def stmt_dict(self) -> None:
        self.features.add("dict")
        a = self.pick(self.names("t"))
        d = self.fresh("d")
        self.emit(f'{d} = {{"a": {a}, "n": {self.int_expr()}}}')
        keys = {"n"}
        if self.rng.random() < 0.5:
            self.emit(f'{d}["m"] = {d}["n"] * 2 + 1')
            keys.add("m")
        self.env[d] = ("d", None, keys)
        name = self.fresh("t")
        self.emit(f'{name} = {d}["a"] * {d}["{self.pick(sorted(keys))}"]')
        self.env[name] = ("t", self.env[a][1], True)

    def stmt_if(self) -> None:
        self.features.add("if")
        self.emit(f"if {self.condition()}:")
        self.block(self.rng.randint(1, 3))
        if self.rng.random() < 0.6:
            self.emit("else:")
            self.block(self.rng.randint(1, 2))

    def stmt_for(self) -> None:
        self.features.add("loop")
        lists = self.names("l")
        if lists and self.rng.random() < 0.3:
            lst = self.pick(lists)
            shape = self.env[lst][1]
            acc = self.pick(self.names("t", shape))
            el = self.fresh("e")
            self.emit(f"for {el} in {lst}:")
            self.indent += 1
            self.emit(f"{acc} = {acc} + {el} * 0.5")
            self.indent -= 1
            return
        var = self.fresh("k")
        self.emit(f"for {var} in range({self.rng.randint(1, 3)}):")
        self.block(self.rng.randint(1, 3), loop_var=var)

    def stmt_while(self) -> None:
        self.features.add("loop")
        c = self.fresh("c")
        self.emit(f"{c} = 0")
        self.emit(f"while {c} < {self.rng.randint(1, 3)}:")
        self.block(self.rng.randint(1, 2), loop_var=c)
        self.indent += 1
        self.emit(f"{c} += 1")
        self.indent -= 1

    def stmt_multi(self) -> None:
        (e1, t1), (e2, t2) = self.tensor_expr(), self.tensor_expr()
        a, b = self.fresh("t"), self.fresh("t")
        self.emit(f"{a}, {b} = {e1}, {e2}")
        self.env[a], self.env[b] = t1, t2

    def stmt_helper(self) -> None:
        self.features.add("helper")
        a = self.pick(self.names("t"))
        shape = self.env[a][1]
        b = self.pick(self.names("t", shape))
        helper = self.make_helper(shape)
        name = self.fresh("t")
        self.emit(f"{name} = {helper}({a}, {b})")
        self.env[name] = ("t", shape, True)

    def make_helper(self, shape: tuple[int, ...]) -> str:
        existing = [h for h, s in self.helper_sigs if s == shape]
        if existing and self.rng.random() < 0.4:
            return self.pick(existing)
        saved = self.lines, self.env, self.indent
        name = f"helper{len(self.helper_sigs)}"
        self.lines, self.indent = [f"def {name}(a, b):"], 1
        self.env = {"a": ("t", shape, True), "b": ("t", shape, True)}
        callees = [h for h, s in self.helper_sigs if s == shape]
        for _ in range(self.rng.randint(1, 3)):
            r = self.rng.random()
            if r < 0.35 and callees:
                self.features.add("nested_helper")
                self.emit(f"a = {self.pick(callees)}(a, b) * 0.5")
            elif r < 0.5:
                self.emit(f"if {self.condition()}:")
                self.block(1)
            else:
                self.update()
        self.emit(f"return {self.pick(['a + b', 'a * b - a', 'torch.relu(a) - b'])}")
        self.helpers.append("\n".join(self.lines))
        self.helper_sigs.append((name, shape))
        self.lines, self.env, self.indent = saved
        return name

    def ret(self) -> None:
        tensors = self.names("t")
        chosen = tensors[-3:] + self.rng.sample(tensors, min(2, len(tensors)))
        others = self.names("i")[-2:] + self.names("l")[-1:] + self.names("d")[-1:]
        items = list(dict.fromkeys(chosen + others))
        if self.rng.random() < 0.3:
            body = ", ".join(f'"{n}": {n}' for n in items)
            self.emit(f"return {{{body}}}")
        else:
            self.emit(f"return ({', '.join(items)},)")


def generate(seed: int) -> Program:
    g = _Gen(seed)
    shapes = [g.rng.choice(ARG_SHAPES) for _ in range(g.rng.randint(1, 3))]
    if len(shapes) > 1 and g.rng.random() < 0.6:
        shapes[1] = shapes[0]
    params = [f"x{i}" for i in range(len(shapes))]
    for p, s in zip(params, shapes, strict=True):
        g.env[p] = ("t", s, True)
    int_args = [g.rng.randint(1, 4)] if g.rng.random() < 0.4 else []
    if int_args:
        params.append("n0")
        g.env["n0"] = ("i",)
    for _ in range(g.rng.randint(4, 12)):
        g.stmt()
    g.ret()
    header = f"def f({', '.join(params)}):"
    source = "\n\n\n".join([*g.helpers, "\n".join([header, *g.lines])]) + "\n"
    return Program(seed, source, shapes, int_args, g.features)
