//! `torch.vmap(f)(*args)` in a compiled region (the functorch higher-order op that
//! torch.compile records). `polyfills_vmap.vmap_impl` flattens the arguments and reaches the
//! marker `polyfills_vmap.vmap_in_graph(func, dims, out_dims, randomness, spec, kwargs,
//! *leaves)`, carried out here:
//!
//! 1. each batched leaf gets a slice node (`select(dim, 0)`), and `vmap_body` is traced on
//!    the slices: a break or an error in `f` is this call's break, and so is any side effect
//!    (the real `f` runs again inside `torch.vmap` when the graph runs);
//! 2. the ops `f` recorded move into a graph module of their own
//!    (`GraphBuilder.vmap_subgraph`), the slice nodes are rolled back, and the graph gets one
//!    node calling `polyfills_vmap.VmappedGraph` (`torch.vmap` of that module) on the leaves
//!    and on the tensors `f` read from outside.
//!
//! Guards `f` added while traced stay: they are what the module's ops depend on.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::calls::graph_call;
use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;
use crate::ImportCached;

/// `vmap_in_graph(func, dims, out_dims, randomness, spec, kwargs, *leaves)`.
pub fn vmap_in_graph(
    tx: &mut Tracer<'_>,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> TResult<Value> {
    let py = tx.py;
    if !kwargs.is_empty() || args.len() < 6 {
        return Err(Exit::internal(
            "vmap_in_graph called with the wrong arguments",
        ));
    }
    let (head, leaves) = args.split_at(6);
    let [func, dims, out_dims, randomness, spec, user_kwargs] = head else {
        return Err(Exit::internal(
            "vmap_in_graph called with the wrong arguments",
        ));
    };
    let dims: Vec<Option<i64>> = tx
        .as_python_constant(dims)
        .and_then(|d| d.extract().ok())
        .ok_or_else(|| Exit::internal("vmap_in_graph: dims are not constant"))?;
    let out_dims = tx
        .as_python_constant(out_dims)
        .ok_or_else(|| Exit::brk("torch.vmap: out_dims that are not constant"))?;
    let randomness = tx
        .as_python_constant(randomness)
        .ok_or_else(|| Exit::brk("torch.vmap: randomness that is not constant"))?;
    if dims.len() != leaves.len() {
        return Err(Exit::internal("vmap_in_graph: one dim per leaf expected"));
    }
    let module = py
        .import_cached("ferrodyn.polyfills_vmap")
        .map_err(|e| tx.err(e))?;
    let torch_select = py
        .import_cached("torch")
        .and_then(|t| t.getattr("select"))
        .map_err(|e| tx.err(e))?;

    // 1. Slices, then `f` traced on them.
    let outer_mark = tx.gb.call_method0("mark").map_err(|e| tx.err(e))?;
    let n_random = tx
        .gb
        .getattr("random_calls")
        .and_then(|r| r.len())
        .map_err(|e| tx.err(e))?;
    let mut slices = Vec::with_capacity(leaves.len());
    for (leaf, dim) in leaves.iter().zip(&dims) {
        match dim {
            Some(d) => {
                if !matches!(leaf, Value::Tensor(_)) {
                    return Err(Exit::brk(
                        "torch.vmap: a batched argument that is not a tensor",
                    ));
                }
                let args = [
                    leaf.clone(),
                    Value::constant(py, *d),
                    Value::constant(py, 0i64),
                ];
                slices.push(graph_call(tx, &torch_select, &args, &[])?);
            }
            None => slices.push(leaf.clone()),
        }
    }
    let inner_mark = tx.gb.call_method0("mark").map_err(|e| tx.err(e))?;
    let store_mark = tx.side_effects.mark();
    let body = module.getattr("vmap_body").map_err(|e| tx.err(e))?;
    let body = tx.realize(&body, None)?;
    let mut call_args = vec![func.clone(), spec.clone(), user_kwargs.clone()];
    call_args.extend(slices.iter().cloned());
    let out = crate::interp::families::call(tx, &body, call_args, Vec::new())?;
    if tx.side_effects.logged_since(&store_mark) {
        return Err(Exit::brk(
            "torch.vmap: the function changes objects from outside the call or prints (it \
             runs again inside torch.vmap)",
        ));
    }
    let (out_leaves, out_spec) = match &out {
        Value::Tuple(items) if items.len() == 2 => match &items[0] {
            Value::Tuple(ls) => (ls.to_vec(), items[1].clone()),
            _ => return Err(Exit::internal("vmap_body returned an unexpected value")),
        },
        _ => return Err(Exit::internal("vmap_body returned an unexpected value")),
    };
    let out_spec_obj = tx
        .as_python_constant(&out_spec)
        .ok_or_else(|| Exit::internal("vmap_body: output structure is not constant"))?;

    // 2. The recorded ops as a graph module; one node instead.
    // The module's parameters (slices and unbatched tensors) and the node's arguments
    // (the whole batched tensors in their place).
    let mut inputs = Vec::new();
    let mut node_args = Vec::new();
    let mut in_dims = Vec::new();
    for ((leaf, slice), dim) in leaves.iter().zip(&slices).zip(&dims) {
        match (dim, leaf) {
            (Some(d), _) => {
                inputs.push(slice.clone());
                node_args.push(leaf.clone());
                in_dims.push(Some(*d));
            }
            (None, Value::Tensor(_)) => {
                inputs.push(leaf.clone());
                node_args.push(leaf.clone());
                in_dims.push(None);
            }
            // Non-tensor unbatched leaves were read as constants by the traced body.
            (None, _) => {}
        }
    }
    let py_inputs: Vec<_> = inputs
        .iter()
        .map(|v| tx.to_graph_arg(v))
        .collect::<TResult<_>>()?;
    let py_outputs: Vec<_> = out_leaves
        .iter()
        .map(|v| tx.to_graph_arg(v))
        .collect::<TResult<_>>()?;
    let extracted = tx
        .gb
        .call_method1(
            "vmap_subgraph",
            (&inner_mark, py_inputs, py_outputs, n_random),
        )
        .map_err(|e| tx.err(e))?;
    let (gm, lifted): (Bound<'_, PyAny>, Vec<Bound<'_, PyAny>>) =
        extracted.extract().map_err(|e| tx.err(e))?;
    tx.gb
        .call_method1("rollback", (&outer_mark,))
        .map_err(|e| tx.err(e))?;
    let flat_out = module
        .getattr("flat_out_dims")
        .and_then(|f| f.call1((&out_dims, &out_spec_obj)))
        .map_err(|_| Exit::brk("torch.vmap: out_dims do not match the function's outputs"))?;
    for l in &lifted {
        node_args.push(tx.from_graph_result(l)?);
        in_dims.push(None);
    }
    let in_dims = PyTuple::new(py, in_dims).map_err(|e| tx.err(e))?;
    let target = module
        .getattr("VmappedGraph")
        .and_then(|c| c.call1((gm, in_dims, flat_out, randomness)))
        .map_err(|e| tx.err(e))?;
    let result = graph_call(tx, &target, &node_args, &[])?;
    Ok(Value::new_tuple(vec![result, out_spec]))
}
