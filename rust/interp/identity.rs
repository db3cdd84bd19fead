//! `lhs is rhs` on traced values: the same value, the same real object, or two inputs
//! whose (non-)identity is required of later calls; values of different types are never
//! one object.

use crate::ImportCached;
use std::rc::Rc;

use pyo3::prelude::*;

use super::exit::{Exit, TResult};
use super::tracer::Tracer;
use super::value::Value;

/// `lhs is rhs`.
pub fn is_same(tx: &mut Tracer<'_>, lhs: &Value, rhs: &Value) -> TResult<bool> {
    Ok(match (lhs, rhs) {
        (Value::Const(a), Value::Const(b)) => a.is(b),
        (Value::Tensor(a), Value::Tensor(b)) => {
            if a.is(b) {
                return Ok(true);
            }
            // Fake-tensor identity follows real identity: in-place ops return their input's
            // fake, and fakes are memoized per real tensor. Between two graph inputs the
            // answer could differ on a later call without a guard: break.
            let r = tx
                .gb
                .call_method1("same_tensor", (a.bind(tx.py), b.bind(tx.py)))
                .map_err(|e| tx.err(e))?;
            if r.is_none() {
                // Two distinct graph inputs: different objects now; require it on later calls.
                let (Some(sa), Some(sb)) = (tx.input_source(a), tx.input_source(b)) else {
                    return Err(Exit::brk("identity comparison of two input tensors"));
                };
                tx.identity.push((sa, sb, false));
                return Ok(false);
            }
            r.is_truthy().map_err(|e| tx.err(e))?
        }
        // Two objects from the inputs that are different now must stay different on a
        // later call (the same object reached twice is one mirror, its sameness guarded
        // where it was realized).
        (Value::Object(a), Value::Object(b)) => {
            let same = a.obj.is(&b.obj);
            if let (false, Some(sa), Some(sb)) = (same, &a.source, &b.source) {
                tx.identity.push((sa.clone(), sb.clone(), false));
            }
            same
        }
        (Value::Tuple(a), Value::Tuple(b)) => {
            let same = Rc::ptr_eq(a, b);
            // Two tuples from the inputs that are different objects now must stay so.
            let src = |t: &Rc<Vec<Value>>| {
                tx.tuple_sources
                    .get(&(Rc::as_ptr(t) as *const u8 as usize))
                    .cloned()
            };
            if let (false, Some(sa), Some(sb)) = (same, src(a), src(b)) {
                tx.identity.push((sa, sb, false));
            }
            same
        }
        (Value::List(a), Value::List(b)) => {
            let same = Rc::ptr_eq(a, b);
            if let (false, Some(sa), Some(sb)) = (same, &a.source, &b.source) {
                tx.identity.push((sa.clone(), sb.clone(), false));
            }
            same
        }
        (Value::Dict(a), Value::Dict(b)) => {
            let same = Rc::ptr_eq(a, b);
            if let (false, Some(sa), Some(sb)) = (same, &a.source, &b.source) {
                tx.identity.push((sa.clone(), sb.clone(), false));
            }
            same
        }
        (Value::Exception(a), Value::Exception(b)) => Rc::ptr_eq(a, b),
        (Value::Std(a), Value::Std(b)) => Rc::ptr_eq(a, b),
        (Value::Function(a), Value::Function(b)) => {
            Rc::ptr_eq(a, b) || matches!((&a.obj, &b.obj), (Some(x), Some(y)) if x.is(y))
        }
        (Value::Const(_), Value::Object(_)) | (Value::Object(_), Value::Const(_)) => false,
        // A tensor is never a non-tensor object (`default is not _MISSING`).
        (Value::Tensor(_), Value::Object(o)) | (Value::Object(o), Value::Tensor(_))
            if !is_tensor_object(tx, o) =>
        {
            false
        }
        (Value::Object(_) | Value::BoundMethod(_) | Value::BuiltinMethod(_), _)
        | (_, Value::Object(_)) => {
            // Objects of two different types are never one object (`field.default_factory
            // is not MISSING` over a list).
            let ta = crate::interp::families::python_type(tx, lhs);
            let tb = crate::interp::families::python_type(tx, rhs);
            if let (Ok(ta), Ok(tb)) = (ta, tb) {
                if !ta.is(&tb) {
                    return Ok(false);
                }
            }
            return Err(Exit::brk(format!(
                "identity comparison between '{}' and '{}'",
                lhs.type_name(tx.py),
                rhs.type_name(tx.py)
            )));
        }
        _ => false,
    })
}

fn is_tensor_object(tx: &Tracer<'_>, o: &super::value::ObjVal) -> bool {
    let py = tx.py;
    py.import_cached("torch")
        .and_then(|t| t.getattr("Tensor"))
        .and_then(|t| o.obj.bind(py).is_instance(&t))
        .unwrap_or(true)
}
