//! Operators: binary/unary/comparison, truthiness, membership, subscripts and value
//! formatting (identity is `identity.rs`). Constants fold through the real Python operator;
//! anything involving a tensor becomes a graph node; containers follow Python's sequence semantics.

use crate::ImportCached;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::calls::{call_dunder, graph_call};
use super::exit::{Exit, TResult};
use super::kinds::*;
use super::tracer::Tracer;
use super::value::{ObjVal, Value};
use crate::bytecode::Opcode;

pub use super::identity::is_same;

/// `BINARY_OP` argument -> `operator` module function name (3.11 NB_* order).
const BINARY_OPS: [&str; 26] = [
    "add",
    "and_",
    "floordiv",
    "lshift",
    "matmul",
    "mul",
    "mod",
    "or_",
    "pow",
    "rshift",
    "sub",
    "truediv",
    "xor",
    "iadd",
    "iand",
    "ifloordiv",
    "ilshift",
    "imatmul",
    "imul",
    "imod",
    "ior",
    "ipow",
    "irshift",
    "isub",
    "itruediv",
    "ixor",
];
const BINARY_SYMBOLS: [&str; 13] = [
    "+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^",
];
/// `COMPARE_OP` argument -> `operator` function (3.11: <, <=, ==, !=, >, >=).
const COMPARE_OPS: [&str; 6] = ["lt", "le", "eq", "ne", "gt", "ge"];

fn operator_fn<'py>(tx: &Tracer<'py>, name: &str) -> TResult<Bound<'py, PyAny>> {
    tx.hooks
        .operator
        .bind(tx.py)
        .getattr(name)
        .map_err(|e| tx.err(e))
}

/// Call a real operator on constants; a Python exception means eager raises here too, so
/// the frame falls back to eager, which raises it for real.
fn fold<'py>(
    tx: &mut Tracer<'py>,
    f: &Bound<'py, PyAny>,
    args: &[Bound<'py, PyAny>],
    what: &str,
) -> TResult<Value> {
    let t = PyTuple::new(tx.py, args).map_err(|e| tx.err(e))?;
    match f.call1(t) {
        Ok(r) => tx.realize(&r, None),
        Err(e) => Err(super::exceptions::from_real_error(tx, e, what)),
    }
}

pub fn binary_op(tx: &mut Tracer<'_>, op: usize, lhs: &Value, rhs: &Value) -> TResult<Value> {
    let py = tx.py;
    let name = *BINARY_OPS
        .get(op)
        .ok_or_else(|| Exit::internal("bad BINARY_OP"))?;
    let sym = BINARY_SYMBOLS[op % 13];
    let inplace = op >= 13;
    if lhs.is_tensor() {
        let f = operator_fn(tx, name)?;
        return graph_call(tx, &f, &[lhs.clone(), rhs.clone()], &[]);
    }
    // `n += t` with a Python number `n` is `n = n + t` (numbers have no in-place form);
    // a list or an object on the left keeps its own meaning, below.
    if rhs.is_tensor() && (!inplace || matches!(lhs, Value::Const(_))) {
        let plain = BINARY_OPS.get(op % 13).copied().unwrap_or(name);
        let f = operator_fn(tx, plain)?;
        return graph_call(tx, &f, &[lhs.clone(), rhs.clone()], &[]);
    }
    // Counters made in the trace: `+ - | &` count as collections.Counter does.
    if let Some(v) = super::stdlib_dict::counter_binary(tx, op, lhs, rhs)? {
        return Ok(v);
    }
    // A torch.Size with symbolic sizes (dynamic shapes) concatenates like a tuple, into a
    // torch.Size when it is on the left (as `torch.Size.__add__` does).
    if op.is_multiple_of(13) {
        let size_l = tx.size_items(lhs);
        let size_r = tx.size_items(rhs);
        if size_l.is_some() || size_r.is_some() {
            let items = |v: &Value, s: Option<Vec<Value>>| match (v, s) {
                (_, Some(s)) => Some(s),
                (Value::Tuple(t), None) => Some((**t).clone()),
                _ => None,
            };
            if let (Some(mut a), Some(b)) = (items(lhs, size_l.clone()), items(rhs, size_r)) {
                a.extend(b);
                return Ok(if size_l.is_some() {
                    tx.torch_size(a)?
                } else {
                    Value::new_tuple(a)
                });
            }
        }
    }
    // A constant tuple (`()`, `(1, 2)`) concatenated with a traced one.
    if op.is_multiple_of(13) && (matches!(lhs, Value::Tuple(_)) || matches!(rhs, Value::Tuple(_))) {
        let items = |v: &Value| match v {
            Value::Tuple(t) => Some((**t).clone()),
            Value::Const(c) => c
                .bind(py)
                .cast_exact::<pyo3::types::PyTuple>()
                .ok()
                .map(|t| t.iter().map(|i| Value::Const(i.unbind())).collect()),
            _ => None,
        };
        if let (Some(mut a), Some(b)) = (items(lhs), items(rhs)) {
            // CPython hands back the other operand itself when one side is empty.
            match (lhs, rhs) {
                (Value::Tuple(_), _) if b.is_empty() => return Ok(lhs.clone()),
                (_, Value::Tuple(_)) if a.is_empty() => return Ok(rhs.clone()),
                _ => {}
            }
            a.extend(b);
            return Ok(Value::new_tuple(a));
        }
    }
    match (lhs, rhs) {
        (Value::Tuple(a), Value::Tuple(b)) if op.is_multiple_of(13) => {
            let mut v = (**a).clone();
            v.extend(b.iter().cloned());
            return Ok(Value::new_tuple(v));
        }
        (Value::List(a), Value::List(b)) if op == 0 => {
            let mut v = a.items.borrow().clone();
            v.extend(b.items.borrow().iter().cloned());
            return Ok(Value::new_list(v));
        }
        // `d1 | d2` (a new dict) and `d1 |= d2` (d1 updated in place), right side winning.
        (Value::Dict(a), Value::Dict(b)) if op % 13 == 7 => {
            let entries = |d: &super::value::DictVal| -> Vec<(Py<PyAny>, Value)> { d.snapshot(py) };
            let right = entries(b);
            let target = if inplace {
                tx.dict_mutating(a)?;
                a.clone()
            } else {
                match Value::new_dict_from(entries(a)) {
                    Value::Dict(d) => d,
                    _ => return Err(Exit::internal("dict union")),
                }
            };
            for (k, v) in right {
                super::dispatch::dict_set(tx, &target, k, v);
            }
            return Ok(Value::Dict(target));
        }
        (Value::List(a), other) if op == 13 => {
            tx.list_mutating(a)?;
            let items = super::iter::unpack(tx, other)?;
            a.items.borrow_mut().extend(items);
            return Ok(lhs.clone());
        }
        (Value::Tuple(_) | Value::List(_), Value::Const(n))
        | (Value::Const(n), Value::Tuple(_) | Value::List(_))
            if op % 13 == 5 =>
        {
            if let Ok(n) = n.bind(py).extract::<i64>() {
                let seq = if matches!(lhs, Value::Const(_)) {
                    rhs
                } else {
                    lhs
                };
                let items = super::iter::unpack(tx, seq)?;
                let mut out = Vec::new();
                for _ in 0..n.max(0) {
                    out.extend(items.iter().cloned());
                }
                return Ok(match seq {
                    Value::Tuple(_) => Value::new_tuple(out),
                    _ => Value::new_list(out),
                });
            }
        }
        _ => {}
    }
    let set_op = match op % 13 {
        1 => "and",
        7 => "or",
        10 => "sub",
        12 => "xor",
        _ => "",
    };
    if !set_op.is_empty() {
        if let Some(v) = super::stdlib_set::set_algebra(tx, set_op, lhs, rhs, inplace)? {
            return Ok(v);
        }
    }
    let plain_name = BINARY_OPS[op % 13].trim_end_matches('_');
    if let Some(r) = super::dunder_ops::binary(tx, plain_name, sym, inplace, lhs, rhs)? {
        return Ok(r);
    }
    if let (Some(a), Some(b)) = (tx.as_python_constant(lhs), tx.as_python_constant(rhs)) {
        if !inplace || matches!(lhs, Value::Const(_)) {
            let f = operator_fn(tx, name)?;
            return fold(tx, &f, &[a, b], &format!("`{sym}`"));
        }
    }
    if let Value::Object(o) = lhs {
        if o.kind == KIND_OBJECT || o.kind == KIND_NN_MODULE {
            let dunder = format!("__{}__", name.trim_end_matches('_'));
            return call_dunder(tx, lhs, &dunder, vec![rhs.clone()]);
        }
    }
    Err(Exit::brk(format!(
        "unsupported operand types for {sym}: '{}' and '{}'",
        lhs.type_name(py),
        rhs.type_name(py)
    )))
}

pub fn compare_op(tx: &mut Tracer<'_>, op: usize, lhs: &Value, rhs: &Value) -> TResult<Value> {
    let name = *COMPARE_OPS
        .get(op)
        .ok_or_else(|| Exit::internal("bad COMPARE_OP"))?;
    let f = operator_fn(tx, name)?;
    if lhs.is_tensor() || rhs.is_tensor() {
        return graph_call(tx, &f, &[lhs.clone(), rhs.clone()], &[]);
    }
    if matches!(op, 2 | 3) {
        if let Some(r) = symbolic_sequence_eq(tx, lhs, rhs, op == 3)? {
            return Ok(r);
        }
    }
    // A user object: its Python `__eq__`/`__lt__`/... traced (objects from the frame are
    // constants too, but folding would run user code and bake its answer in).
    if let Some(r) = super::dunder_ops::rich_compare(tx, op, lhs, rhs)? {
        return Ok(r);
    }
    if let Some(r) = super::dunder_ops::sequence_compare(tx, op, lhs, rhs)? {
        return Ok(r);
    }
    if let (Some(a), Some(b)) = (tx.as_python_constant(lhs), tx.as_python_constant(rhs)) {
        return fold(tx, &f, &[a, b], "comparison");
    }
    // A list/tuple/dict-subclass object compares by its contents (its builtin's C rich
    // comparison): compare those; another object with a C comparison breaks.
    let (l2, r2) = (
        super::container_objects::compared_contents(tx, lhs)?,
        super::container_objects::compared_contents(tx, rhs)?,
    );
    if l2.is_some() || r2.is_some() {
        let l2 = l2.unwrap_or_else(|| lhs.clone());
        let r2 = r2.unwrap_or_else(|| rhs.clone());
        return compare_op(tx, op, &l2, &r2);
    }
    let modelled = |v: &Value| match v {
        Value::Std(_) => true,
        Value::Dict(d) => tx.stdlib.tag(d).is_some(),
        _ => false,
    };
    if (modelled(lhs) || modelled(rhs)) && !is_same(tx, lhs, rhs)? {
        // Equal contents would compare equal: not decidable by identity.
        return Err(Exit::brk(format!(
            "comparison between '{}' and '{}' holding non-constants",
            lhs.type_name(tx.py),
            rhs.type_name(tx.py)
        )));
    }
    if matches!(op, 2 | 3) {
        // Values of different kinds that are not constants: == falls back to identity.
        let same = is_same(tx, lhs, rhs)?;
        return Ok(Value::constant(tx.py, same == (op == 2)));
    }
    Err(Exit::brk(format!(
        "comparison between '{}' and '{}'",
        lhs.type_name(tx.py),
        rhs.type_name(tx.py)
    )))
}

/// `size == (4, 6)` (or `!=`) where a side holds symbolic sizes: the items compared one by
/// one into one symbolic bool (an `and` of the item comparisons), as the sequence's own
/// `==` would decide, so the sizes stay symbolic (folding would specialise them). None:
/// no symbolic item, or not two sequences.
fn symbolic_sequence_eq(
    tx: &mut Tracer<'_>,
    lhs: &Value,
    rhs: &Value,
    negate: bool,
) -> TResult<Option<Value>> {
    let py = tx.py;
    let items = |tx: &Tracer<'_>, v: &Value| -> Option<Vec<Value>> {
        match v {
            Value::Tuple(t) => Some((**t).clone()),
            Value::NamedTuple(_) => tx.size_items(v),
            Value::Const(c) => {
                let t = c.bind(py).cast::<pyo3::types::PyTuple>().ok()?;
                Some(t.iter().map(|i| Value::Const(i.unbind())).collect())
            }
            _ => None,
        }
    };
    let (Some(a), Some(b)) = (items(tx, lhs), items(tx, rhs)) else {
        return Ok(None);
    };
    if !a.iter().chain(b.iter()).any(|v| tx.is_symbolic(v)) {
        return Ok(None);
    }
    if a.len() != b.len() {
        return Ok(Some(Value::constant(py, negate)));
    }
    let mut parts = Vec::new();
    for (x, y) in a.iter().zip(b.iter()) {
        let r = compare_op(tx, 2, x, y)?;
        if tx.is_symbolic(&r) {
            parts.push(r);
            continue;
        }
        match r.as_const(py).map(|c| c.is_truthy()) {
            Some(Ok(true)) => {}
            Some(Ok(false)) => return Ok(Some(Value::constant(py, negate))),
            _ => return Ok(None),
        }
    }
    let and = operator_fn(tx, "and_")?;
    let mut acc = match parts.pop() {
        Some(p) => p,
        None => return Ok(Some(Value::constant(py, !negate))),
    };
    for p in parts {
        acc = graph_call(tx, &and, &[p, acc], &[])?;
    }
    if negate {
        let not = py
            .import_cached("torch")
            .and_then(|t| t.getattr("sym_not"))
            .map_err(|e| tx.err(e))?;
        acc = graph_call(tx, &not, &[acc], &[])?;
    }
    Ok(Some(acc))
}

pub fn unary_op(tx: &mut Tracer<'_>, op: Opcode, v: &Value) -> TResult<Value> {
    if op == Opcode::UNARY_NOT {
        let t = crate::interp::families::truthy(tx, v)?;
        return Ok(Value::constant(tx.py, !t));
    }
    let name = match op {
        Opcode::UNARY_NEGATIVE => "neg",
        Opcode::UNARY_POSITIVE => "pos",
        _ => "invert",
    };
    let f = operator_fn(tx, name)?;
    if v.is_tensor() {
        return graph_call(tx, &f, std::slice::from_ref(v), &[]);
    }
    if let Some(r) = super::dunder_ops::unary(tx, name, v)? {
        return Ok(r);
    }
    match tx.as_python_constant(v) {
        Some(c) => fold(tx, &f, &[c], "unary operator"),
        None => Err(Exit::brk(format!(
            "unary operator on a '{}'",
            v.type_name(tx.py)
        ))),
    }
}

/// `item in container`.
pub fn contains(tx: &mut Tracer<'_>, container: &Value, item: &Value) -> TResult<bool> {
    let py = tx.py;
    if let Value::Std(s) = container {
        return super::stdlib_set::contains(tx, s, item);
    }
    if container.is_tensor() || item.is_tensor() {
        return Err(Exit::brk(
            "membership test involving a tensor (depends on tensor data)",
        ));
    }
    if let Value::Dict(d) = container {
        let key = tx
            .as_python_constant(item)
            .ok_or_else(|| Exit::brk("dict membership of a non-constant key"))?;
        return Ok(d.position(py, &key).is_some());
    }
    if let Value::Object(o) = container {
        if o.kind == KIND_OBJECT && super::containers::stock_seq(tx, o) {
            // A list/tuple subclass with the stock item access and `__contains__`.
            if let Some(m) = super::containers::stock_seq_method(tx, o, "__contains__")? {
                let r = crate::interp::families::call(tx, &m, vec![item.clone()], Vec::new())?;
                return crate::interp::families::truthy(tx, &r);
            }
        }
        if let Some(r) =
            super::set_objects::dunder(tx, o, "__contains__", std::slice::from_ref(item))?
        {
            return crate::interp::families::truthy(tx, &r);
        }
        let py_contains = o.kind == KIND_OBJECT
            && o.obj
                .bind(py)
                .get_type()
                .getattr("__contains__")
                .is_ok_and(|f| f.is_instance_of::<pyo3::types::PyFunction>());
        if super::containers::is_sub_dict(o) || py_contains {
            // A dict subclass: its keys are read (and guarded) like its other reads, or its
            // own Python `__contains__` is traced (as for any user object defining one).
            let r = call_dunder(tx, container, "__contains__", vec![item.clone()])?;
            return crate::interp::families::truthy(tx, &r);
        }
    }
    if super::dunder_ops::compares_by_dunder(tx, container) {
        // No Python `__contains__` (traced above): CPython iterates it (its `__iter__` or
        // `__getitem__`), user code that must run on every call.
        return Err(Exit::brk(format!(
            "`in` on a '{}' without __contains__",
            container.type_name(py)
        )));
    }
    if let Value::Tuple(_) | Value::List(_) = container {
        let items = super::iter::unpack(tx, container)?;
        if super::dunder_ops::compares_by_dunder(tx, item)
            || items
                .iter()
                .any(|v| super::dunder_ops::compares_by_dunder(tx, v))
        {
            // As list/tuple `__contains__`: identity, else `element == item` (traced).
            for v in items {
                if is_same(tx, &v, item)? {
                    return Ok(true);
                }
                let r = compare_op(tx, 2, &v, item)?;
                if crate::interp::families::truthy(tx, &r)? {
                    return Ok(true);
                }
            }
            return Ok(false);
        }
    }
    if let (Some(c), Some(i)) = (
        tx.as_python_constant(container),
        tx.as_python_constant(item),
    ) {
        return c
            .contains(i)
            .map_err(|e| Exit::brk(format!("`in` raised {}", e.value(py))));
    }
    if let Value::Tuple(_) | Value::List(_) = container {
        for v in super::iter::unpack(tx, container)? {
            if is_same(tx, &v, item).unwrap_or(false) {
                return Ok(true);
            }
        }
        return Err(Exit::brk("membership test over non-constant values"));
    }
    Err(Exit::brk(format!(
        "`in` on a '{}'",
        container.type_name(py)
    )))
}

fn const_index(tx: &Tracer<'_>, idx: &Value) -> Option<i64> {
    match idx {
        Value::Const(c) => c.bind(tx.py).extract::<i64>().ok(),
        // A symbolic int (dynamic shapes) indexes as its value in this trace (guarded).
        Value::Tensor(_) => tx
            .as_python_constant(idx)
            .and_then(|c| c.extract::<i64>().ok()),
        _ => None,
    }
}

/// `obj[idx]`.
pub fn subscr(tx: &mut Tracer<'_>, obj: &Value, idx: &Value) -> TResult<Value> {
    let py = tx.py;
    match obj {
        Value::NamedTuple(n) => {
            let r = subscr(tx, &n.as_tuple(), idx)?;
            // Slicing a torch.Size gives a torch.Size.
            match (&r, tx.size_items(obj).is_some()) {
                (Value::Tuple(t), true) => tx.torch_size((**t).clone()),
                _ => Ok(r),
            }
        }
        Value::Tensor(_) => {
            let f = operator_fn(tx, "getitem")?;
            graph_call(tx, &f, &[obj.clone(), idx.clone()], &[])
        }
        Value::Tuple(_) | Value::List(_) => {
            let items = super::iter::unpack(tx, obj)?;
            if let Some(i) = const_index(tx, idx) {
                let n = items.len() as i64;
                let j = if i < 0 { i + n } else { i };
                return items
                    .get(usize::try_from(j).unwrap_or(usize::MAX))
                    .cloned()
                    .ok_or_else(|| match obj {
                        // A list read from the caller breaks (its length may change).
                        Value::List(l) if l.source.is_some() => {
                            Exit::brk("list index out of range")
                        }
                        _ => super::exceptions::raise_builtin(
                            py,
                            "IndexError",
                            format!("{} index out of range", obj.type_name(py)),
                        ),
                    });
            }
            if let Value::Slice(_) = idx {
                let s = tx
                    .as_python_constant(idx)
                    .ok_or_else(|| Exit::brk("slice with non-constant bounds"))?;
                let n = items.len();
                let ind = s.call_method1("indices", (n,)).map_err(|e| tx.err(e))?;
                let (start, stop, step): (i64, i64, i64) = ind.extract().map_err(|e| tx.err(e))?;
                let r = tx
                    .hooks
                    .b
                    .range
                    .bind(py)
                    .call1((start, stop, step))
                    .map_err(|e| tx.err(e))?;
                let mut out = Vec::new();
                for j in r.try_iter().map_err(|e| tx.err(e))? {
                    let j: usize = j.and_then(|j| j.extract()).map_err(|e| tx.err(e))?;
                    out.push(items[j].clone());
                }
                return Ok(match obj {
                    Value::Tuple(_) => Value::new_tuple(out),
                    _ => Value::new_list(out),
                });
            }
            Err(Exit::brk(
                "sequence index that is not a constant int or slice",
            ))
        }
        Value::Dict(d) => {
            let key = tx
                .as_python_constant(idx)
                .ok_or_else(|| Exit::brk("dict lookup with a non-constant key"))?;
            let found = tx.dict_get(d, &key)?;
            match found {
                Some(v) => Ok(v),
                None if tx.stdlib.tag(d).is_some() => super::stdlib::dict_missing(tx, d, &key),
                // A missing key: the KeyError user code can catch (a pre-existing dict's
                // key set is guarded where it was read, so the key stays missing).
                None => Err(super::exceptions::key_error(
                    py,
                    Value::Const(key.clone().unbind()),
                )),
            }
        }
        Value::Std(s) => super::stdlib_set::subscr(tx, s, idx),
        Value::Const(c) => {
            let i = tx
                .as_python_constant(idx)
                .ok_or_else(|| Exit::brk("indexing a constant with a non-constant"))?;
            match c.bind(py).get_item(i) {
                Ok(r) => tx.realize(&r, None),
                Err(e) => Err(Exit::brk(format!("indexing raised {}", e.value(py)))),
            }
        }
        Value::Object(o)
            if o.kind == KIND_OBJECT
                && const_index(tx, idx).is_some()
                && super::containers::stock_seq(tx, o) =>
        {
            // A list/tuple subclass with the stock item access: as a plain sequence.
            let items = super::containers::stock_seq_items(tx, o)?;
            subscr(tx, &Value::new_tuple(items), idx)
        }
        Value::Object(o) => {
            // `list[int]`, `dict[str, int]`: a builtin class's C `__class_getitem__` on
            // constants makes a types.GenericAlias (no user code).
            if matches!(o.kind, KIND_CLASS | KIND_PURE) {
                let cls = o.obj.bind(py);
                let builtin_cgi = cls
                    .getattr("__class_getitem__")
                    .is_ok_and(|m| stock_class_getitem(&m));
                if let (true, Some(i)) = (builtin_cgi, tx.as_python_constant(idx)) {
                    let r = cls.get_item(i).map_err(|e| tx.err(e))?;
                    return tx.realize(&r, None);
                }
            }
            if let (KIND_NN_MODULE, Some(src), Value::Slice(_)) = (o.kind, &o.source, idx) {
                if let Some(v) = module_list_slice(tx, obj, o, src, idx)? {
                    return Ok(v);
                }
            }
            if let (KIND_NN_MODULE, Some(src), Some(i)) =
                (o.kind, &o.source, tx.as_python_constant(idx))
            {
                let key = tx.hooks.module_item_key.bind(py).call1((o.obj.bind(py), i));
                let key =
                    key.map_err(|e| Exit::brk(format!("module indexing raised {}", e.value(py))))?;
                if let Ok(key) = key.extract::<String>() {
                    use crate::guards::{DictKey, Guard, Source};
                    use std::sync::Arc;
                    let modules = Arc::new(Source::DictItem {
                        base: Arc::new(Source::InstDict { base: src.clone() }),
                        key: DictKey::Str("_modules".into()),
                    });
                    let n = o
                        .obj
                        .bind(py)
                        .getattr("_modules")
                        .and_then(|m| m.len())
                        .map_err(|e| tx.err(e))?;
                    tx.guard(&modules, Guard::Len(n));
                    let child = o
                        .obj
                        .bind(py)
                        .getattr("_modules")
                        .and_then(|m| m.get_item(&key))
                        .map_err(|e| tx.err(e))?;
                    let csrc = Arc::new(Source::DictItem {
                        base: modules,
                        key: DictKey::Str(key),
                    });
                    return tx.realize(&child, Some(csrc));
                }
            }
            call_dunder(tx, obj, "__getitem__", vec![idx.clone()])
        }
        _ => Err(Exit::brk(format!("subscript of a '{}'", obj.type_name(py)))),
    }
}

/// A class's `__class_getitem__` that only builds an alias object: a builtin's C one, or
/// `collections.abc`'s `classmethod(GenericAlias)` / `classmethod(_CallableGenericAlias)`
/// (stdlib alias classes; no user code runs).
fn stock_class_getitem(m: &Bound<'_, PyAny>) -> bool {
    if m.get_type()
        .name()
        .is_ok_and(|n| n == "builtin_function_or_method")
    {
        return true;
    }
    let Ok(func) = m.getattr("__func__") else {
        return false;
    };
    let Ok(ty) = func.cast::<pyo3::types::PyType>() else {
        return false;
    };
    ty.module().is_ok_and(|module| {
        let module = module.to_string();
        module == "builtins" || module == "types" || module == "collections.abc"
    }) && ty
        .name()
        .is_ok_and(|n| n == "GenericAlias" || n == "_CallableGenericAlias")
}

/// `m[a:b]` of a stock `nn.ModuleList` read from the frame: the modules it holds, each
/// with its own source under `m._modules`, guarded on the number of modules (None: not a
/// stock ModuleList, or not a constant slice).
fn module_list_slice(
    tx: &mut Tracer<'_>,
    obj: &Value,
    o: &super::value::ObjVal,
    src: &std::sync::Arc<crate::guards::Source>,
    idx: &Value,
) -> TResult<Option<Value>> {
    use crate::guards::{DictKey, Guard, Source};
    use std::sync::Arc;
    let py = tx.py;
    let Some(slice) = tx.as_python_constant(idx) else {
        return Ok(None);
    };
    let keys = tx
        .hooks
        .module_slice_keys
        .bind(py)
        .call1((o.obj.bind(py), &slice))
        .map_err(|e| tx.err(e))?;
    if keys.is_none() {
        return Ok(None);
    }
    let keys: Vec<String> = keys.extract().map_err(|e| tx.err(e))?;
    let modules = Arc::new(Source::DictItem {
        base: Arc::new(Source::InstDict { base: src.clone() }),
        key: DictKey::Str("_modules".into()),
    });
    let all = o.obj.bind(py).getattr("_modules").map_err(|e| tx.err(e))?;
    tx.guard(&modules, Guard::Len(all.len().map_err(|e| tx.err(e))?));
    let mut items = Vec::with_capacity(keys.len());
    for key in keys {
        let child = all.get_item(&key).map_err(|e| tx.err(e))?;
        let csrc = Arc::new(Source::DictItem {
            base: modules.clone(),
            key: DictKey::Str(key),
        });
        items.push(tx.realize(&child, Some(csrc))?);
    }
    Ok(Some(Value::Std(std::rc::Rc::new(
        super::stdlib::StdVal::ModuleSlice {
            module: obj.clone(),
            slice: slice.unbind(),
            items,
        },
    ))))
}

/// `obj[k] = v` / `del obj[k]` (`name`: `__setitem__` / `__delitem__`) on a dict-subclass
/// object whose class keeps dict's own method: done on its mirror (`sub_dict_read`), true.
/// False for anything else (the caller goes on; a Python override breaks there, as
/// torch.compile's graph counts expect for objects it cannot construct).
pub fn sub_dict_item_op(
    tx: &mut Tracer<'_>,
    o: &ObjVal,
    name: &str,
    args: &[Value],
) -> TResult<bool> {
    let py = tx.py;
    if o.kind != KIND_OBJECT || !super::containers::is_sub_dict(o) {
        return Ok(false);
    }
    let Ok(f) = o.obj.bind(py).get_type().getattr(name) else {
        return Ok(false);
    };
    let own = tx
        .hooks
        .dict_read_method
        .bind(py)
        .call1((f, name))
        .and_then(|b| b.is_truthy())
        .unwrap_or(false);
    if own {
        super::containers::sub_dict_read(tx, o, name, args)?;
    }
    Ok(own)
}

/// `container[key] = value`.
pub fn store_subscr(
    tx: &mut Tracer<'_>,
    container: &Value,
    key: &Value,
    value: Value,
) -> TResult<()> {
    let py = tx.py;
    if let Value::Std(s) = container {
        if let super::stdlib::StdVal::InstDict { obj } = &**s {
            return super::inst_dict::store(tx, obj, key, Some(value));
        }
        if let super::stdlib::StdVal::ModelOutput { .. } = &**s {
            let k = key
                .as_const(py)
                .and_then(|k| k.extract::<String>().ok())
                .ok_or_else(|| Exit::brk("ModelOutput item assignment with a non-str key"))?;
            return super::model_output::store(tx, s, &k, value, true);
        }
    }
    if let Value::Object(o) = container {
        if sub_dict_item_op(tx, o, "__setitem__", &[key.clone(), value.clone()])? {
            return Ok(());
        }
        // A list-subclass object from the inputs with list's own `__setitem__`.
        if let Some(Value::BuiltinMethod(m)) =
            super::containers::stock_seq_method(tx, o, "__setitem__")?
        {
            return store_subscr(tx, &m.0, key, value);
        }
        // A `__setitem__` written in Python (a dict or list subclass's override, a
        // user mapping): traced.
        if o.kind == KIND_OBJECT && python_slot(tx, o, "__setitem__") {
            super::calls::call_dunder(tx, container, "__setitem__", vec![key.clone(), value])?;
            return Ok(());
        }
    }
    match container {
        Value::Tensor(_) => {
            let f = operator_fn(tx, "setitem")?;
            graph_call(tx, &f, &[container.clone(), key.clone(), value], &[])?;
            Ok(())
        }
        Value::List(l) => {
            tx.list_mutating(l)?;
            let i = const_index(tx, key)
                .ok_or_else(|| Exit::brk("list assignment with a non-constant index"))?;
            let mut items = l.items.borrow_mut();
            let n = items.len() as i64;
            let j = if i < 0 { i + n } else { i };
            match usize::try_from(j).ok().and_then(|j| items.get_mut(j)) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(Exit::brk("list assignment index out of range")),
            }
        }
        Value::Dict(d) => {
            if let Some((_, owner)) = tx.side_effects.namespace_mirrors.get(&ptr_of_dict(d)) {
                let owner = owner.clone();
                return super::inst_dict::store_through_mirror(tx, &owner, d, key, value);
            }
            let k = super::dispatch::dict_key_const(tx, key)?;
            tx.dict_mutating(d)?;
            super::dispatch::dict_set(tx, d, k, value);
            Ok(())
        }
        _ => Err(Exit::brk(format!(
            "item assignment on a '{}'",
            container.type_name(py)
        ))),
    }
}

/// `FORMAT_VALUE`: f-string conversion (`!s`, `!r`, `!a`) and format spec, on constants.
pub fn format_value(
    tx: &mut Tracer<'_>,
    v: &Value,
    conversion: usize,
    spec: Option<&Value>,
) -> TResult<Value> {
    let py = tx.py;
    if conversion == 0 {
        if let Some(r) = super::dunder_ops::format_by_dunder(tx, v, spec.cloned())? {
            return Ok(r);
        }
    } else if super::dunder_ops::compares_by_dunder(tx, v) {
        // `f"{obj!r}"`, `f"{obj!s}"`: `repr(obj)` / `str(obj)` (traced), then formatted.
        let f = py
            .import_cached("builtins")
            .and_then(|b| b.getattr(if conversion == 2 { "repr" } else { "str" }))
            .map_err(|e| tx.err(e))?;
        if conversion != 3 {
            if let Some(text) =
                super::dunder_ops::before_fold(tx, &f, std::slice::from_ref(v), &[])?
            {
                return format_value(tx, &text, 0, spec);
            }
        }
    }
    let c = tx
        .as_python_constant(v)
        .ok_or_else(|| Exit::brk(format!("f-string formatting of a '{}'", v.type_name(py))))?;
    let converted = match conversion {
        1 => c.str().map_err(|e| tx.err(e))?.into_any(),
        2 => c.repr().map_err(|e| tx.err(e))?.into_any(),
        3 => py
            .import_cached("builtins")
            .and_then(|b| b.getattr("ascii")?.call1((c,)))
            .map_err(|e| tx.err(e))?,
        _ => c,
    };
    let spec = match spec {
        Some(s) => s
            .as_const(py)
            .cloned()
            .ok_or_else(|| Exit::brk("non-constant format spec"))?,
        None => pyo3::types::PyString::new(py, "").into_any(),
    };
    let out = py
        .import_cached("builtins")
        .and_then(|b| b.getattr("format")?.call1((converted, spec)))
        .map_err(|e| Exit::brk(format!("format raised {e}")))?;
    Ok(Value::Const(out.unbind()))
}

/// `operator.<name>(...)` applied to symbolic values: the same semantics as the bytecode
/// operators. Ok(None) when the function is not one of these.
pub fn operator_on_values(
    tx: &mut Tracer<'_>,
    f: &Bound<'_, PyAny>,
    args: &[Value],
) -> TResult<Option<Value>> {
    let name: String = f
        .getattr("__name__")
        .and_then(|n| n.extract())
        .unwrap_or_default();
    let py = tx.py;
    Ok(Some(match (name.as_str(), args) {
        ("getitem", [a, b]) => subscr(tx, a, b)?,
        ("contains", [a, b]) => Value::constant(py, contains(tx, a, b)?),
        ("is_", [a, b]) => Value::constant(py, is_same(tx, a, b)?),
        ("is_not", [a, b]) => Value::constant(py, !is_same(tx, a, b)?),
        ("not_", [a]) => Value::constant(py, !crate::interp::families::truthy(tx, a)?),
        ("truth", [a]) => Value::constant(py, crate::interp::families::truthy(tx, a)?),
        ("neg", [a]) => unary_op(tx, Opcode::UNARY_NEGATIVE, a)?,
        ("pos", [a]) => unary_op(tx, Opcode::UNARY_POSITIVE, a)?,
        ("invert" | "inv", [a]) => unary_op(tx, Opcode::UNARY_INVERT, a)?,
        (n, [a, b]) => {
            if let Some(i) = COMPARE_OPS.iter().position(|c| *c == n) {
                compare_op(tx, i, a, b)?
            } else if let Some(i) = BINARY_OPS.iter().position(|c| *c == n) {
                binary_op(tx, i, a, b)?
            } else {
                return Ok(None);
            }
        }
        _ => return Ok(None),
    }))
}

fn ptr_of_dict(d: &std::rc::Rc<super::value::DictVal>) -> usize {
    std::rc::Rc::as_ptr(d) as usize
}

/// Whether `type(o).name` is a plain Python function (a dunder the tracer inlines).
pub fn python_slot(tx: &Tracer<'_>, o: &super::value::ObjVal, name: &str) -> bool {
    let py = tx.py;
    let ty = o.obj.bind(py).get_type();
    super::calls::class_raw_attr(&ty, name)
        .is_some_and(|f| f.get_type().name().is_ok_and(|n| n == "function"))
}

/// `del container[key]` on a list or dict value.
pub fn delete_subscr(tx: &mut Tracer<'_>, container: &Value, key: &Value) -> TResult<()> {
    let py = tx.py;
    if let Value::Object(o) = container {
        if crate::interp::ops::sub_dict_item_op(tx, o, "__delitem__", std::slice::from_ref(key))? {
            return Ok(());
        }
        // A `__delitem__` written in Python: traced.
        if o.kind == KIND_OBJECT && crate::interp::ops::python_slot(tx, o, "__delitem__") {
            crate::interp::calls::call_dunder(tx, container, "__delitem__", vec![key.clone()])?;
            return Ok(());
        }
    }
    match container {
        Value::List(l) => {
            let i: i64 = key
                .as_const(py)
                .filter(|c| c.get_type().name().map(|n| n == "int").unwrap_or(false))
                .and_then(|c| c.extract().ok())
                .ok_or_else(|| Exit::brk("del of a list item with a non-constant index"))?;
            let n = l.items.borrow().len() as i64;
            let j = if i < 0 { i + n } else { i };
            if j < 0 || j >= n {
                return Err(Exit::brk("list assignment index out of range (IndexError)"));
            }
            tx.list_mutating(l)?;
            l.items.borrow_mut().remove(j as usize);
            Ok(())
        }
        Value::Dict(d) => {
            let k = tx
                .as_python_constant(key)
                .ok_or_else(|| Exit::brk("del of a dict item with a non-constant key"))?;
            let Some(pos) = d.position(py, &k) else {
                return Err(Exit::brk(format!("KeyError: {k}")));
            };
            tx.dict_mutating(d)?;
            d.entries.borrow_mut().remove(pos);
            Ok(())
        }
        other => Err(Exit::brk(format!(
            "item deletion on a '{}'",
            other.type_name(py)
        ))),
    }
}
