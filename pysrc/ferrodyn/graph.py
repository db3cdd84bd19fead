"""FX graph building with fake-tensor propagation.

The Rust interpreter owns control flow; every tensor operation it meets is handed to a
`GraphBuilder`, which records an FX node and computes the result's metadata by running
the op on fake tensors. Tensor values travel through the interpreter as `TensorVar`
objects (an FX node plus its fake value).
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.fx
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensorMode,
)

from . import _deferred_dynamo, dynamic_shapes, meta_rules
from .exc import SkipFrame, Unsupported
from .meta_rules import TensorMeta
from .variables import tensor_subclass


def _flat(value: Any) -> list[Any]:
    if type(value) in (tuple, list):
        return [x for v in value for x in _flat(v)]
    if type(value) is dict:
        return [x for v in value.values() for x in _flat(v)]
    return [value]


def _formats_symbolic(args: tuple, kwargs: dict) -> bool:
    """Whether a call mixes text (a str/bytes argument) with symbolic numbers. Asked for
    every recorded op: nothing is built unless an argument is text."""
    if not any(isinstance(a, (str, bytes)) for a in args) and not any(
        isinstance(a, (str, bytes)) for a in kwargs.values()
    ):
        return False
    return any(dynamic_shapes.is_symbolic(a) for a in _flat([args, kwargs]))


def _specialised(var: TensorVar) -> Any:
    value = var.fake
    if not dynamic_shapes.is_symbolic(value):
        return value
    var.builder.refuse_random(value)
    return dynamic_shapes.specialize(value)


class TensorVar:
    """A tensor inside the trace: the FX node that produces it and its fake value (or, while
    the trace is light, its `meta_rules.TensorMeta` record: the fake is made on first use)."""

    __slots__ = ("_fake", "builder", "meta", "node", "py_type")

    def __init__(
        self,
        node: torch.fx.Node,
        fake: Any,
        builder: GraphBuilder,
        py_type: type = torch.Tensor,
        meta: TensorMeta | None = None,
    ) -> None:
        self.node = node
        self._fake = fake
        self.builder = builder
        self.py_type = py_type
        self.meta = meta

    @property
    def fake(self) -> Any:
        if self._fake is None:
            self.builder._full()
        return self._fake

    def python_type(self) -> type:
        """The Python type the eager value has (torch.Tensor, nn.Parameter for inputs, or
        int/float/bool for a symbolic size computed in the graph)."""
        return self.py_type

    def is_symbolic(self) -> bool:
        """Whether this stands for a symbolic Python number (a dynamic size), not a tensor."""
        if self._fake is None:
            return False
        return not isinstance(self._fake, torch.Tensor)

    def specialize(self) -> Any:
        """The concrete value of a symbolic number, as a constant: the shape environment
        records a guard that it keeps this value (the graph is specialised on it)."""
        self.builder.refuse_random(self.fake)
        return dynamic_shapes.specialize(self.fake)

    def __repr__(self) -> str:
        if self._fake is None and self.meta is not None:
            return f"TensorVar({self.node.name}, {self.meta.shape}, {self.meta.dtype})"
        return f"TensorVar({self.node.name}, {tuple(self.fake.shape)}, {self.fake.dtype})"


class SymSize(tuple):
    """`t.shape` / `t.size()` with symbolic sizes: its items are ints and TensorVars (the
    interpreter makes it a torch.Size value)."""

    __slots__ = ()


# Tensor attributes that are plain metadata: folded to constants under static shapes.
_CONST_ATTRS = frozenset(
    {
        "dtype",
        "device",
        "shape",
        "ndim",
        "is_cuda",
        "is_sparse",
        "is_quantized",
        "is_meta",
        "layout",
        "requires_grad",
        "is_leaf",
        "is_mkldnn",
        "is_nested",
    }
)
# Tensor attributes that produce tensors: recorded as `getattr` nodes.
_TENSOR_ATTRS = frozenset({"T", "mT", "H", "mH", "real", "imag", "data"})
# Methods that read data out of a tensor into Python: these must break the graph.
_DATA_METHODS = frozenset(
    {
        "item",
        "tolist",
        "numpy",
        "__bool__",
        "__int__",
        "__float__",
        "__index__",
        "data_ptr",
        "__array__",
        "backward",
    }
)


def _map(value: Any, fn: Callable[[TensorVar], Any]) -> Any:
    if isinstance(value, TensorVar):
        return fn(value)
    if type(value) is tuple:
        return tuple(_map(v, fn) for v in value)
    if type(value) is list:
        return [_map(v, fn) for v in value]
    if type(value) is dict:
        return {k: _map(v, fn) for k, v in value.items()}
    if type(value) is slice:
        return slice(_map(value.start, fn), _map(value.stop, fn), _map(value.step, fn))
    return value


def _is_symbolic_var(v: Any) -> bool:
    return isinstance(v, TensorVar) and v.is_symbolic()


def _has_symbolic_items(items: Any) -> bool:
    """A flat list or tuple of numbers, some of them symbolic sizes (TensorVars of ints)."""
    if type(items) not in (list, tuple) or not items:
        return False
    numbers = all(
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        or (isinstance(v, TensorVar) and v.is_symbolic())
        for v in items
    )
    return numbers and any(isinstance(v, TensorVar) for v in items)


def _node_of(v: TensorVar) -> torch.fx.Node:
    return v.node


def _fake_of(v: TensorVar) -> torch.Tensor:
    return v.fake


def describe_target(target: Any) -> str:
    """A user-facing name for an op target: `torch.relu`, `Tensor.view`, `operator.add`."""
    if isinstance(target, str):
        return f"Tensor.{target}"
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    if mod.startswith("torch._C") or mod == "torch._VariableFunctions" or not mod:
        mod = "torch"
    if mod == "_operator":
        mod = "operator"
    return f"{mod}.{name}"


class GraphBuilder:
    """Builds one FX graph. Placeholders are added in the order the runtime fetches them."""

    def __init__(self, dyn_state: dict | None = None, compiler: Any = None) -> None:
        self.graph = torch.fx.Graph()
        self.shapes = dynamic_shapes.InputShapes(dyn_state, compiler)
        self.compiler = compiler
        # Light (`meta_rules`) while there is no fake mode: until something needs a fake
        # tensor (`_full`).
        self.fake_mode: Any = None
        # While light: graph inputs waiting for their fakes (var, tensor, source, dims) and
        # every TensorVar made from a rule's record.
        self._light_inputs: list[tuple[TensorVar, torch.Tensor, str, set[int], int]] = []
        self._light_vars: list[TensorVar] = []
        if not _LIGHT:
            self._make_fake_mode()
        self.example_inputs: list[torch.Tensor] = []
        self.input_names: list[str] = []
        self._fakes: list[Any] = []
        self._names: set[str] = set()
        self.subclass_inputs: list[int] = []
        # Values drawn from `random` in the graph: (placeholder, function, args, kwargs,
        # the value drawn while tracing), in the order eager draws them.
        self.random_calls: list[tuple[torch.fx.Node, Any, tuple, dict, Any]] = []
        self._random_state: Any = None
        # Autocast state when the trace starts: traced `torch.autocast` blocks switch it for
        # real (so fake tensors see it) and it is put back when the trace ends, however it
        # ends (`restore_trace_state`).
        self._autocast_state = _autocast_state()

    @property
    def light(self) -> bool:
        """Whether the trace is still light: its tensors are `TensorMeta` records."""
        return self.fake_mode is None

    def _make_fake_mode(self) -> None:
        # The ShapeEnv and FakeTensorMode import parts of torch._dynamo: load only those,
        # not the whole package (see _deferred_dynamo).
        _deferred_dynamo.prepare()
        self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True, shape_env=self.shapes.env)

    def _full(self) -> None:
        """Turn a light trace full (`meta_rules`): make the fake mode, fakeify the inputs,
        replay the ops recorded so far on fake tensors, and check the rules' records against
        them. A disagreement (a rule's bug) runs the frame eagerly."""
        if not self.light:
            return
        self._make_fake_mode()
        for var, tensor, source_name, dims, index in self._light_inputs:
            fake = self.shapes.fakeify(self.fake_mode, tensor, source_name, index, dims)
            var._fake = fake
            var.node.meta["example_value"] = fake
            self._fakes[index] = fake
        self._light_inputs.clear()

        def fake_of(n: torch.fx.Node) -> Any:
            return n.meta["example_value"]

        try:
            for node in self.graph.nodes:
                if node.op not in ("call_function", "call_method"):
                    continue
                args = torch.fx.node.map_arg(node.args, fake_of)
                kwargs = torch.fx.node.map_arg(node.kwargs, fake_of)
                with self.fake_mode:
                    if node.op == "call_method":
                        result = getattr(args[0], node.target)(*args[1:], **kwargs)
                    else:
                        result = node.target(*args, **kwargs)
                node.meta["example_value"] = result
        except Exception as e:  # noqa: BLE001 - a rule let through an op torch rejects
            self._rule_mismatch(f"replaying the light trace on fake tensors raised {e!r}")
        seen: dict[int, Any] = {}
        live = set(self.graph.nodes)
        for var in self._light_vars:
            if var.node not in live:
                continue  # rolled back
            fake = var.node.meta.get("example_value")
            meta = var.meta
            assert meta is not None
            if not isinstance(fake, torch.Tensor) or not meta.same_as(fake):
                self._rule_mismatch(f"{describe_node(var.node)}: rule gave {meta}, fake {fake}")
            if seen.setdefault(id(meta), fake) is not fake:
                self._rule_mismatch(f"{describe_node(var.node)}: identity differs")
            var._fake = fake
        if len({id(f) for f in seen.values()}) != len(seen):
            self._rule_mismatch("two records for one fake tensor (identity differs)")
        self._light_vars.clear()

    def _rule_mismatch(self, what: str) -> None:
        message = f"internal error: ferrodyn's shape rules disagree with fake tensors: {what}"
        if _CHECK_RULES not in ("", "0", "1"):
            with open(_CHECK_RULES, "a") as f:
                f.write(message + "\n")
        raise SkipFrame(message)

    def _record_light(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        """An op on a light trace by its rule (`meta_rules`), or NotImplemented."""
        rule = meta_rules.lookup(kind, target)
        if rule is None:
            return NotImplemented
        try:
            margs = _map(args, _meta_of)
            mkwargs = _map(kwargs, _meta_of)
        except _NotLight:
            return NotImplemented
        result = meta_rules.apply(rule, margs, mkwargs)
        if result is NotImplemented:
            return NotImplemented
        if type(result) is meta_rules.Constant:
            return result.value  # a full trace's node would be dead: none is made
        node = self.graph.create_node(
            kind, target, _node_args(args), {k: _node_arg(v) for k, v in kwargs.items()}
        )
        inputs = {id(m) for m in _flat([margs, mkwargs]) if type(m) is TensorMeta}
        outs = [m for m in (result if type(result) is tuple else (result,)) if m is not None]
        if any(id(m) in inputs for m in outs):
            node.meta["ferrodyn_mutates"] = True  # as `_mutates`: it returned an input
        if type(result) is TensorMeta:
            return self._light_var(node, result)
        items: list[Any] = []
        for i, m in enumerate(result):
            if type(m) is not TensorMeta:
                items.append(m)  # None among the results (as `_wrap` keeps constants)
                continue
            sub = self.graph.create_node("call_function", operator.getitem, (node, i), {})
            items.append(self._light_var(sub, m))
        return tuple(items)

    def _light_var(self, node: torch.fx.Node, meta: TensorMeta) -> TensorVar:
        var = TensorVar(node, None, self, torch.Tensor, meta)
        self._light_vars.append(var)
        return var

    # -- inputs -------------------------------------------------------------------------
    def add_input(self, tensor: torch.Tensor, source_name: str) -> TensorVar:
        """A graph input. Its sizes are static, or symbolic in the dimensions `dynamic=`,
        `mark_dynamic` or automatic dynamic chose (`TensorVar.dynamic_dims` lists them and
        the strides that became symbolic, for the tensor guard to leave to the shape
        guard)."""
        functorch = torch._C._functorch
        if functorch.is_functorch_wrapped_tensor(tensor) or (
            functorch.peek_interpreter_stack() is not None
        ):
            # Called inside torch.func.grad / vmap / jacrev (their wrapped tensors, or the
            # transform's levels active): the frame runs eagerly, inside the transform.
            raise SkipFrame("a tensor input inside a torch.func transform (vmap, grad, ...)")
        py_type = type(tensor)
        if py_type is not torch.Tensor and py_type is not torch.nn.Parameter:
            # A tensor subclass: the graph sees its data as a plain tensor, and the compiled
            # graph gets a plain alias of it at this position (`subclass_inputs`): its
            # methods and __torch_function__ were traced already.
            tensor = tensor_subclass.plain_alias(tensor)
            self.subclass_inputs.append(len(self.example_inputs))
        dims = self.shapes.dynamic_dims_of(tensor, source_name)
        if self.light and (dims or not meta_rules.plain_input(tensor)):
            self._full()
        name = self._unique(_sanitize(source_name))
        node = self.graph.placeholder(name)
        node.meta["source"] = source_name
        self.example_inputs.append(tensor)
        self.input_names.append(source_name)
        if self.light:
            var = TensorVar(node, None, self, py_type, TensorMeta.of(tensor))
            self._light_inputs.append((var, tensor, source_name, dims, len(self._fakes)))
            self._fakes.append(None)
            return var
        fake = self.shapes.fakeify(self.fake_mode, tensor, source_name, len(self._fakes), dims)
        node.meta["example_value"] = fake
        self._fakes.append(fake)
        return TensorVar(node, fake, self, py_type)

    def add_int_input(self, value: float, source_name: str) -> TensorVar | None:
        """An `int` or `float` argument as a symbolic graph input, when dynamic shapes make
        it one (`dynamic=True`, or it changed since an earlier trace); None keeps it a
        constant."""
        if self.light and self.shapes.number_would_be_dynamic(value, source_name):
            self._full()
        if type(value) is float:
            sym = self.shapes.symfloat(value, source_name, len(self._fakes))
        else:
            sym = self.shapes.symint(value, source_name, len(self._fakes))
        if sym is None:
            return None
        node = self.graph.placeholder(self._unique(_sanitize(source_name)))
        node.meta["example_value"] = sym
        node.meta["source"] = source_name
        self.example_inputs.append(value)  # type: ignore[arg-type]
        self.input_names.append(source_name)
        self._fakes.append(sym)
        return TensorVar(node, sym, self, type(value))

    def random_value(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        """`random.random()`, `random.randint(a, b)`, ... in the graph: a graph input drawn by
        calling `fn` again on every call, just before the graph runs (eager draws them in the
        same order: nothing else in the graph draws from `random`). The value drawn now only
        gives the symbol a hint; the module's state is put back when the trace ends
        (`restore_random_state`)."""
        import random

        self._full()
        if self._random_state is None:
            self._random_state = random.getstate()
        value = fn(*args, **kwargs)
        if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
            raise Unsupported(f"{describe_target(fn)} gave a {type(value).__name__}")
        sym = self.shapes.random_number(value, len(self.random_calls))
        if sym is None:
            raise Unsupported(
                f"{describe_target(fn)}: a value drawn from `random` as a graph input needs a "
                'backend that runs the graph as traced ("eager"); this one would specialise it'
            )
        node = self.graph.placeholder(self._unique(f"random_value_{len(self.random_calls)}"))
        node.meta["example_value"] = sym
        self.random_calls.append((node, fn, args, kwargs, value))
        return TensorVar(node, sym, self, type(value))

    def refuse_random(self, value: Any) -> None:
        """A value drawn from `random` is not specialised (guarded): the next call draws
        another. Branching on it breaks the graph instead."""
        if self.random_calls and self.shapes.is_random(value):
            raise Unsupported("branching on, or formatting, a value drawn from `random`")

    def restore_trace_state(self) -> None:
        """Put back what tracing changed for real: `random`'s state (`restore_random_state`)
        and the autocast state (a traced `torch.autocast` block switches it; its switches
        are graph nodes, so the graph makes them again on every call)."""
        self.restore_random_state()
        _set_autocast_state(self._autocast_state)

    def restore_random_state(self) -> None:
        """Put `random`'s state back as it was before the trace drew from it."""
        if self._random_state is not None:
            import random

            random.setstate(self._random_state)
            self._random_state = None

    def dynamic_dims(self, var: TensorVar) -> tuple[list[int], list[int]] | None:
        """(symbolic size dims, symbolic stride dims) of a graph input, or None if static."""
        if var._fake is None:
            return None  # light: every size is static
        return dynamic_shapes.symbolic_dims(var.fake)

    def shape_guard(self) -> Any:
        """The check the shape environment's guards make on the graph inputs (a callable
        taking the list of input tensors), or None when every input is static."""
        return self.shapes.guard(self._fakes, self.input_names)

    def _unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name = f"{base}_{i}"
            i += 1
        self._names.add(name)
        return name

    # -- ops ----------------------------------------------------------------------------
    def call_function(self, target: Any, args: tuple, kwargs: dict) -> Any:
        if target is torch.tensor and args and _has_symbolic_items(args[0]):
            return self._tensor_of_numbers(args[0], kwargs)
        if target is torch.tensor and args and _is_symbolic_var(args[0]):
            return self._tensor_of_numbers([args[0]], kwargs, scalar=True)
        getter = tensor_subclass.getter_name(target)
        if getter is not None and len(args) == 1 and isinstance(args[0], TensorVar):
            return self.tensor_attr(args[0], getter)  # torch.Tensor.shape.__get__(t)
        method = tensor_subclass.tensor_method_name(target)
        if method is not None and args and isinstance(args[0], TensorVar):
            return self.call_method(method, args, kwargs)  # torch.Tensor.add(t, 1)
        return self._record("call_function", target, args, kwargs)

    def _tensor_of_numbers(self, items: Any, kwargs: dict, scalar: bool = False) -> Any:
        """`torch.tensor([n, m])` with symbolic sizes among the numbers: a stack of scalar
        tensors, so the sizes stay symbolic (building it directly would specialise them)."""
        extra = set(kwargs) - {"dtype", "device"}
        if extra:
            raise Unsupported(f"torch.tensor(...) of symbolic sizes with {sorted(extra)}")
        is_float = any(
            isinstance(v, float) or (isinstance(v, TensorVar) and v.py_type is float) for v in items
        )
        dtype = kwargs.get("dtype") or (torch.get_default_dtype() if is_float else torch.int64)
        scalars = [
            self._record("call_function", torch.scalar_tensor, (v,), {"dtype": dtype})
            for v in items
        ]
        out = scalars[0] if scalar else self._record("call_function", torch.stack, (scalars,), {})
        if kwargs.get("device") is not None:
            out = self._record("call_method", "to", (out, kwargs["device"]), {})
        return out

    def call_method(self, name: str, args: tuple, kwargs: dict) -> Any:
        if name in _DATA_METHODS:
            raise Unsupported(
                f"data-dependent operation Tensor.{name}() (reads tensor values into Python)"
            )
        return self._record("call_method", name, args, kwargs)

    def tensor_len(self, var: TensorVar) -> Any:
        """`len(t)`: its first size (a graph value when symbolic); TypeError for 0-d."""
        if var._fake is None and var.meta is not None:
            if not var.meta.shape:
                raise TypeError("len() of a 0-d tensor")
            return var.meta.shape[0]
        if var.fake.dim() == 0:
            raise TypeError("len() of a 0-d tensor")
        size = var.fake.shape[0]
        if not dynamic_shapes.is_symbolic(size):
            return int(size)
        n = self.graph.call_function(torch.ops.aten.sym_size.int, (var.node, 0))
        n.meta["example_value"] = size
        return TensorVar(n, size, self, int)

    def tensor_attr(self, var: TensorVar, name: str) -> Any:
        """Attribute of a traced tensor. Returns a constant, a TensorVar, or NotImplemented
        when `name` is a method (the interpreter then records a method call)."""
        if name in _CONST_ATTRS and var._fake is None and var.meta is not None:
            return var.meta.attr(name)
        if name == "shape":
            return self._sizes(var, var.fake.shape)
        if name in _CONST_ATTRS:
            return dynamic_shapes.constant(getattr(var.fake, name))
        if name in _TENSOR_ATTRS:
            return self._record("call_function", getattr, (var, name), {})
        if name == "grad":
            raise Unsupported("reading Tensor.grad inside a compiled region")
        attr = getattr(torch.Tensor, name, None)
        if attr is None:
            if var.node.op != "placeholder":
                # A tensor the graph computes is a fresh object: no instance attributes, so
                # the lookup fails as in eager (`hasattr(t, "jax")` is False).
                raise AttributeError(f"'Tensor' object has no attribute '{name}'")
            raise Unsupported(f"unknown tensor attribute Tensor.{name}")
        if callable(attr):
            return NotImplemented
        raise Unsupported(f"tensor attribute Tensor.{name}")

    def _record(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        if self.light:
            done = self._record_light(kind, target, args, kwargs)
            if done is not NotImplemented:
                return done
            self._full()
        fake_args = _map(args, _fake_of)
        fake_kwargs = _map(kwargs, _fake_of)
        if kind == "call_function" and _formats_symbolic(fake_args, fake_kwargs):
            # `"%s" % n`, `s + str(n)`-like operations on a symbolic number: the text
            # needs its value (formatting a symbol would give the symbol's name), so it is
            # specialised (guarded) and the call made on plain numbers.
            plain_args = _map(args, _specialised)
            plain_kwargs = _map(kwargs, _specialised)
            try:
                return target(*plain_args, **plain_kwargs)
            except Exception as e:  # noqa: BLE001 - eager raises the same error
                raise Unsupported(
                    f"{describe_target(target)} raised {type(e).__name__}: {e}"
                ) from None
        mark = self.shapes.random_mark() if self.random_calls else None
        try:
            with self.fake_mode:
                if kind == "call_method":
                    self_arg, *rest = fake_args
                    result = getattr(self_arg, target)(*rest, **fake_kwargs)
                else:
                    result = target(*fake_args, **fake_kwargs)
            if mark is not None and self.shapes.random_guarded_since(mark):
                # A guard on a value drawn from `random` (a size made from it): the next
                # call draws another, so break here instead of guarding.
                raise Unsupported(
                    f"{describe_target(target)} uses a value drawn from `random` as a size"
                )
        except (DataDependentOutputException, DynamicOutputShapeException) as e:
            raise Unsupported(
                f"data-dependent operation {describe_target(target)} ({type(e).__name__})"
            ) from None
        except NotImplementedError as e:
            raise Unsupported(
                f"{describe_target(target)} has no fake-tensor implementation: {e}"
            ) from None
        except Unsupported:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the op itself
            # The op itself fails (bad shapes, bad arguments): eager raises the same error,
            # so stop here and let the frame run eagerly.
            raise Unsupported(f"{describe_target(target)} raised {type(e).__name__}: {e}") from None
        node = self.graph.create_node(
            kind, target, _node_args(args), {k: _node_arg(v) for k, v in kwargs.items()}
        )
        if _mutates(result, fake_args, fake_kwargs):
            node.meta["ferrodyn_mutates"] = True
        return self._wrap(node, result)

    def _sizes(self, var: TensorVar, shape: Any) -> Any:
        """`t.shape` with symbolic sizes: one `sym_size` node per symbolic dimension (a
        plain tuple, so its items can be graph values)."""
        if not any(dynamic_shapes.is_symbolic(d) for d in shape):
            return dynamic_shapes.constant(shape)
        items: list[Any] = []
        for i, d in enumerate(shape):
            if dynamic_shapes.is_symbolic(d):
                n = self.graph.call_function(torch.ops.aten.sym_size.int, (var.node, i))
                n.meta["example_value"] = d
                items.append(TensorVar(n, d, self, int))
            else:
                items.append(int(d))
        return SymSize(items)

    def _wrap(self, node: torch.fx.Node, result: Any) -> Any:
        if isinstance(result, torch.Tensor):
            node.meta["example_value"] = result
            return TensorVar(node, result, self)
        if dynamic_shapes.is_symbolic(result):
            node.meta["example_value"] = result
            return TensorVar(node, result, self, dynamic_shapes.python_type_of(result))
        if isinstance(result, (tuple, list)) and any(
            isinstance(r, torch.Tensor) or dynamic_shapes.is_symbolic(r) for r in result
        ):
            node.meta["example_value"] = result
            items = []
            for i, r in enumerate(result):
                if isinstance(r, torch.Tensor) or dynamic_shapes.is_symbolic(r):
                    sub = self.graph.create_node("call_function", operator.getitem, (node, i), {})
                    sub.meta["example_value"] = r
                    py_type = dynamic_shapes.python_type_of(r)
                    items.append(TensorVar(sub, r, self, py_type))
                else:
                    items.append(r)
            if isinstance(result, torch.Size):
                return SymSize(items)
            if type(result) is list:
                return items
            if type(result) is tuple:
                return tuple(items)
            if hasattr(type(result), "n_sequence_fields"):
                return type(result)(items)  # torch.return_types structseq
            return type(result)(*items)  # namedtuple
        # A non-tensor result (a Python number, torch.Size, ...) is a compile-time constant
        # under static shapes (or a symbolic number known to be one value): the node is dead
        # and removed at finish().
        return dynamic_shapes.constant(result)

    def as_subclass(self, var: TensorVar, cls: type) -> TensorVar:
        """`t.as_subclass(cls)`: the same data seen as an instance of `cls`. A new object
        eagerly, so an input or a plain result gets an alias node of its own (an output of
        it is not the input object); a result the trace converts back to its subclass (what
        `Tensor.__torch_function__` does to each result) shares the node."""
        if cls is torch.Tensor or var.node.op == "placeholder":
            alias = self._record("call_function", torch.ops.aten.alias.default, (var,), {})
            return TensorVar(alias.node, alias.fake, self, cls)
        return TensorVar(var.node, var.fake, self, cls)

    def same_tensor(self, a: TensorVar, b: TensorVar) -> bool | None:
        """`a is b` for two traced tensors: by fake identity (which follows real identity:
        in-place ops return their input's fake), or None when both are graph inputs (their
        identity could change from call to call)."""
        if a.node.op == "placeholder" and b.node.op == "placeholder":
            return None
        if a._fake is None and b._fake is None and a.meta is not None:
            return a.meta is b.meta  # light: rules return an input's very record
        return a.fake is b.fake

    # -- graph breaks ---------------------------------------------------------------------
    def mark(self) -> int:
        """A position in the graph, for `rollback`."""
        return len(self.graph.nodes)

    def rollback(self, mark: int) -> None:
        """Drop the op nodes recorded after `mark` (by an instruction that then broke the
        graph: it will run natively, so its partial ops must not run too). Placeholders
        stay: inputs are fetched by source and unused ones are harmless."""
        nodes = list(self.graph.nodes)[mark:]
        for node in reversed(nodes):
            if node.op != "placeholder":
                self.graph.erase_node(node)
        # Values drawn from `random` by the rolled-back instruction: it runs natively and
        # draws them itself.
        dropped = {n for n in nodes if n.op == "placeholder"}
        for call in [c for c in self.random_calls if c[0] in dropped]:
            self.random_calls.remove(call)
            self.graph.erase_node(call[0])

    def vmap_subgraph(
        self, mark: int, inputs: list[Any], outputs: list[Any], n_random: int
    ) -> tuple[torch.fx.GraphModule, list[TensorVar]]:
        """Move the op nodes recorded after `mark` (a vmapped function traced on slices,
        `rust/interp/vmap.rs`) into a graph module of their own: `inputs` (the slices, then
        unbatched arguments) become its first parameters, every other value from before the
        mark it uses becomes a parameter after them (returned: the values to pass, unbatched),
        and `outputs` its result tuple. The caller rolls the nodes back afterwards."""
        self._full()
        if len(self.random_calls) != n_random:
            raise Unsupported("torch.vmap: the function draws from `random`")
        sub = torch.fx.Graph()
        env: dict[torch.fx.Node, torch.fx.Node] = {}
        for i, v in enumerate(inputs):
            if not isinstance(v, TensorVar):
                raise Unsupported("torch.vmap: an argument that is not a tensor")
            if v.node not in env:
                ph = sub.placeholder(f"arg{i}")
                ph.meta["example_value"] = v.fake
                env[v.node] = ph
        lifted: list[TensorVar] = []
        after = list(self.graph.nodes)[mark:]
        inside = {n for n in after if n.op != "placeholder"}

        def lift(n: torch.fx.Node) -> torch.fx.Node:
            if n in env:
                return env[n]
            if n in inside:
                raise Unsupported("torch.vmap: internal error (node order)")
            value = n.meta.get("example_value")
            ph = sub.placeholder(f"lifted{len(lifted)}")
            ph.meta["example_value"] = value
            env[n] = ph
            if dynamic_shapes.is_symbolic(value):
                lifted.append(TensorVar(n, value, self, dynamic_shapes.python_type_of(value)))
            else:
                lifted.append(TensorVar(n, value, self))
            return ph

        for node in after:
            if node.op == "placeholder" or node not in inside:
                continue
            if node.meta.get("ferrodyn_mutates"):
                raise Unsupported("torch.vmap: the function changes a tensor in place")
            new = sub.node_copy(node, lift)
            env[node] = new
        outs = []
        for v in outputs:
            if not isinstance(v, TensorVar):
                raise Unsupported("torch.vmap: the function returns something other than tensors")
            outs.append(lift(v.node) if v.node not in env else env[v.node])
        sub.output(tuple(outs))
        sub.eliminate_dead_code()
        return torch.fx.GraphModule(torch.nn.Module(), sub), lifted

    def _random_inputs_last(self) -> None:
        """The graph's parameters: the fetched inputs in order, then the values drawn from
        `random` (appended by `output.draw_random_inputs` on each call)."""
        if not self.random_calls:
            return
        drawn = [c[0] for c in self.random_calls]
        order = [n for n in self.graph.nodes if n.op == "placeholder" and n not in drawn] + drawn
        anchor = next(iter(self.graph.nodes))
        for node in reversed(order):
            if node is not anchor:
                anchor.prepend(node)
            anchor = node
        for node, fn, _, _, value in self.random_calls:
            self.example_inputs.append(value)
            self.input_names.append(f"{describe_target(fn)}()")
            self._fakes.append(node.meta["example_value"])

    # -- output -------------------------------------------------------------------------
    def finish(self, outputs: list[TensorVar]) -> torch.fx.GraphModule:
        if self.shapes.random_guarded():
            raise Unsupported("a value drawn from `random` was used as a size or specialised")
        if self.light and (_CHECKING or not _runs_without_fakes(self.compiler)):
            self._full()  # the backend may read the nodes' example values
        self._random_inputs_last()
        self.graph.output(tuple(v.node for v in outputs))
        self.graph.eliminate_dead_code(is_impure_node=_is_impure)
        gm = torch.fx.GraphModule(torch.nn.Module(), self.graph)
        gm.meta["ferrodyn_input_sources"] = list(self.input_names)
        gm.meta["ferrodyn_fake_mode"] = self.fake_mode
        return gm


# Python number types passed where torch takes a dtype (`torch.tensor(0, dtype=int)`,
# `x.to(float)`): torch reads them as these dtypes; FX cannot write a class in its code.
_PY_DTYPES: dict[Any, torch.dtype] = {
    int: torch.int64,
    float: torch.float64,
    bool: torch.bool,
    complex: torch.complex128,
}


# torch functions that switch thread state ops depend on: `torch.autocast`'s __enter__ and
# __exit__ are traced, and these calls stay in the graph (their results are unused, or
# read as constants), so every call of the graph switches autocast as eager does.
_STATE_SWITCHES = frozenset(
    f
    for f in (
        getattr(torch, name, None)
        for name in (
            "set_autocast_enabled",
            "set_autocast_dtype",
            "autocast_increment_nesting",
            "autocast_decrement_nesting",
            "set_autocast_cache_enabled",
            "clear_autocast_cache",
            "set_autocast_cpu_enabled",
            "set_autocast_cpu_dtype",
            "set_autocast_gpu_dtype",
            "set_autocast_ipu_enabled",
            "set_autocast_ipu_dtype",
            "set_autocast_xla_enabled",
            "set_autocast_xla_dtype",
        )
    )
    if f is not None
)
_AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps", "hpu")


def _autocast_state() -> tuple:
    """The thread's autocast state: each device's flag and dtype, the cache flag, the
    nesting depth."""
    per_device = []
    for dev in _AUTOCAST_DEVICES:
        try:
            per_device.append((dev, torch.is_autocast_enabled(dev), torch.get_autocast_dtype(dev)))
        except RuntimeError:
            continue  # a device type this build does not know
    depth = torch.autocast_increment_nesting() - 1
    torch.autocast_decrement_nesting()
    return tuple(per_device), torch.is_autocast_cache_enabled(), depth


def _set_autocast_state(state: tuple) -> None:
    per_device, cache, depth = state
    for dev, enabled, dtype in per_device:
        if torch.is_autocast_enabled(dev) != enabled:
            torch.set_autocast_enabled(dev, enabled)
        if torch.get_autocast_dtype(dev) != dtype:
            torch.set_autocast_dtype(dev, dtype)
    if torch.is_autocast_cache_enabled() != cache:
        torch.set_autocast_cache_enabled(cache)
    now = torch.autocast_increment_nesting() - 1
    torch.autocast_decrement_nesting()
    for _ in range(now - depth):
        torch.autocast_decrement_nesting()
    for _ in range(depth - now):
        torch.autocast_increment_nesting()


class _NotLight(Exception):
    """A value a rule cannot take (a symbolic number)."""


def _meta_of(v: TensorVar) -> TensorMeta:
    if v._fake is not None or v.meta is None:
        raise _NotLight
    return v.meta


def describe_node(node: torch.fx.Node) -> str:
    target = node.target if node.op == "call_method" else describe_target(node.target)
    return f"{node.name} ({target})"


def _runs_without_fakes(compiler: Any) -> bool:
    """Whether the backend needs no example values on the nodes (`"eager"` runs the graph
    module as it is); any other backend gets a full trace."""
    from .backends import DynamicBackend, _eager

    inner = compiler.backend if isinstance(compiler, DynamicBackend) else compiler
    return inner is _eager


# Traces start light (`meta_rules`); FERRODYN_LIGHT_TRACE=0 makes every trace full from the
# start. FERRODYN_CHECK_META_RULES=1 turns every light trace full at its end, so the rules'
# records are checked against fake tensors (a path instead of 1: disagreements are also
# appended to that file).
_LIGHT = os.environ.get("FERRODYN_LIGHT_TRACE", "1") != "0"
_CHECK_RULES = os.environ.get("FERRODYN_CHECK_META_RULES", "")
_CHECKING = _CHECK_RULES not in ("", "0")


def _node_arg(v: Any) -> Any:
    if type(v) is type and v in _PY_DTYPES:
        return _PY_DTYPES[v]
    return _map(v, _node_of)


def _node_args(args: tuple) -> tuple:
    return tuple(_node_arg(a) for a in args)


def _flat_tensors(value: Any, out: list[torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _flat_tensors(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            _flat_tensors(v, out)


def _mutates(result: Any, fake_args: Any, fake_kwargs: Any) -> bool:
    """Whether an op wrote to one of its inputs: it returned an input tensor itself
    (`x += 1`, `x.mul_(2)`, `relu(x, inplace=True)`), wrote to `out=`, or returned None
    while taking tensors (`x[i] = v`)."""
    inputs: list[torch.Tensor] = []
    _flat_tensors(fake_args, inputs)
    _flat_tensors(fake_kwargs, inputs)
    if not inputs:
        return False
    if result is None or "out" in fake_kwargs:
        return True
    outs: list[torch.Tensor] = []
    _flat_tensors(result, outs)
    ids = {id(t) for t in inputs}
    return any(id(o) in ids for o in outs)


def _is_impure(node: torch.fx.Node) -> bool:
    if node.op in ("placeholder", "output"):
        return True
    if node.meta.get("ferrodyn_mutates"):
        return True
    if node.op == "call_function" and node.target in _STATE_SWITCHES:
        return True
    if node.op == "call_method":
        return str(node.target).endswith("_") and not str(node.target).startswith("__")
    if node.op == "call_function":
        tgt = node.target
        name = getattr(tgt, "__name__", "")
        if tgt in (operator.setitem,) or name.endswith("_") and not name.startswith("__"):
            return True
        if "dropout" in name or "rand" in name or "bernoulli" in name:
            return True
        if name in ("batch_norm", "instance_norm"):
            return True  # updates running stats in place
        return node.is_impure()
    return False


def _sanitize(name: str) -> str:
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    out = out.strip("_") or "input"
    if out[0].isdigit():
        out = "_" + out
    # Lower-case, so FX's node name equals the placeholder's target and the generated
    # forward binds its arguments directly (an `L_x` target would add one `l_x = L_x` line
    # per input to every call).
    return "l_" + out
