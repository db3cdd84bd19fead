"""Dynamic shapes under ferrodyn, each case checked against torch.compile in the same test.

Every compiled call must return eager's result (same container types: a ``torch.Size`` stays
a ``torch.Size``, a size stays an ``int``), and ferrodyn must compile as many graphs as
torch.compile does on the same function and the same sequence of calls, for
``dynamic=None`` (automatic dynamic), ``dynamic=True`` and ``dynamic=False``, with
``torch._dynamo.mark_dynamic`` / ``maybe_mark_dynamic`` / ``mark_static`` honoured.
Each test also states the expected number of graphs, so that it fails if both compilers
change together.

Known ferrodyn bugs are kept as ``xfail(strict=True)`` tests whose reason says what is
wrong. The comparison with torch.compile is made here directly, so the module is skipped
when the suite itself runs against torch.compile (``FERRODYN_TEST_REFERENCE=torch``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal

pytestmark = pytest.mark.ferrodyn_contract

Calls = Sequence[tuple[Any, ...]]
LogsOn = Callable[..., pytest.LogCaptureFixture]
xfail = pytest.mark.xfail


@pytest.fixture(autouse=True)
def _fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def logs_on(caplog: pytest.LogCaptureFixture) -> Iterator[LogsOn]:
    """`logs_on("recompiles")` selects artifacts and returns caplog, which sees them."""
    root = logging.getLogger("ferrodyn")
    root.addHandler(caplog.handler)

    def on(spec: str = "", **kw: bool | int) -> pytest.LogCaptureFixture:
        ferrodyn.set_logs(spec, **kw)
        caplog.clear()
        return caplog

    try:
        yield on
    finally:
        ferrodyn.set_logs()
        root.removeHandler(caplog.handler)


def rows(*sizes: int, cols: int = 6) -> list[tuple[torch.Tensor]]:
    """One call per size: a single (size, cols) input. `cols` differs from the sizes so that
    torch's duck sizing never ties a row count to the column count by coincidence."""
    return [(torch.randn(n, cols),) for n in sizes]


def compare(
    fn: Callable[..., Any],
    calls: Calls,
    frames: int,
    *,
    dynamic: bool | None = None,
    backend: str | None = None,
    at_most_torch: bool = False,
    **tol: Any,
) -> Any:
    """Call `fn` eagerly, under torch.compile and under ferrodyn on each argument tuple of
    `calls` in turn (the same tensors: marks set on them are seen by both compilers).
    Each result of ferrodyn (and of torch.compile) equals eager's; ferrodyn compiled
    `frames` graphs, as many as torch.compile (or, with `at_most_torch`, no more). Returns ferrodyn's counter."""
    tc: Any = torch._dynamo.testing.CompileCounter()
    fc: Any = ferrodyn.testing.CompileCounter()
    if backend is not None:
        tc = torch._dynamo.testing.CompileCounterWithBackend(backend)
        fc = ferrodyn.testing.CompileCounterWithBackend(backend)
    torch._dynamo.reset()
    by_torch = torch.compile(fn, backend=tc, dynamic=dynamic)
    by_ferro = ferrodyn.compile(fn, backend=fc, dynamic=dynamic)
    for i, args in enumerate(calls):
        expected = fn(*args)
        assert_tree_equal(by_torch(*args), expected, f"torch call {i}", **tol)
        assert_tree_equal(by_ferro(*args), expected, f"ferrodyn call {i}", **tol)
    if at_most_torch:
        assert fc.frame_count <= tc.frame_count, (fc.frame_count, tc.frame_count)
    else:
        assert fc.frame_count == tc.frame_count, (fc.frame_count, tc.frame_count)
    assert fc.frame_count == frames, fc.frame_count
    return fc


def symbolic_inputs(gm: torch.fx.GraphModule) -> list[list[int]]:
    """The symbolic dimensions of each tensor input of `gm` that has some."""
    values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
    dims = [
        [i for i, d in enumerate(v.shape) if not isinstance(d, int)]
        for v in values
        if isinstance(v, torch.Tensor)
    ]
    return [d for d in dims if d]


def _bug(reason: str) -> pytest.MarkDecorator:
    return xfail(strict=True, reason=reason)


# --- automatic dynamic, 0/1 specialisation, dynamic=True/False -----------------------------


def add_mul(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) * 2


def test_automatic_dynamic_two_graphs() -> None:
    c = compare(add_mul, rows(3, 4, 5, 7, 3, 4), frames=2)
    first, second = c.graphs
    assert symbolic_inputs(first) == []
    assert symbolic_inputs(second) == [[0]]


def test_automatic_dynamic_only_the_changed_dimension() -> None:
    calls = [(torch.randn(3, n),) for n in (4, 5, 7)] + [(torch.randn(4, 7),)]
    c = compare(add_mul, calls, frames=3)
    assert [symbolic_inputs(g) for g in c.graphs] == [[], [[1]], [[0, 1]]]


@pytest.mark.parametrize(
    ("sizes", "frames"),
    [((3, 4, 1, 0, 5), 4), ((1, 0, 3, 4, 5, 1, 0), 3), ((3, 4, 5, 0, 1, 2), 4)],
)
def test_sizes_zero_and_one_specialise(sizes: tuple[int, ...], frames: int) -> None:
    compare(add_mul, rows(*sizes), frames=frames)


@pytest.mark.parametrize(("sizes", "frames"), [((3, 4, 5, 7, 9), 1), ((3, 4, 1, 5, 0), 3)])
def test_dynamic_true(sizes: tuple[int, ...], frames: int) -> None:
    c = compare(add_mul, rows(*sizes, cols=8), frames=frames, dynamic=True)
    assert symbolic_inputs(c.graphs[0]) == [[0, 1]]


def test_dynamic_false_one_graph_per_size() -> None:
    compare(add_mul, rows(3, 4, 5, 7, 3, 5), frames=4, dynamic=False)


def branch(x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] > 4:
        return x + 1
    return x - 1


@pytest.mark.parametrize(("dynamic", "frames"), [(None, 3), (True, 2), (False, 6)])
def test_branch_on_size_recompiles_when_it_flips(dynamic: bool | None, frames: int) -> None:
    compare(branch, rows(3, 4, 5, 7, 2, 9, 4), frames=frames, dynamic=dynamic)


def eq_branch(x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] == 4:
        return x + 1
    return x - 1


@pytest.mark.parametrize(("dynamic", "frames"), [(None, 3), (True, 2)])
def test_equality_branch_on_size(dynamic: bool | None, frames: int) -> None:
    compare(eq_branch, rows(3, 4, 5, 7, 4), frames=frames, dynamic=dynamic)


def takes_int(x: torch.Tensor, n: int) -> torch.Tensor:
    return x * n + n


@pytest.mark.parametrize(
    ("ns", "dynamic", "frames"),
    [((2, 3, 4, 5), None, 2), ((2, 3, 1, 0), None, 2), ((2, 3, 4, 5), True, 1)],
)
def test_int_argument(ns: tuple[int, ...], dynamic: bool | None, frames: int) -> None:
    compare(takes_int, [(torch.randn(3), n) for n in ns], frames=frames, dynamic=dynamic)


# --- markers ----------------------------------------------------------------------------------


def marked(mark: Callable[[torch.Tensor, int], None], *sizes: int) -> list[tuple[torch.Tensor]]:
    calls = rows(*sizes)
    for (x,) in calls:
        mark(x, 0)
    return calls


@pytest.mark.parametrize(("dynamic", "frames"), [(None, 1), (False, 1), (True, 1)])
def test_mark_dynamic_first_call(dynamic: bool | None, frames: int) -> None:
    calls = marked(torch._dynamo.mark_dynamic, 3, 4, 5, 7)
    c = compare(add_mul, calls, frames=frames, dynamic=dynamic)
    assert symbolic_inputs(c.graphs[0]) == [[0, 1] if dynamic else [0]]


def test_mark_dynamic_still_specialises_zero_and_one() -> None:
    compare(add_mul, marked(torch._dynamo.mark_dynamic, 3, 4, 1, 0), frames=3)


@pytest.mark.parametrize(("dynamic", "frames"), [(None, 4), (True, 4)])
def test_mark_static(dynamic: bool | None, frames: int) -> None:
    compare(add_mul, marked(torch._dynamo.mark_static, 3, 4, 5, 7), frames=frames, dynamic=dynamic)


@pytest.mark.parametrize(
    ("dynamic", "frames"),
    [
        (None, 1),
        (False, 1),
    ],
)
def test_maybe_mark_dynamic(dynamic: bool | None, frames: int) -> None:
    calls = marked(torch._dynamo.maybe_mark_dynamic, 3, 4, 5, 7)
    compare(add_mul, calls, frames=frames, dynamic=dynamic)


# --- sizes as values ----------------------------------------------------------------------------


def size_methods(x: torch.Tensor) -> torch.Tensor:
    return x * x.size(0) + x.shape[-1] - x.numel() + x.dim()


def size_unpacked(x: torch.Tensor) -> torch.Tensor:
    a, b = x.size()
    return x.view(b, a) * a


def view_reshape_arange_zeros(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    n = x.shape[0]
    return (
        x.reshape(-1) + torch.arange(n * x.shape[1]),
        torch.zeros(n, 2) + n,
        x.view(n, 2, -1).sum(1),
        torch.arange(0, n * 2, 2) * 1.0,
    )


def slicing(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    return x[: n // 2] * 2, x[n // 2 :], x[-n // 2 :]


def float_sizes(x: torch.Tensor) -> torch.Tensor:
    return x * (x.shape[0] / 2) + x.shape[0] * 1.5 + x.shape[0] ** 2


def parity_branch(x: torch.Tensor) -> torch.Tensor:
    if x.numel() % 2 == 0:
        return x + 1
    return x - 1


def factories(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (
        torch.ones(x.shape) + x,
        x.new_zeros(x.shape[0], 2),
        torch.full((x.shape[0],), 3.0),
        x.new_ones(list(x.size())) * x,
        torch.empty_like(x).fill_(1) * x.shape[0],
        torch.tensor([x.shape[0], x.shape[1]]),
    )


def expanding(x: torch.Tensor) -> torch.Tensor:
    return x[:, :1].expand(x.shape[0], 4) + x.unsqueeze(0).expand(2, -1, -1).sum(0)[:, :4]


def chunks(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return x.chunk(2, 0)


def splits(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return torch.split(x, 2)


def mean_by_numel(x: torch.Tensor) -> torch.Tensor:
    return x.sum() / x.numel()


def tensor_of_size(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    return torch.tensor(x.shape[0]), x.shape[0] + 1


def size_returned(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    return x * 2, x.shape[0], x.size(0) * 3 + 1


def shape_returned(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size, torch.Size]:
    return x * 2, x.shape, x.size()


def shape_sliced(x: torch.Tensor) -> tuple[torch.Tensor, torch.Size, torch.Size]:
    return x + 1, x.shape[1:], x.shape[:1]


def shape_compared(x: torch.Tensor) -> tuple[torch.Tensor, bool, bool, bool]:
    return x + 1, x.shape[0] == 4, x.shape == (4, 6), x.shape[0] < 5


def with_len(x: torch.Tensor) -> torch.Tensor:
    return x * len(x)


def with_abs(x: torch.Tensor) -> torch.Tensor:
    return x * abs(x.shape[0] - 5)


def with_math(x: torch.Tensor) -> torch.Tensor:
    return x * math.floor(x.shape[0] / 2) + math.sqrt(x.shape[0])


def list_indexed(x: torch.Tensor) -> torch.Tensor:
    return x * [10, 20, 30, 40, 50, 60, 70, 80][x.shape[0]]


def formatted(x: torch.Tensor) -> tuple[torch.Tensor, str]:
    return x + 1, f"n={x.shape[0]}"


def unbound(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return x.unbind(0)


def range_listcomp(x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    return x + 1, [i * 2 for i in range(x.shape[0])]


def with_max_min(x: torch.Tensor) -> torch.Tensor:
    return x[: min(x.shape[0], 4)] * max(x.shape[0], 4)


def with_int(x: torch.Tensor) -> torch.Tensor:
    return x * int(x.shape[0]) + round(x.shape[0] / 3)


def case(fn: Callable[..., Any], auto: int, true: int, bug: str = "") -> Any:
    """A test_sizes_as_values case: graphs with dynamic=None and with dynamic=True."""
    return pytest.param(fn, auto, true, id=fn.__name__, marks=[_bug(bug)] if bug else [])


SIZE_CASES = [
    case(size_methods, 2, 1),
    case(size_unpacked, 2, 1),
    case(view_reshape_arange_zeros, 2, 1),
    case(slicing, 2, 2),
    case(float_sizes, 2, 1),
    case(parity_branch, 2, 1),
    case(factories, 2, 1),
    case(expanding, 2, 1),
    case(chunks, 2, 1),
    case(splits, 4, 3),
    case(mean_by_numel, 2, 1),
    case(size_returned, 2, 1),
    case(shape_returned, 2, 1),
    case(shape_sliced, 2, 1),
    case(shape_compared, 2, 1),
    case(tensor_of_size, 2, 1),
    case(with_len, 2, 1),
    case(with_abs, 2, 1),
    case(with_math, 2, 1),
    case(list_indexed, 4, 4),
    case(formatted, 4, 4),
    case(unbound, 4, 4),
    case(range_listcomp, 4, 4),
    case(with_max_min, 2, 1),
    case(with_int, 2, 1),
]


@pytest.mark.parametrize(("fn", "frames_auto", "frames_true"), SIZE_CASES)
def test_sizes_as_values(
    fn: Callable[[torch.Tensor], Any], frames_auto: int, frames_true: int
) -> None:
    compare(fn, rows(3, 4, 5, 7, 4), frames=frames_auto)
    ferrodyn.reset()
    compare(fn, rows(3, 4, 5, 7, 4), frames=frames_true, dynamic=True)


def test_size_output_is_an_int() -> None:
    compiled = ferrodyn.compile(size_returned, backend="eager", dynamic=True)
    for n in (3, 4, 5):
        _, a, b = compiled(torch.randn(n, 6))
        assert (type(a), a, type(b), b) == (int, n, int, 3 * n + 1)


def test_range_over_size_loop_specialises() -> None:
    def summed(x: torch.Tensor) -> torch.Tensor:
        s = torch.zeros(x.shape[1])
        for i in range(x.shape[0]):
            s = s + x[i] * i
        return s

    compare(summed, rows(3, 4, 5, 7, 4), frames=4)


def test_graph_break_keeps_symbolic_sizes() -> None:
    def broken(x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        n = x.shape[0]
        torch._dynamo.graph_break()
        return y[: n // 2] + n

    compare(broken, rows(3, 4, 5, 7, 4), frames=4)


# --- several inputs -----------------------------------------------------------------------------


def catted(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([x, y], 0) * 2, torch.cat([x, x], 1)


def test_cat_of_dynamic_tensors() -> None:
    calls = [(torch.randn(n, 6), torch.randn(n + 1, 6)) for n in (3, 4, 5, 7)]
    compare(catted, calls, frames=2)
    ferrodyn.reset()
    compare(catted, calls, frames=1, dynamic=True)


def added(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return x + y


def test_duck_sizing_two_inputs_sharing_a_size() -> None:
    same = [(torch.randn(n, 6), torch.randn(n, 6)) for n in (3, 4, 5, 7)]
    c = compare(added, same, frames=2)
    assert symbolic_inputs(c.graphs[1]) == [[0], [0]]
    ferrodyn.reset()
    # The sizes stop being equal: y broadcasts, which needs another graph.
    broadcast = [*same, (torch.randn(6, 6), torch.randn(1, 6))]
    compare(added, broadcast, frames=3)
    ferrodyn.reset()
    tied_then_not = [(torch.randn(a, 6), torch.randn(b, 6)) for a, b in ((3, 3), (4, 4), (4, 5))]
    compare(catted, tied_then_not, frames=2)
    ferrodyn.reset()
    # torch ties x's and y's first dims by duck sizing (a second graph when they differ);
    # ferrodyn keeps them apart: one graph, never more than torch.
    compare(catted, tied_then_not, frames=1, dynamic=True, at_most_torch=True)


# --- modules, strides, backends -----------------------------------------------------------


def test_linear_module_batch_sizes() -> None:
    lin = torch.nn.Linear(6, 4)
    c = compare(lin, rows(2, 3, 4, 5), frames=2)
    # Only the batch dimension of the input is symbolic: the parameters stay static.
    assert symbolic_inputs(c.graphs[1]) == [[0]]


def reduced(x: torch.Tensor) -> torch.Tensor:
    return (x @ x.t()).sum(0) + x.stride(0)


def test_non_contiguous_inputs_changing_size() -> None:
    transposed = [(torch.randn(6, n).t(),) for n in (3, 4, 5, 7)]
    compare(reduced, transposed, frames=2)
    ferrodyn.reset()
    strided = [(torch.randn(n, 6, 2)[:, :, 0],) for n in (3, 4, 5)]
    compare(reduced, strided, frames=2)
    ferrodyn.reset()
    # Contiguous then transposed inputs of the same sizes: the strides change, not the sizes.
    switched = [(torch.randn(n, 6),) for n in (3, 4, 5)] + [
        (torch.randn(6, n).t(),) for n in (3, 4, 5)
    ]
    compare(reduced, switched, frames=3)


def test_contiguity_of_changing_inputs() -> None:
    def contig(x: torch.Tensor) -> tuple[torch.Tensor, bool, tuple[int, ...]]:
        return x.contiguous() * 2, x.is_contiguous(), x.stride()

    calls = [(torch.randn(6, n).t(),) for n in (3, 4, 5)] + [(torch.randn(6, 1).t(),)]
    compare(contig, calls, frames=3)


def sin_plus_size(x: torch.Tensor) -> torch.Tensor:
    return (x * 2).sin() + x.shape[0]


@pytest.mark.inductor
def test_inductor_automatic_dynamic() -> None:
    compare(sin_plus_size, rows(3, 4, 5, 7), frames=2, backend="inductor")


def test_aot_eager_dynamic_true() -> None:
    compare(sin_plus_size, rows(3, 4, 5, 7), frames=1, backend="aot_eager", dynamic=True)
    compiled = ferrodyn.compile(slicing, backend="aot_eager", dynamic=True)
    for (x,) in rows(3, 4, 5, 7):
        assert_tree_equal(compiled(x), slicing(x))


# --- logs and reset ---------------------------------------------------------------------------


def _recompiles(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ferrodyn.recompiles"]


def test_recompiles_log_names_the_dynamic_dimensions(logs_on: LogsOn) -> None:
    caplog = logs_on("recompiles")
    compiled = ferrodyn.compile(takes_int, backend="eager")
    compiled(torch.randn(3, 4), 2)
    assert _recompiles(caplog) == []
    compiled(torch.randn(3, 6), 2)
    msgs = _recompiles(caplog)
    assert "x.shape: [3, 4] -> [3, 6]" in msgs[0], msgs
    assert "automatic dynamic shapes: x dimension(s) [1] are now dynamic" in msgs[-1], msgs
    caplog.clear()
    compiled(torch.randn(3, 7), 2)
    assert _recompiles(caplog) == []
    compiled(torch.randn(3, 7), 3)
    msgs = _recompiles(caplog)
    assert any("automatic dynamic shapes: int n is now dynamic (2 -> 3)" in m for m in msgs), msgs


def test_recompiles_log_says_it_once(logs_on: LogsOn) -> None:
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * 2 + y.sum()

    caplog = logs_on("recompiles")
    compiled = ferrodyn.compile(f, backend="eager")
    for x_cols, y_rows in ((4, 2), (6, 2), (7, 3)):
        compiled(torch.randn(3, x_cols), torch.randn(y_rows, 5))
    msgs = [m for m in _recompiles(caplog) if m.startswith("automatic dynamic shapes")]
    assert msgs == [
        "automatic dynamic shapes: x dimension(s) [1] are now dynamic",
        "automatic dynamic shapes: y dimension(s) [0] are now dynamic",
    ]


def test_reset_forgets_automatic_dynamic() -> None:
    tc = torch._dynamo.testing.CompileCounter()
    fc = ferrodyn.testing.CompileCounter()
    by_torch = torch.compile(sin_plus_size, backend=tc)
    by_ferro = ferrodyn.compile(sin_plus_size, backend=fc)
    counts = []
    for round_ in range(3):
        if round_:
            torch._dynamo.reset()
            ferrodyn.reset()
        for (x,) in rows(3, 4, 5):
            expected = sin_plus_size(x)
            assert_tree_equal(by_torch(x), expected)
            assert_tree_equal(by_ferro(x), expected)
            counts.append((fc.frame_count, tc.frame_count))
    # After a reset the first call is static again, and the next size makes it dynamic.
    assert counts == [(n, n) for n in (1, 2, 2, 3, 4, 4, 5, 6, 6)]


# --- transformers ---------------------------------------------------------------------------


def test_bert_batch_and_sequence_lengths() -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=99,
    )
    model = transformers.BertModel(config).eval()
    shapes = [(b, s) for b in (1, 2, 3, 4) for s in (5, 7, 9)]
    ids = [torch.randint(0, 99, shape) for shape in shapes]

    def run(call: Callable[..., Any]) -> list[torch.Tensor]:
        with torch.no_grad():
            return [call(input_ids=i).last_hidden_state for i in ids]

    expected = run(model)
    fc = ferrodyn.testing.CompileCounter()
    got = run(ferrodyn.compile(model, backend=fc))
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    tc = torch._dynamo.testing.CompileCounter()
    run(torch.compile(model, backend=tc))
    assert 1 <= fc.frame_count <= tc.frame_count, (fc.frame_count, tc.frame_count)


def test_gpt2_greedy_generate() -> None:
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    config = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=99)
    model = transformers.GPT2LMHeadModel(config).eval()
    ids = torch.randint(1, 99, (1, 5))
    forward = model.forward

    def generate() -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = model.generate(
                ids, max_new_tokens=8, do_sample=False, pad_token_id=0
            )
        return out

    expected = generate()
    fc = ferrodyn.testing.CompileCounter()
    model.forward = ferrodyn.compile(forward, backend=fc)
    assert torch.equal(generate(), expected)
    tc = torch._dynamo.testing.CompileCounter()
    model.forward = torch.compile(forward, backend=tc)
    assert torch.equal(generate(), expected)
    assert 1 <= fc.frame_count <= tc.frame_count, (fc.frame_count, tc.frame_count)
