"""Checklist group A (classes and objects), items 42-52; see test_checklist_classes.py.

Each scenario runs eagerly, with ferrodyn and with torch.compile (``check``): ferrodyn's
results and state must equal eager's, its graph and break counts torch.compile's.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, Self

import ferrodyn
import pytest
import torch
from test_checklist_classes import check, outcome

# compares ferrodyn with torch.compile itself: nothing to check against the reference run
pytestmark = pytest.mark.ferrodyn_contract

# -- 42. torch.device / Size / finfo / iinfo with constant args fold --------------------------


def test_item_42_constant_folded_torch_classes() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            dev = torch.device("cuda", 0)
            size = torch.Size([2, 3])
            eps = torch.finfo(torch.float32).eps
            top = torch.iinfo(torch.int8).max
            return x * eps + top + size.numel(), dev.type, dev.index, size

        return c(f)(torch.ones(2))

    check(scenario, graphs=1, ops=True)


# -- 43. torch.Tensor(...) and legacy typed constructors are graph ops ------------------------


def test_item_43_legacy_tensor_constructors() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            a = torch.Tensor([1.0, 2.0])
            b = torch.LongTensor([x[0], x[1]])
            return a + x, b, b.dtype

        return c(f)(torch.tensor([3, 4]))

    check(scenario, graphs=1)


# -- 44. torch.cuda.Stream / torch.Event created in the trace -------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_item_44_cuda_stream_in_graph() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            s = torch.cuda.Stream()
            e = torch.Event()
            return x + 1, type(s).__name__, type(e).__name__

        return c(f)(torch.ones(2, device="cuda"))

    check(scenario, graphs=1)


# -- 45. CrossEntropyLoss(**cfg)(inp, tgt) is one F.cross_entropy node ----------------------


def test_item_45_cross_entropy_loss_module() -> None:
    cfg = {"label_smoothing": 0.1, "reduction": "sum"}

    def scenario(c: Any) -> Any:
        def f(inp: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
            return torch.nn.CrossEntropyLoss(**cfg)(inp, tgt)

        return c(f)(
            torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), torch.arange(4) % 3
        )

    fd, _ = check(scenario, graphs=1, ops=True)
    targets = [n.target for n in fd.graphs[0].graph.nodes if n.op == "call_function"]
    assert targets == [torch.nn.functional.cross_entropy]


def test_item_45_cross_entropy_loss_escaping_is_a_module() -> None:
    def f(inp: torch.Tensor, tgt: torch.Tensor) -> Any:
        loss = torch.nn.CrossEntropyLoss(reduction="sum")
        return loss(inp, tgt), loss

    inp, tgt = torch.randn(4, 3), torch.arange(4) % 3
    got, mod = ferrodyn.compile(f, backend="eager")(inp, tgt)
    torch.testing.assert_close(got, f(inp, tgt)[0])
    assert isinstance(mod, torch.nn.CrossEntropyLoss)
    assert mod.reduction == "sum"


# -- 46. user context-manager classes in the trace; forbidden ones break --------------------


class Scope:
    def __init__(self, log: list, tag: str) -> None:
        self.log = log
        self.tag = tag

    def __enter__(self) -> Self:
        self.log.append(("enter", self.tag))
        return self

    def __exit__(self, *exc: object) -> bool:
        self.log.append(("exit", self.tag))
        return False


def test_item_46_user_context_manager() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, log: list) -> Any:
            with Scope(log, "a") as s:
                y = x * 2
            return y + len(s.tag)

        log: list = []
        return c(f)(torch.ones(2), log), log

    check(scenario, graphs=1)


def _suppress(x: torch.Tensor) -> Any:
    y = x.sin()
    with contextlib.suppress(KeyError):
        y = y * 2
        _ = {}["missing"]
    return y + 1


def _exit_stack(x: torch.Tensor) -> Any:
    y = x.sin()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: None)
        y = y * 2
    return y + 1


def _redirect(x: torch.Tensor, buf: io.StringIO) -> Any:
    y = x.sin()
    with contextlib.redirect_stdout(buf):
        y = y * 2
    return y + 1


def _pytest_raises(x: torch.Tensor) -> Any:
    y = x.sin()
    with pytest.raises(ZeroDivisionError):
        y = y * 2
        _ = 1 / 0
    return y + 1


@pytest.mark.parametrize(
    ("fn", "args", "graphs"),
    [
        # torch.compile (this version) traces suppress / ExitStack without a break, unlike
        # the item; ferrodyn does the same (same graphs, no break, eager's results)
        (_suppress, (), None),
        (_exit_stack, (), None),
        # ferrodyn runs the frame eagerly (0 graphs); torch.compile splits it (2 graphs)
        (_redirect, (io.StringIO(),), 0),
        # ferrodyn compiles the part before `pytest.raises(...)` (1 graph: pytest's own code
        # is never traced, and the `with` over its checker runs the rest of the frame
        # eagerly); torch.compile runs the whole frame eagerly (0 graphs)
        (_pytest_raises, (), 1),
    ],
    ids=["suppress", "ExitStack", "redirect_stdout", "pytest.raises"],
)
def test_item_46_forbidden_context_managers(fn: Any, args: tuple, graphs: int | None) -> None:
    def scenario(c: Any) -> Any:
        return outcome(c(fn), torch.ones(2), *args)

    fd, _ = check(scenario, graphs=graphs, torch_differs=graphs is not None)
    if graphs is not None:
        assert fd.breaks, "the item: a forbidden context manager is a graph break"


# -- 47. @contextlib.contextmanager traced as a generator; no yield breaks ------------------


@contextlib.contextmanager
def scaled(log: list) -> Any:
    log.append("in")
    try:
        yield 3
    finally:
        log.append("out")


@contextlib.contextmanager
def no_yield() -> Any:
    if False:
        yield


def test_item_47_contextmanager_traced() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, log: list) -> Any:
            with scaled(log) as k:
                y = x * k
            return y + 1

        log: list = []
        return c(f)(torch.ones(2), log), log

    check(scenario, graphs=1)


def test_item_47_contextmanager_without_yield() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            y = x.sin()
            try:
                with no_yield():
                    y = y + 100
            except RuntimeError as e:
                return y, str(e)
            return y, ""

        return c(f)(torch.ones(2))

    check(scenario)


# -- 48. nullcontext / catch_warnings / torch.cuda.device(const) in the trace ---------------


def test_item_48_nullcontext_and_cuda_device() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            with contextlib.nullcontext(5) as v:
                y = x + v
            with torch.cuda.device(-1):
                y = y - 1
            return y

        return c(f)(torch.ones(2))

    check(scenario, graphs=1)


def test_item_48_catch_warnings() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            with warnings.catch_warnings():
                y = x * 2
            return y + 1

        return c(f)(torch.ones(2))

    check(scenario, graphs=1)


# -- 49. pytree constant classes are compile-time constants under an equality guard ---------


class Knob:
    def __init__(self, k: int) -> None:
        self.k = k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Knob) and other.k == self.k

    def __hash__(self) -> int:
        return hash(self.k)


torch.utils._pytree.register_constant(Knob)


def test_item_49_pytree_constant_class() -> None:
    def scenario(c: Any) -> Any:
        g, x = c(lambda x, knob: x * knob.k), torch.ones(2)
        return g(x, Knob(2)), g(x, Knob(2)), g(x, Knob(3))

    check(scenario, graphs=2)


# -- 50. tensor subclasses dispatch torch calls through __torch_function__ ------------------


class Tagged(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func is torch.Tensor.add:
            out = out * 10
        return out


def test_item_50_torch_function_subclass() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor) -> Any:
            y = x.add(1)
            return y, type(y).__name__, torch.mul(y, 2)

        out = c(f)(torch.ones(2).as_subclass(Tagged))
        return [type(o).__name__ for o in out], out[0].as_subclass(torch.Tensor), out[1]

    # torch.compile returns plain tensors and sees type(y) as torch.Tensor inside the graph
    # (eager: Tagged); its graph and break counts are compared directly.
    fd, th = check(scenario, graphs=1, breaks=0, torch_differs=True)
    assert fd.frame_count == th.frame_count


# -- 51. a hook handle removed in the same trace; an escaping removed handle ---------------


def test_item_51_hook_handle_removed_in_trace() -> None:
    def scenario(c: Any) -> Any:
        def f(x: torch.Tensor, mod: torch.nn.Module) -> Any:
            h = mod.register_forward_hook(lambda m, i, o: o * 100)
            h.remove()
            return mod(x), h

        mod = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(mod.weight, 0.5)
        torch.nn.init.constant_(mod.bias, 0.25)
        out, h = c(f)(torch.ones(2), mod)
        h.remove()
        return out, len(mod._forward_hooks), type(h).__name__

    # torch.compile runs this frame eagerly (0 graphs)
    check(scenario, graphs=1, breaks=0, torch_differs=True)


# -- 52. torchrec KeyedJaggedTensor lengths/offsets as unbacked sizes -----------------------


def test_item_52_keyed_jagged_tensor() -> None:
    torchrec = pytest.importorskip("torchrec")
    kjt_cls = torchrec.sparse.jagged_tensor.KeyedJaggedTensor

    def scenario(c: Any) -> Any:
        def f(kjt: Any) -> Any:
            return kjt.values() * 2, kjt.length_per_key()

        kjt = kjt_cls.from_lengths_sync(["a", "b"], torch.arange(4.0), torch.tensor([1, 1, 2, 0]))
        return c(f)(kjt)

    check(scenario)
