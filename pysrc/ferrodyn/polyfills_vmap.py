"""`torch.vmap` / `torch.func.vmap` inside a compiled region.

torch.compile traces a vmapped function as a functorch higher-order op: the function's ops
join the graph, batched. ferrodyn does the same in one graph node:

1. `vmap_impl` is traced in place of `torch._functorch.vmap.vmap_impl` (where every vmapped
   call goes). It flattens the arguments with their `in_dims` (tuples, lists and dicts;
   anything else is a graph break, and eager then raises its own error) and reaches the
   marker `vmap_in_graph`;
2. the tracer (`rust/interp/vmap.rs`) traces `vmap_body` once on one slice of each batched
   argument, which proves the function traceable and free of side effects and records its
   ops; those ops are moved into a graph module of their own (`GraphBuilder.vmap_subgraph`)
   and the main graph gets one node calling `VmappedGraph`: `torch.vmap` of that module, run
   by eager functorch or traced through by the backend (AOTAutograd decomposes it into
   batched ops).

The user's function is never called at trace time: the node's fake-tensor propagation runs
the graph module, which holds only torch ops.
"""

from __future__ import annotations

from typing import Any

import torch

# A flattened argument structure: ("leaf", index) | ("const", value) | (kind, children)
# with kind "tuple" / "list", or ("dict", keys, children).
Spec = tuple[Any, ...]


def _unsupported(reason: str) -> Any:
    from .polyfills import unsupported

    return unsupported(reason)


def _flatten(tree: Any, dim: Any, leaves: list[Any], dims: list[Any]) -> Spec:
    """Flatten one argument of the vmapped call, broadcasting its in_dim over its leaves."""
    t = type(tree)
    if t is tuple or t is list:
        if type(dim) is t or (type(dim) in (tuple, list)):
            if len(dim) != len(tree):
                _unsupported("torch.vmap: in_dims does not match the argument's structure")
            children = [_flatten(c, d, leaves, dims) for c, d in zip(tree, dim)]
        else:
            children = [_flatten(c, dim, leaves, dims) for c in tree]
        return ("tuple" if t is tuple else "list", tuple(children))
    if t is dict:
        keys = tuple(tree)
        if type(dim) is dict:
            if set(dim) != set(keys):
                _unsupported("torch.vmap: in_dims does not match the argument's structure")
            children = [_flatten(tree[k], dim[k], leaves, dims) for k in keys]
        else:
            children = [_flatten(tree[k], dim, leaves, dims) for k in keys]
        return ("dict", keys, tuple(children))
    if dim is not None and type(dim) is not int:
        _unsupported("torch.vmap: an in_dims entry that is not an int or None")
    if isinstance(tree, torch.Tensor):
        leaves.append(tree)
        dims.append(dim)
        return ("leaf", len(leaves) - 1)
    if dim is not None:
        _unsupported("torch.vmap: a batched argument that is not a tensor")
    if tree is None or type(tree) in (int, float, bool, str):
        return ("const", tree)
    leaves.append(tree)
    dims.append(None)
    return ("leaf", len(leaves) - 1)


def _build(spec: Spec, leaves: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "leaf":
        return leaves[spec[1]]
    if kind == "const":
        return spec[1]
    if kind == "dict":
        return {k: _build(c, leaves) for k, c in zip(spec[1], spec[2])}
    items = [_build(c, leaves) for c in spec[1]]
    return tuple(items) if kind == "tuple" else items


def _flatten_out(tree: Any, leaves: list[Any]) -> Spec:
    t = type(tree)
    if t is tuple or t is list:
        return ("tuple" if t is tuple else "list", tuple(_flatten_out(c, leaves) for c in tree))
    if t is dict:
        keys = tuple(tree)
        return ("dict", keys, tuple(_flatten_out(tree[k], leaves) for k in keys))
    if not isinstance(tree, torch.Tensor):
        _unsupported("torch.vmap: the function returns something other than tensors")
    leaves.append(tree)
    return ("leaf", len(leaves) - 1)


def vmap_impl(
    func: Any,
    in_dims: Any,
    out_dims: Any,
    randomness: str,
    chunk_size: Any,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Traced in place of `torch._functorch.vmap.vmap_impl`."""
    if chunk_size is not None:
        _unsupported("torch.vmap with chunk_size")
    if type(in_dims) is int or in_dims is None:
        per_arg: Any = [in_dims] * len(args)
    elif type(in_dims) is tuple or type(in_dims) is list:
        if len(in_dims) != len(args):
            _unsupported("torch.vmap: in_dims does not match the number of arguments")
        per_arg = in_dims
    else:
        _unsupported("torch.vmap: in_dims that is not an int, None, a tuple or a list")
    leaves: list[Any] = []
    dims: list[Any] = []
    spec = tuple(_flatten(a, d, leaves, dims) for a, d in zip(args, per_arg))
    if all(d is None for d in dims):
        _unsupported("torch.vmap: no argument is batched")
    out_leaves, out_spec = vmap_in_graph(
        func, tuple(dims), out_dims, randomness, spec, kwargs, *leaves
    )
    return _build(out_spec, out_leaves)


def vmap_in_graph(
    func: Any,
    dims: tuple[Any, ...],
    out_dims: Any,
    randomness: str,
    spec: Spec,
    kwargs: dict[str, Any],
    *leaves: Any,
) -> Any:
    """A marker (`variables/markers.py`): carried out by `rust/interp/vmap.rs`. Never run."""
    raise AssertionError("ferrodyn: vmap_in_graph runs only in the tracer")


def vmap_body(func: Any, spec: Spec, kwargs: dict[str, Any], *slices: Any) -> Any:
    """What the vmapped function computes for one slice of each batched argument: traced
    once by `vmap.rs`, its ops then moved into the node's graph module."""
    args = _build(("tuple", spec), slices)
    out = func(*args, **kwargs)
    out_leaves: list[Any] = []
    out_spec = _flatten_out(out, out_leaves)
    return tuple(out_leaves), out_spec


def flat_out_dims(out_dims: Any, out_spec: Spec) -> tuple[int, ...]:
    """Broadcast `out_dims` over the output's structure (run at trace time on constants)."""
    dims: list[int] = []

    def walk(spec: Spec, d: Any) -> None:
        kind = spec[0]
        if kind == "leaf":
            if type(d) is not int:
                raise ValueError("out_dims")
            dims.append(d)
        elif kind == "dict":
            for k, c in zip(spec[1], spec[2]):
                walk(c, d[k] if type(d) is dict else d)
        else:
            children = spec[1]
            if type(d) in (tuple, list):
                if len(d) != len(children):
                    raise ValueError("out_dims")
                for c, dd in zip(children, d):
                    walk(c, dd)
            else:
                for c in children:
                    walk(c, d)

    walk(out_spec, out_dims)
    return tuple(dims)


class VmappedGraph:
    """The graph node's target: `torch.vmap` of the traced function's graph module over the
    flat inputs (its own batched inputs, then tensors it read from outside, unbatched)."""

    def __init__(
        self,
        gm: torch.fx.GraphModule,
        in_dims: tuple[Any, ...],
        out_dims: tuple[int, ...],
        randomness: str,
    ) -> None:
        self.gm = gm
        self.in_dims = in_dims
        self.out_dims = out_dims
        self.randomness = randomness
        self.__name__ = "vmapped_graph"

    def __call__(self, *args: Any) -> Any:
        fn = torch.vmap(
            self.gm, in_dims=self.in_dims, out_dims=self.out_dims, randomness=self.randomness
        )
        return tuple(fn(*args))

    def __repr__(self) -> str:
        return f"vmap(in_dims={self.in_dims}, out_dims={self.out_dims})"
