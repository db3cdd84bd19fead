"""Checklist items 130-139 (groups K-M: guards, side effects and reconstruction, graph-break
classification), one small program per item; see test_checklist_misc.py for the method:
each program runs eagerly, under ferrodyn and under torch.compile on equal inputs, and
ferrodyn must match eager and make as many graphs as torch.compile.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
import weakref
from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
from test_checklist_misc import compare, same_graphs, t3

pytestmark = pytest.mark.ferrodyn_contract

outmod = types.ModuleType("ferrodyn_checklist_out")
G_LOG: list[Any] = []


# --------------------------------------------------------------------------- K. guards


class Cfg:
    mode = "class"

    def __init__(self) -> None:
        self.used = 2
        self.unused = "a"

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.used


def _two_calls(fn: Callable[..., Any], objs: dict[str, Any], mutate: Callable[[], None]) -> Any:
    """Two calls on the same objects (made by `objs` setup); `mutate` runs before call 1."""
    return compare(
        fn,
        lambda i: (*t3(), *objs.values()),
        calls=2,
        before=lambda i: mutate() if i == 1 else None,
    )


def test_item_130_unused_values_are_not_guarded() -> None:
    cfg, d = Cfg(), {"k": 1.0, "other": [1, 2]}

    def fn(x: torch.Tensor, cfg: Cfg, d: dict[str, Any], unused: list[int]) -> torch.Tensor:
        return x * cfg.used + d["k"]

    extra = [1, 2, 3]

    def setup() -> None:
        cfg.used, cfg.unused, d["other"], extra[:] = 2, "a", [1, 2], [1, 2, 3]

    def before(i: int) -> None:
        if i == 1:
            cfg.unused = "b"
            extra.append(4)
        if i == 2:
            cfg.used = 5

    fd, tc = compare(fn, lambda i: (*t3(), cfg, d, extra), calls=3, setup=setup, before=before)
    same_graphs(fd, tc)
    assert fd.frame_count == 2


def test_item_130_unused_dict_entry_not_guarded() -> None:
    d = {"k": 1.0, "other": [1, 2]}

    def fn(x: torch.Tensor, d: dict[str, Any]) -> torch.Tensor:
        return x + d["k"]

    fd, tc = compare(
        fn,
        lambda i: (*t3(), d),
        calls=2,
        setup=lambda: d.__setitem__("other", [1, 2]),
        before=lambda i: d["other"].append(3) if i else None,
    )
    same_graphs(fd, tc)


def _make_adder(k: float) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda v: v + k


class WithBias:
    pass


GUARD_KINDS: dict[str, tuple[Callable[..., Any], Callable[[int], tuple[Any, ...]]]] = {
    "identity": (lambda x, f: f(x), lambda i: (*t3(), [torch.relu, torch.sigmoid][i])),
    "constant": (
        lambda x, op: x + 1 if op == "add" else x * 2,
        lambda i: (*t3(), ["add", "mul"][i]),
    ),
    "type": (lambda x, s: (x * len(s), type(s).__name__), lambda i: (*t3(), [[1], (1,)][i])),
    "hasattr": (
        lambda x, o: x + (o.bias if hasattr(o, "bias") else 0),
        lambda i: (*t3(), [WithBias(), types.SimpleNamespace(bias=3)][i]),
    ),
    "length": (lambda x, ts: sum(ts) + x, lambda i: (*t3(), [x * 2 for x in t3() * (i + 2)])),
    "closure": (lambda x, f: f(x), lambda i: (*t3(), _make_adder(float(i + 1)))),
    "contains": (
        lambda x, d: x * d["s"] if "s" in d else x + 1,
        lambda i: (*t3(), [{"t": 1}, {"s": 3}][i]),
    ),
}


@pytest.mark.parametrize("kind", list(GUARD_KINDS))
def test_item_131_guard_kinds_recompile(kind: str) -> None:
    fn, make = GUARD_KINDS[kind]
    fd, tc = compare(fn, make, calls=2)
    same_graphs(fd, tc)
    assert fd.frame_count == 2


def test_item_131_builtin_identity_guard() -> None:
    def fn(x: torch.Tensor) -> Any:
        return x + abs(-2)

    def before(i: int) -> None:
        if i == 1:
            globals()["abs"] = lambda v: v * 10

    # torch.compile keeps using the builtin after the module global shadows it (stale).
    try:
        fd, _ = compare(
            fn,
            t3,
            calls=2,
            before=before,
            setup=lambda: globals().pop("abs", 0),
            torch_like_eager=False,
        )
    finally:
        globals().pop("abs", None)
    assert fd.frame_count == 2


def test_item_131_not_in_instance_dict_guard() -> None:
    obj = Cfg()

    def fn(x: torch.Tensor, o: Cfg) -> Any:
        return x + 1 if o.mode == "class" else x - 1

    def setup() -> None:
        obj.__dict__.pop("mode", None)

    fd, tc = compare(
        fn,
        lambda i: (*t3(), obj),
        calls=2,
        setup=setup,
        before=lambda i: setattr(obj, "mode", "inst") if i == 1 else None,
    )
    same_graphs(fd, tc)


def _helper_defaults(v: torch.Tensor, k: float = 2.0) -> torch.Tensor:
    return v * k


def _helper_kwdefaults(v: torch.Tensor, *, k: float = 2.0) -> torch.Tensor:
    return v + k


@dataclasses.dataclass
class Pair:
    a: float
    b: float


class Sub(Cfg):
    pass


def test_item_132_guard_sources_compose() -> None:
    cfg = Cfg()
    nested = {"inner": [1.0, 2.0]}
    pair = Pair(1.0, 2.0)
    ref = weakref.ref(cfg)
    sub = Sub()
    cell_value = [3.0]
    captured = 3.0

    def read_cell() -> float:
        return captured

    def fn(x: torch.Tensor, cfg: Cfg, ref: Any, sub: Sub, pair: Pair) -> Any:
        y = x * nested["inner"][1] + ref().used + (1 if sub.mode == "class" else 2)
        y = _helper_defaults(y) + _helper_kwdefaults(y)
        for f in dataclasses.fields(pair):
            y = y + getattr(pair, f.name)
        return y + read_cell()

    mutations = [
        lambda: nested["inner"].__setitem__(1, 7.0),
        lambda: setattr(cfg, "used", 9),
        lambda: setattr(Cfg, "mode", "changed"),
        lambda: setattr(_helper_defaults, "__defaults__", (4.0,)),
        lambda: _helper_kwdefaults.__kwdefaults__.__setitem__("k", 5.0),
        lambda: setattr(pair, "b", 6.0),
        lambda: read_cell.__closure__[0].__setattr__("cell_contents", 8.0),
    ]
    del cell_value

    def setup() -> None:
        nested["inner"][1] = 2.0
        cfg.used = 2
        Cfg.mode = "class"
        _helper_defaults.__defaults__ = (2.0,)
        _helper_kwdefaults.__kwdefaults__["k"] = 2.0
        pair.b = 2.0
        read_cell.__closure__[0].cell_contents = 3.0

    def before(i: int) -> None:
        if i:
            mutations[i - 1]()

    try:
        fd, tc = compare(
            fn,
            lambda i: (*t3(), cfg, ref, sub, pair),
            calls=len(mutations) + 1,
            setup=setup,
            before=before,
        )
    finally:
        setup()
    same_graphs(fd, tc)
    assert fd.frame_count == len(mutations) + 1


def test_item_132_type_of_x_attribute_guard() -> None:
    def fn(x: torch.Tensor, o: Cfg) -> torch.Tensor:
        return x + (1 if type(o).mode == "class" else 2)

    try:
        fd, tc = compare(
            fn,
            lambda i: (*t3(), Sub()),
            calls=2,
            setup=lambda: setattr(Cfg, "mode", "class"),
            before=lambda i: setattr(Cfg, "mode", "changed") if i else None,
        )
    finally:
        Cfg.mode = "class"
    same_graphs(fd, tc)


def test_item_133_method_guard_shared_by_instances() -> None:
    objs = [Cfg(), Cfg(), Cfg()]
    original = Cfg.step

    def fn(x: torch.Tensor, o: Cfg) -> torch.Tensor:
        return o.step(x) + 1

    def before(i: int) -> None:
        if i == 2:
            Cfg.step = lambda self, x: x - self.used

    try:
        fd, _ = compare(
            fn,
            lambda i: (*t3(), objs[i]),
            calls=3,
            setup=lambda: setattr(Cfg, "step", original),
            before=before,
            torch_like_eager=False,  # torch.compile keeps calling the replaced method
        )
    finally:
        Cfg.step = original
    assert fd.frame_count == 2


# --------------------------------------------------------------------------- L. side effects


def test_item_134_replayed_mutations_keep_program_order() -> None:
    box = WithBias()

    def make_bump() -> Callable[[torch.Tensor], torch.Tensor]:
        count = 0

        def bump(x: torch.Tensor) -> torch.Tensor:
            nonlocal count
            box.z = 1
            box.a = 2
            del box.old
            box.old = 3
            count += 1
            G_LOG.append(("count", count))
            outmod.zz = 1
            outmod.aa = 2
            box.count = count
            return x + count

        return bump

    fns = {"bump": make_bump()}

    def setup() -> None:
        box.__dict__.clear()
        box.old = 0
        G_LOG.clear()
        fns["bump"] = make_bump()
        for k in ("zz", "aa"):
            outmod.__dict__.pop(k, None)

    def state() -> Any:
        order = [k for k in outmod.__dict__ if k in ("zz", "aa")]
        return list(vars(box).items()), list(G_LOG), order

    def fn(x: torch.Tensor) -> torch.Tensor:
        return fns["bump"](x)

    # torch.compile replays `del box.old; box.old = 3` as a plain store, so "old" keeps its
    # first position in vars(box); eager (and ferrodyn) move it to the end.
    fd, tc = compare(fn, t3, calls=2, setup=setup, state=state, torch_like_eager=False)
    same_graphs(fd, tc)


def test_item_135_no_partial_mutation_leaks_at_graph_break() -> None:
    box, log = WithBias(), []

    def fn(x: torch.Tensor, box: WithBias, log: list[Any]) -> torch.Tensor:
        box.count += 1
        log.append(len(log))
        y = x * box.count
        torch._dynamo.graph_break()
        box.count += 10
        log.append(len(log))
        if y.sum() > 0:  # data-dependent branch: another break
            box.flag = True
        return y + box.count

    def setup() -> None:
        box.__dict__.clear()
        box.count = 0
        log.clear()

    fd, tc = compare(
        fn, lambda i: (*t3(), box, log), calls=2, setup=setup, state=lambda: (vars(box), log)
    )
    same_graphs(fd, tc)


def test_item_136_identity_of_new_objects() -> None:
    def fn(x: torch.Tensor) -> Any:
        a = [x]
        b = a
        c = [x]
        d = {"a": a, "also": a}
        obj = WithBias()
        return a is b, a is c, d, (obj, obj), x + 1

    def post(o: Any) -> Any:
        return o[0], o[1], o[2]["a"] is o[2]["also"], o[3][0] is o[3][1], o[4]

    fd, tc = compare(fn, t3, post=post)
    same_graphs(fd, tc)


class Base:
    def who(self) -> str:
        return "base"


class Child(Base):
    def sup(self) -> Any:
        return super()


@dataclasses.dataclass(frozen=True)
class FrozenPt:
    x: Any
    y: int


def test_item_137_reconstruct_objects_and_callables() -> None:
    def fn(x: torch.Tensor) -> Any:
        k = 3

        def inner(v: torch.Tensor) -> torch.Tensor:
            return v * k

        return (
            ValueError("bad", 3),
            inner,
            functools.partial(torch.add, alpha=2),
            "{}-{:.1f}".format("a", 2.5),
            typing.List[int],  # noqa: UP006 - the typing alias is the point
            FrozenPt(x + 1, 2),
            Cfg(),
            x * 2,
        )

    def post(o: Any) -> Any:
        exc, inner, part, text, alias, frozen, cfg, y = o
        one = torch.ones(2)
        return (exc, inner(one), part(one, one), text, repr(alias), frozen, vars(cfg), y)

    fd, tc = compare(fn, t3, post=post)
    same_graphs(fd, tc)


def test_item_137_reconstruct_super_object() -> None:
    def fn(x: torch.Tensor) -> Any:
        return Child().sup(), x * 2

    fd, tc = compare(fn, t3, post=lambda o: (type(o[0]).__name__, o[0].who(), o[1]))
    if sys.version_info >= (3, 12) and tc.frame_count == 0:
        # torch.compile on 3.12 fails on a bare `return super()` (its super() is called
        # without arguments there) and runs the frame eagerly: ferrodyn keeps its graph.
        assert fd.frame_count == 1
    else:
        same_graphs(fd, tc)


def test_item_137_reconstruct_weakref_hook_handle_and_decorated() -> None:
    target, mod = Cfg(), torch.nn.Linear(3, 3)

    def fn(x: torch.Tensor, target: Cfg, mod: torch.nn.Module) -> Any:
        r = weakref.ref(target)
        h = mod.register_forward_pre_hook(lambda m, a: None)
        f = torch.no_grad()(lambda v: v * 2)
        return r, h, f, x + 1

    def post(o: Any) -> Any:
        r, h, f, y = o
        alive = r() is target
        hooks = len(mod._forward_pre_hooks)
        h.remove()
        out = f(torch.ones(2, requires_grad=True))
        return alive, hooks, len(mod._forward_pre_hooks), out.requires_grad, y

    fd, tc = compare(fn, lambda i: (*t3(), target, mod), post=post)
    same_graphs(fd, tc)


# --------------------------------------------------------------------------- M. graph breaks


def _breaking(x: torch.Tensor) -> torch.Tensor:
    y = x + 1
    torch._dynamo.graph_break()
    return y * 2


def test_item_138_graph_breaks_are_reported_with_location() -> None:
    torch._dynamo.reset()
    theirs = torch._dynamo.explain(_breaking)(torch.ones(2))
    ours = ferrodyn.explain(_breaking)(torch.ones(2))
    torch._dynamo.reset()
    assert ours.graph_break_count == theirs.graph_break_count
    assert ours.graph_count == theirs.graph_count
    for br in ours.break_reasons:
        assert br.reason and br.file == __file__ and br.line > 0


def test_item_138_graph_break_has_stable_type_tag() -> None:
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported) as theirs:
        torch.compile(_breaking, backend="eager", fullgraph=True)(torch.ones(2))
    torch._dynamo.reset()
    assert theirs.value.gb_type
    with pytest.raises(ferrodyn.exc.Unsupported) as ours:
        ferrodyn.compile(_breaking, backend="eager", fullgraph=True)(torch.ones(2))
    tagged = [a for a in ("gb_type", "type_tag", "category") if getattr(ours.value, a, None)]
    br = ferrodyn.explain(_breaking)(torch.ones(2)).break_reasons[0]
    tagged += [a for a in ("gb_type", "type_tag", "category", "hints") if hasattr(br, a)]
    assert tagged


def test_item_139_observed_exception_is_not_a_graph_break() -> None:
    def fn(x: torch.Tensor, key: str) -> Any:
        d = {"a": x}
        try:
            y = d[key]
        except KeyError as e:
            y = x * 0 - 1
            msg = e.args[0]
        else:
            msg = ""
        if key == "raise":
            raise ValueError(f"bad key {key}")
        return y + 1, msg

    fd, tc = compare(fn, lambda i: (*t3(), ["a", "b", "raise"][i]), calls=3)
    same_graphs(fd, tc)


def test_item_139_graph_break_skip_frame_and_hard_error_stay_distinct() -> None:
    def gen_break(x: torch.Tensor) -> Any:
        def gen() -> Any:
            torch._dynamo.graph_break()
            yield x

        return [v + 1 for v in gen()]

    def bad_patch(x: torch.Tensor) -> torch.Tensor:
        with torch._dynamo.config.patch(no_such_setting_xyz=1):
            return x + 1

    fd, tc = compare(_breaking, t3)  # graph break: split, both parts compiled
    same_graphs(fd, tc)
    assert fd.frame_count == 2
    fd, tc = compare(gen_break, t3)  # skip-frame: whole frame eager
    same_graphs(fd, tc)
    fd, tc = compare(bad_patch, t3)  # bad config-patch: a user-visible error, as eager
    with pytest.raises(AttributeError):
        ferrodyn.config.patch(no_such_setting_xyz=1)
