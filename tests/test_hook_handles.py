"""Forward hooks registered inside the compiled region (checklist item 51): removed in the
same trace, the hook never exists; otherwise the registration runs natively (a graph
break where it was made) and everything after sees the hook, as in eager."""

from __future__ import annotations

from typing import Any

import ferrodyn
import torch

X = torch.ones(2)


def _module() -> torch.nn.Linear:
    m = torch.nn.Linear(2, 2)
    torch.nn.init.constant_(m.weight, 0.5)
    torch.nn.init.constant_(m.bias, 0.25)
    return m


def _compare(fn: Any, calls: int = 2) -> tuple[ferrodyn.testing.CompileCounter, list[Any]]:
    """Eager and compiled on fresh modules: results, and the hooks left on the module and
    what calling it afterwards gives, are equal."""
    cnt = ferrodyn.testing.CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    seen = []
    for _ in range(calls):
        em, cm = _module(), _module()
        expected, got = fn(X, em), compiled(X, cm)
        torch.testing.assert_close(got[0], expected[0])
        assert len(cm._forward_hooks) == len(em._forward_hooks)
        assert len(cm._forward_pre_hooks) == len(em._forward_pre_hooks)
        torch.testing.assert_close(cm(X), em(X))
        seen.append(got)
    return cnt, seen


def test_removed_in_the_trace_is_never_installed() -> None:
    def fn(x: torch.Tensor, m: torch.nn.Module) -> Any:
        h = m.register_forward_hook(lambda mod, i, o: o * 100)
        h.remove()
        return m(x) + 1, h

    cnt, seen = _compare(fn)
    assert cnt.frame_count == 1
    handle = seen[-1][1]
    assert type(handle).__name__ == "RemovableHandle"
    handle.remove()


def test_a_pre_hook_removed_in_the_trace() -> None:
    def fn(x: torch.Tensor, m: torch.nn.Module) -> Any:
        h = m.register_forward_pre_hook(lambda mod, i: (i[0] * 3,))
        h.remove()
        return (m(x),)

    cnt, _ = _compare(fn)
    assert cnt.frame_count == 1


def test_a_hook_left_installed_is_registered_natively() -> None:
    def fn(x: torch.Tensor, m: torch.nn.Module) -> Any:
        y = x * 2
        m.register_forward_hook(lambda mod, i, o: o * 100)
        return (y + 1,)

    _compare(fn)
    explanation = ferrodyn.explain(fn)(X, _module())
    reasons = " ".join(str(b) for b in explanation.break_reasons)
    assert "forward hook registered in the compiled region" in reasons, reasons


def test_the_module_called_with_its_new_hook_runs_it() -> None:
    def fn(x: torch.Tensor, m: torch.nn.Module) -> Any:
        h = m.register_forward_hook(lambda mod, i, o: o * 100)
        out = m(x)
        h.remove()
        return (out,)

    _compare(fn)


def test_hook_dicts_read_after_registering() -> None:
    def fn(x: torch.Tensor, m: torch.nn.Module) -> Any:
        h = m.register_forward_hook(lambda mod, i, o: o)
        n = len(m._forward_hooks)
        h.remove()
        return (x * n, n)

    _compare(fn)
