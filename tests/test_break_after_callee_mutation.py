"""A break inside an inlined callee that had already mutated a list, a dict or an object
(changes the tracer cannot roll back) still splits the caller (issue 9 item 3): the frame is
traced again up to the call, so the callee runs natively, through its own compiled frame,
and nothing of the caller is left to eager. Values and mutations equal eager; graph counts
equal torch.compile's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ferrodyn
import pytest
import torch
import torch._dynamo
import torch._dynamo.testing
from _helpers import assert_tree_equal, clone_tree
from ferrodyn.testing import CompileCounter


class Box:
    def __init__(self) -> None:
        self.items: list[torch.Tensor] = []


def append_then_break(lst: list, x: torch.Tensor) -> torch.Tensor:
    lst.append(x)
    torch._dynamo.graph_break()
    return x + 1


def new_list_in_caller(x: torch.Tensor) -> Any:
    lst: list = []
    y = append_then_break(lst, x * 2)
    return y * 3, lst


def arg_list_in_caller(x: torch.Tensor, lst: list) -> Any:
    y = append_then_break(lst, x.sin())
    return y.cos(), len(lst)


def store_then_print(d: dict, x: torch.Tensor) -> torch.Tensor:
    d["k"] = x
    d.pop("gone", None)
    print("callee prints", len(d))
    torch._dynamo.graph_break()
    return x + 1


def dict_arg_in_caller(x: torch.Tensor, d: dict) -> torch.Tensor:
    y = x.exp()
    z = store_then_print(d, y)
    return z.relu()


def fill_box(b: Box, x: torch.Tensor) -> torch.Tensor:
    b.items.append(x)
    b.items.append(x * 2)
    torch._dynamo.graph_break()
    return sum(b.items)


def object_made_in_caller(x: torch.Tensor) -> Any:
    b = Box()
    s = fill_box(b, x + 1)
    return s - 1, b.items


def deeper(lst: list, x: torch.Tensor) -> torch.Tensor:
    lst.insert(0, x)
    return append_then_break(lst, x * 5) * 7


def two_levels(x: torch.Tensor) -> Any:
    lst = [x]
    y = deeper(lst, x.neg())
    return y.abs(), lst


def in_a_loop(x: torch.Tensor) -> Any:
    acc: list = []
    for i in range(3):
        x = append_then_break(acc, x + i)
    return x, acc


CASES: dict[str, tuple[Callable[..., Any], Callable[[], tuple[Any, ...]]]] = {
    "new_list_in_caller": (new_list_in_caller, lambda: (torch.randn(3),)),
    "arg_list_in_caller": (arg_list_in_caller, lambda: (torch.randn(3), [torch.ones(1)])),
    "dict_arg_in_caller": (dict_arg_in_caller, lambda: (torch.randn(3), {"gone": 1, "a": 2})),
    "object_made_in_caller": (object_made_in_caller, lambda: (torch.randn(3),)),
    "two_levels": (two_levels, lambda: (torch.randn(3),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_callee_mutation_then_break_splits_like_torch_compile(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fn, make = CASES[name]
    args = make()
    eager_args = clone_tree(args)
    expected = fn(*eager_args)
    eager_out = capsys.readouterr().out

    torch._dynamo.reset()
    tc_cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(fn, backend=tc_cnt)(*clone_tree(args))
    torch._dynamo.reset()
    capsys.readouterr()

    cnt = CompileCounter()
    compiled = ferrodyn.compile(fn, backend=cnt)
    fd_args = clone_tree(args)
    got = compiled(*fd_args)
    assert capsys.readouterr().out == eager_out
    assert_tree_equal(got, expected)
    assert_tree_equal(fd_args, eager_args, "arguments after the call")
    # Ops are captured on both sides of the call (nothing of the caller runs eagerly).
    assert cnt.frame_count == tc_cnt.frame_count, (cnt.frame_count, tc_cnt.frame_count)
    assert cnt.op_count == tc_cnt.op_count, (cnt.op_count, tc_cnt.op_count)

    # A second call reuses the graphs and still matches eager.
    again_args = clone_tree(args)
    got = compiled(*again_args)
    capsys.readouterr()
    assert_tree_equal(got, fn(*clone_tree(args)))
    assert_tree_equal(again_args, eager_args, "arguments after the second call")
    capsys.readouterr()
    assert cnt.frame_count == tc_cnt.frame_count


def test_in_a_loop_the_loop_keeps_its_graphs() -> None:
    # torch.compile gives up on a frame that breaks inside a loop (its ops run eagerly);
    # ferrodyn resumes inside the loop, so it captures at least as many ops.
    x = torch.randn(3)
    expected = in_a_loop(x.clone())
    torch._dynamo.reset()
    tc_cnt = torch._dynamo.testing.CompileCounter()
    torch.compile(in_a_loop, backend=tc_cnt)(x.clone())
    torch._dynamo.reset()
    cnt = CompileCounter()
    compiled = ferrodyn.compile(in_a_loop, backend=cnt)
    assert_tree_equal(compiled(x.clone()), expected)
    assert_tree_equal(compiled(x.clone()), expected)
    assert cnt.op_count > tc_cnt.op_count


def test_caller_ops_before_and_after_the_call_are_graphs() -> None:
    cnt = CompileCounter()
    compiled = ferrodyn.compile(new_list_in_caller, backend=cnt)
    x = torch.randn(3)
    y, lst = compiled(x)
    torch.testing.assert_close(y, (x * 2 + 1) * 3)
    assert len(lst) == 1
    ops = sorted(
        str(n.target) for g in cnt.graphs for n in g.graph.nodes if n.op == "call_function"
    )
    assert ops == sorted(
        ["<built-in function mul>", "<built-in function add>", "<built-in function mul>"]
    )


def test_fullgraph_still_raises() -> None:
    compiled = ferrodyn.compile(new_list_in_caller, backend="eager", fullgraph=True)
    with pytest.raises(ferrodyn.exc.Unsupported, match="graph_break"):
        compiled(torch.randn(3))
