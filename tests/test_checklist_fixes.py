"""Checklist behaviours that gave a result or side effect different from eager (found by
probing items 1-129 of the acceptance checklist against eager and torch.compile): each test
compares ferrodyn with eager on the same program."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch
from _helpers import assert_tree_equal


def _both(fn: Any, *args: Any) -> tuple[Any, Any]:
    expected = fn(*args)
    got = ferrodyn.compile(fn, backend="eager")(*args)
    return got, expected


# -- item 17: writes through obj.__dict__ are seen by later attribute reads ----------------


class Plain:
    pass


def test_write_through_instance_dict_is_seen_by_attribute_read() -> None:
    a, b = Plain(), Plain()
    a.v = b.v = 1.0

    def make(obj: Plain) -> Any:
        def f(x: torch.Tensor) -> torch.Tensor:
            obj.__dict__["v"] = 5.0
            return x + obj.v

        return f

    x = torch.ones(2)
    expected = make(a)(x)
    got = ferrodyn.compile(make(b), backend="eager")(x)
    assert_tree_equal(got, expected)
    assert b.v == a.v == 5.0


def test_delete_through_instance_dict_then_read_raises_like_eager() -> None:
    a, b = Plain(), Plain()
    a.v = b.v = 1.0

    def make(obj: Plain) -> Any:
        def f(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
            obj.__dict__.pop("v")
            try:
                return x + obj.v, True
            except AttributeError:
                return x - 100, hasattr(obj, "v")

        return f

    x = torch.ones(2)
    expected = make(a)(x)
    got = ferrodyn.compile(make(b), backend="eager")(x)
    assert_tree_equal(got, expected)
    assert "v" not in b.__dict__


# -- item 46: a locally defined context manager's __enter__/__exit__ side effects ----------


def test_local_context_manager_closure_side_effects() -> None:
    def make() -> tuple[Any, list[str]]:
        log: list[str] = []

        class CM:
            def __enter__(self) -> None:
                log.append("enter")

            def __exit__(self, *exc: object) -> None:
                log.append("exit")

        def fn(x: torch.Tensor) -> torch.Tensor:
            with CM():
                x = x * 2
            return x

        return fn, log

    fn_e, log_e = make()
    fn_c, log_c = make()
    x = torch.ones(2)
    expected = fn_e(x)
    g = ferrodyn.compile(fn_c, backend="eager")
    assert_tree_equal(g(x), expected)
    assert log_c == log_e == ["enter", "exit"]
    assert_tree_equal(g(x), expected)
    assert log_c == ["enter", "exit"] * 2


# -- item 9: a user __getattribute__ runs exactly as often as in eager ----------------------


def test_user_getattribute_is_not_called_by_the_tracer() -> None:
    log: list[str] = []

    class C:
        def __init__(self) -> None:
            self.a = 2.0

        def __getattribute__(self, name: str) -> Any:
            log.append(name)
            if name == "alias":
                name = "a"
            return object.__getattribute__(self, name)

    obj = C()

    def fn(x: torch.Tensor) -> torch.Tensor:
        return x * obj.alias + obj.a

    x = torch.ones(2)
    log.clear()
    expected = fn(x)
    eager_log = list(log)
    g = ferrodyn.compile(fn, backend="eager")
    for _ in range(2):
        log.clear()
        assert_tree_equal(g(x), expected)
        assert log == eager_log


# -- item 20: a callable object whose __call__ is a staticmethod -------------------------


class StaticCall:
    @staticmethod
    def __call__(*args: Any) -> int:
        return len(args)


def test_staticmethod_call_gets_no_receiver() -> None:
    s = StaticCall()
    got, expected = _both(lambda x: x * s(x), torch.ones(2))
    assert_tree_equal(got, expected)


# -- item 123: StopIteration carries a generator's return value --------------------------


def _sub() -> Any:
    yield 1
    return 99


def test_generator_return_value_in_stop_iteration() -> None:
    def f(x: torch.Tensor) -> Any:
        g = _sub()
        next(g)
        try:
            next(g)
        except StopIteration as e:
            return x + 1, e.value, e.args
        return x

    got, expected = _both(f, torch.ones(2))
    assert_tree_equal(got, expected)


# -- items 122/125: a generator dropped while suspended inside try/finally ----------------


def test_generator_finally_runs_when_dropped() -> None:
    def f(x: torch.Tensor, log: list[Any]) -> torch.Tensor:
        def g() -> Any:
            try:
                yield 1
                yield 2
            finally:
                log.append("fin")

        for v in g():
            log.append(v)
            break
        log.append("after")
        return x + 1

    le: list[Any] = []
    lc: list[Any] = []
    expected = f(torch.ones(2), le)
    got = ferrodyn.compile(f, backend="eager")(torch.ones(2), lc)
    assert_tree_equal(got, expected)
    assert lc == le


def test_generator_suspended_in_try_except_exception_still_compiles() -> None:
    class Seq:
        def __getitem__(self, i: int) -> int:
            if i >= 3:
                raise IndexError(i)
            return i

    def gen(s: Seq) -> Any:
        i = 0
        try:
            while True:
                yield s[i]
                i += 1
        except IndexError:
            return

    seq = Seq()

    def f(x: torch.Tensor) -> torch.Tensor:
        for v in gen(seq):
            if v == 1:
                break
        return x + 1

    cnt = ferrodyn.testing.CompileCounter()
    assert_tree_equal(ferrodyn.compile(f, backend=cnt)(torch.ones(2)), f(torch.ones(2)))
    assert cnt.frame_count == 1


# -- item 61: a nested function that escapes keeps its annotations -------------------------


def test_escaping_nested_function_keeps_annotations() -> None:
    def f(x: torch.Tensor) -> Any:
        def inner(y: int) -> int:
            return y + 1

        return inner

    got, expected = _both(f, torch.ones(2))
    assert got.__annotations__ == expected.__annotations__
    assert got(3) == 4


# -- item 90: the traceback of a raised exception is not faked as None ----------------------


def test_traceback_of_raised_exception_matches_eager() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        try:
            raise ValueError("a")
        except ValueError as e:
            return x + 1, e.__traceback__ is None

    def g(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        e = ValueError("never raised")
        return x + 1, e.__traceback__ is None

    for fn in (f, g):
        got, expected = _both(fn, torch.ones(2))
        assert_tree_equal(got, expected)


# -- items 55/86/89: str() of a caught exception folds (no break) ---------------------------


class CustomStr(ValueError):
    def __str__(self) -> str:
        return "custom"


def test_str_of_caught_exception() -> None:
    def f(x: torch.Tensor) -> tuple[torch.Tensor, str]:
        try:
            raise ValueError("bad", 2)
        except ValueError as e:
            return x + 1, str(e)

    def g(x: torch.Tensor) -> tuple[torch.Tensor, str]:
        try:
            {}["k"]
        except KeyError as e:
            return x + 1, str(e)
        return x, ""

    def h(x: torch.Tensor) -> tuple[torch.Tensor, str]:
        try:
            raise CustomStr("bad")
        except ValueError as e:
            return x + 1, str(e)

    for fn, graphs in ((f, 1), (g, 1), (h, None)):
        cnt = ferrodyn.testing.CompileCounter()
        got = ferrodyn.compile(fn, backend=cnt)(torch.ones(2))
        assert_tree_equal(got, fn(torch.ones(2)))
        if graphs is not None:
            assert cnt.frame_count == graphs


# -- items 31/106: a missing module or class attribute is an observed AttributeError ---------


def test_missing_module_and_class_attribute_is_catchable() -> None:
    import types

    mod = types.ModuleType("probe_mod")
    mod.present = 2.0  # type: ignore[attr-defined]

    class C:
        pass

    def f(x: torch.Tensor) -> tuple[torch.Tensor, str]:
        try:
            return x + mod.nope, ""  # type: ignore[attr-defined]
        except AttributeError as e:
            return x + mod.present, str(e)  # type: ignore[attr-defined]

    def g(x: torch.Tensor) -> tuple[torch.Tensor, str]:
        try:
            return x + C.missing, ""  # type: ignore[attr-defined]
        except AttributeError as e:
            return x - 1, str(e)

    compiled = {}
    for fn in (f, g):
        cnt = ferrodyn.testing.CompileCounter()
        compiled[fn] = ferrodyn.compile(fn, backend=cnt)
        assert_tree_equal(compiled[fn](torch.ones(2)), fn(torch.ones(2)))
        assert cnt.frame_count == 1
    # The name appears later: the guard notices.
    mod.nope = 10.0  # type: ignore[attr-defined]
    assert_tree_equal(compiled[f](torch.ones(2)), f(torch.ones(2)))


# -- item 79: super().__init__() reaching object.__init__ -----------------------------------


class InitBase:
    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = k


class InitChild(InitBase):
    def __init__(self, k: float) -> None:
        super().__init__(k)
        self.j = 2.0


def test_super_init_reaching_object_init_traces() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        b = InitChild(3.0)
        return x * b.k + b.j

    cnt = ferrodyn.testing.CompileCounter()
    got = ferrodyn.compile(f, backend=cnt)(torch.ones(2))
    assert_tree_equal(got, f(torch.ones(2)))
    assert (cnt.frame_count, cnt.op_count) == (1, 2)


# -- item 55: binding errors carry CPython's exact message ----------------------------------


def _kwonly(a: Any, b: Any, *, c: Any) -> Any:
    return a + b + c


def test_binding_error_messages_match_cpython() -> None:
    calls = (
        lambda x: _kwonly(x, 1, 2, c=3),  # too many positionals, one keyword-only given
        lambda x: _kwonly(x, 1, 2, zz=3),  # the unexpected keyword is reported first
        lambda x: _kwonly(x, 1, 2),  # too many positionals
    )
    for call in calls:

        def f(x: torch.Tensor, call: Any = call) -> tuple[torch.Tensor, str]:
            try:
                call(x)
            except TypeError as e:
                return x + 1, str(e)
            return x, ""

        got, expected = _both(f, torch.ones(2))
        assert_tree_equal(got, expected)
