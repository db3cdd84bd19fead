"""What `torch._dynamo.comptime(fn)` hands `fn` while ferrodyn traces (checklist 101): a
compile-time view of the trace, with the methods of torch's own `ComptimeContext`.

The tracer (`rust/interp/comptime.rs`) calls `fn(ctx)` once per trace, at the point of the
call, and records no graph op. Locals are those of the frame making the `comptime` call;
`stacklevel` reaches no further (ferrodyn's frames do not keep their callers' locals), and
asking for more raises `NotImplementedError`, which the tracer reports as a graph break.
"""

from __future__ import annotations

import dis
import time
import types
from typing import Any, TextIO

import torch

from .graph import TensorVar


class ComptimeVar:
    """A value of the trace: a constant, or a tensor (or symbolic number) of the graph."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def _var(self) -> TensorVar | None:
        return self._value if isinstance(self._value, TensorVar) else None

    def as_proxy(self) -> torch.fx.Node:
        var = self._var()
        if var is None:
            raise AssertionError(f"{self._value!r} is not a graph value")
        return var.node

    def is_proxy(self) -> bool:
        return self._var() is not None

    def as_fake(self) -> Any:
        var = self._var()
        if var is None:
            raise AssertionError(f"{self._value!r} is not a graph value")
        return var.fake

    def size(self, dim: int | None = None) -> Any:
        fake = self.as_fake()
        return fake.size() if dim is None else fake.size(dim)

    def python_type(self) -> type:
        var = self._var()
        return var.python_type() if var is not None else type(self._value)

    def is_python_constant(self) -> bool:
        return self._var() is None

    def as_python_constant(self) -> Any:
        if self._var() is not None:
            raise NotImplementedError(f"{self._value!r} is not a constant")
        return self._value

    def is_dynamic(self) -> bool:
        var = self._var()
        if var is None:
            return False
        fake = var.fake
        sizes = fake.shape if isinstance(fake, torch.Tensor) else (fake,)
        return any(isinstance(s, torch.SymInt) for s in sizes)

    def force_static(self) -> None:
        var = self._var()
        if var is not None and var.is_symbolic():
            var.specialize()

    def __repr__(self) -> str:
        return f"ComptimeVar({self._value!r})"


class ComptimeContext:
    """The trace at the `comptime` call: its graph so far, the calling frame's locals (by
    name), its code, and the guards recorded so far (described)."""

    def __init__(
        self,
        graph: torch.fx.Graph,
        frame_locals: dict[str, Any],
        code: types.CodeType,
        guards: list[str],
    ) -> None:
        self._graph = graph
        self._locals = frame_locals
        self._code = code
        self._guards = guards
        self.break_reason: str | None = None

    @staticmethod
    def _only_this_frame(stacklevel: int) -> None:
        if stacklevel != 0:
            raise NotImplementedError(
                f"ferrodyn's comptime context sees the calling frame only (stacklevel={stacklevel})"
            )

    def get_local(self, name: str, *, stacklevel: int = 0) -> ComptimeVar:
        self._only_this_frame(stacklevel)
        if name not in self._locals:
            raise KeyError(f"no local variable {name!r} in {self._code.co_name}")
        return ComptimeVar(self._locals[name])

    def graph_break(self, msg: str = "ComptimeContext.graph_break") -> None:
        self.break_reason = msg

    def graph(self) -> torch.fx.Graph:
        return self._graph

    def assert_static(self, val: ComptimeVar) -> None:
        assert not val.is_dynamic(), "expected static but got dynamic (run with TORCH_LOGS=dynamic)"

    def print_graph(self, *, verbose: bool = True, file: TextIO | None = None) -> None:
        print(self._graph.python_code("self", verbose=verbose).src, file=file)

    def parent(self) -> ComptimeContext:
        raise NotImplementedError("ferrodyn's comptime context has no parent frame")

    def print(self, val: Any, *, file: TextIO | None = None) -> None:
        print(repr(val), file=file)

    def print_disas(self, *, file: TextIO | None = None, stacklevel: int = 0) -> None:
        self._only_this_frame(stacklevel)
        dis.dis(self._code, file=file)

    def print_value_stack(self, *, file: TextIO | None = None, stacklevel: int = 0) -> None:
        self._only_this_frame(stacklevel)
        print("(the value stack is not shown by ferrodyn)", file=file)

    def print_locals(self, *, file: TextIO | None = None, stacklevel: int = 0) -> None:
        self._only_this_frame(stacklevel)
        for name, value in self._locals.items():
            print(f"{name} = {value!r}", file=file)

    def print_bt(self, *, file: TextIO | None = None, stacklevel: int = 0) -> None:
        self._only_this_frame(stacklevel)
        c = self._code
        print(f'  File "{c.co_filename}", line {c.co_firstlineno}, in {c.co_name}', file=file)

    def print_guards(self, *, file: TextIO | None = None) -> None:
        print("\n".join(self._guards), file=file)

    def sleep(self, sec: float) -> None:
        time.sleep(sec)
