"""Values drawn from the `random` module inside a graph (checklist item 109): graph inputs drawn
on every call, in eager's order, so the values and the module's state after the call equal
eager's with the same seed; one graph serves every draw (no recompiles); branching on a drawn
value breaks the graph (never a guard on a value the next call draws anew)."""

from __future__ import annotations

import random
from typing import Any

import ferrodyn
import torch


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return bool(torch.allclose(a, b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(map(same, a, b))
    return bool(a == b) and type(a) is type(b)


def check(fn: Any, *args: Any, calls: int = 4, graphs: int | None = 1) -> Any:
    """fn compiled equals fn eager for several seeds, and so does the next value `random`
    gives after the call."""
    counter = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=counter)
    for seed in range(calls):
        random.seed(seed)
        expected, after = fn(*args), random.random()
        random.seed(seed)
        got, got_after = compiled(*args), random.random()
        assert same(got, expected), (seed, got, expected)
        assert got_after == after, seed
    if graphs is not None:
        assert counter.frame_count == graphs
    return counter


def test_module_functions_are_graph_inputs_drawn_each_call() -> None:
    def f(x: torch.Tensor) -> Any:
        a = random.random()
        b = random.randint(1, 10)
        c = random.randrange(0, 100, 5)
        d = random.uniform(-1.0, 1.0)
        e = random.gauss(0.0, 1.0)
        return x * a + b - c + x * d + e, (a, b, c, d, e)

    check(f, torch.ones(3))
    explained = ferrodyn.explain(f)(torch.ones(3))
    assert explained.graph_break_count == 0


def test_values_only_drawn_when_the_graph_runs_in_eager_order() -> None:
    def f(x: torch.Tensor) -> Any:
        first = random.random()
        y = x * first
        second = random.random()
        return y - second, second

    check(f, torch.arange(3.0))


def test_unused_draw_still_advances_the_state() -> None:
    def f(x: torch.Tensor) -> Any:
        random.random()
        return x + 1

    check(f, torch.ones(2))


def test_branching_on_a_drawn_value_breaks() -> None:
    def f(x: torch.Tensor) -> Any:
        a = random.random()
        if a > 0.5:
            return x + 1, a
        return x - 1, a

    check(f, torch.ones(2), calls=6, graphs=None)
    explained = ferrodyn.explain(f)(torch.ones(2))
    assert explained.graph_break_count >= 1


def test_drawn_value_as_a_size_breaks_and_matches() -> None:
    def f(x: torch.Tensor) -> Any:
        n = random.randint(1, 4)
        return torch.ones(n) + x.sum()

    check(f, torch.ones(2), graphs=None)
    explained = ferrodyn.explain(f)(torch.ones(2))
    assert explained.graph_break_count >= 1, explained


def helper_that_breaks(x: torch.Tensor) -> Any:
    v = random.random()
    torch._dynamo.graph_break()
    return x * v


def test_draw_inside_a_call_that_breaks_is_not_drawn_twice() -> None:
    def f(x: torch.Tensor) -> Any:
        a = random.random()
        y = helper_that_breaks(x) + a
        return y, random.random()

    check(f, torch.ones(2), graphs=None)


def test_reseeding_in_the_function() -> None:
    def f(x: torch.Tensor) -> Any:
        a = random.random()
        random.seed(7)
        return x * a + random.random()

    check(f, torch.ones(2), graphs=None)


def test_seeded_generator_made_in_the_graph() -> None:
    def f(x: torch.Tensor) -> Any:
        r = random.Random(0)
        a = r.random()
        b = r.randint(0, 9)
        c = r.choice([10, 20, 30])
        return x + a + b + c, r

    counter = ferrodyn.testing.CompileCounter()
    g = ferrodyn.compile(f, backend=counter)
    for _ in range(2):
        out, gen = g(torch.ones(2))
        ref, ref_gen = f(torch.ones(2))
        assert torch.equal(out, ref)
        assert gen.getstate() == ref_gen.getstate()
        assert gen.random() == ref_gen.random()
    assert counter.frame_count == 1
    assert ferrodyn.explain(f)(torch.ones(2)).graph_break_count == 0


def test_generator_seed_getstate_setstate() -> None:
    def f(x: torch.Tensor) -> Any:
        r = random.Random(1)
        r.seed(3)
        st = r.getstate()
        a = r.random()
        r.setstate(st)
        b = r.random()
        return x * a + x * b, a == b

    check(f, torch.ones(2))
    assert ferrodyn.explain(f)(torch.ones(2)).graph_break_count == 0


class Holder:
    gen: Any = None


def test_generator_stored_and_alive_across_a_break() -> None:
    def f(x: torch.Tensor, h: Holder) -> Any:
        r = random.Random(5)
        a = r.random()
        h.gen = r
        torch._dynamo.graph_break()
        return x * a + r.random()

    h1, h2 = Holder(), Holder()
    out = ferrodyn.compile(f, backend="eager")(torch.ones(2), h1)
    ref = f(torch.ones(2), h2)
    assert torch.equal(out, ref)
    assert h1.gen.getstate() == h2.gen.getstate()


def test_unseeded_or_variable_seed_generators_break() -> None:
    def f(x: torch.Tensor, s: int) -> Any:
        r = random.Random(s * 7 + 1)
        return x * r.random()

    g = ferrodyn.compile(f, backend="eager")
    for s in range(3):
        assert torch.equal(g(torch.ones(2), s), f(torch.ones(2), s))


def test_choice_of_constant_numbers_is_a_drawn_input() -> None:
    def f(x: torch.Tensor) -> Any:
        a = random.choice([1, 2, 3])
        b = random.choice((0.5, 1.5))
        return x * a + b, a, b

    check(f, torch.ones(2), calls=5)
    assert ferrodyn.explain(f)(torch.ones(2)).graph_break_count == 0


def test_choice_of_other_values_breaks_and_matches() -> None:
    def f(x: torch.Tensor) -> Any:
        return x + 1, random.choice(["a", "b", "c"])

    check(f, torch.ones(2), calls=4, graphs=None)


def test_module_shuffle_sample_choices_break_once_at_the_call() -> None:
    # They draw several numbers in a loop in random.py; the graph breaks at the call (one
    # break each), the list is reordered or drawn from as in eager, and the state after the
    # call is eager's.
    def f(x: torch.Tensor, items: list[int]) -> Any:
        y = x + 1
        random.shuffle(items)
        picked = random.sample(items, 2)
        more = random.choices(items, k=3)
        return y * items[0], items, picked, more

    compiled = ferrodyn.compile(f, backend="eager")
    for seed in range(4):
        random.seed(seed)
        expected, after = f(torch.ones(2), [1, 2, 3, 4, 5, 6]), random.random()
        random.seed(seed)
        got, got_after = compiled(torch.ones(2), [1, 2, 3, 4, 5, 6]), random.random()
        assert same(got, expected), (seed, got, expected)
        assert got_after == after
    explained = ferrodyn.explain(f)(torch.ones(2), [1, 2, 3, 4, 5, 6])
    reasons = [r.reason for r in explained.break_reasons]
    assert reasons[:3] == [
        "random.shuffle() draws at run time (a sequence, not one number)",
        "random.sample() draws at run time (a sequence, not one number)",
        "random.choices() draws at run time (a sequence, not one number)",
    ]
    assert explained.graph_break_count == 3
