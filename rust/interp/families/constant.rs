//! Constants: immutable Python values (None, bools, numbers, strings, dtypes, torch.Size,
//! ranges, ...). Their attributes and methods are pure, so calls on constants fold.

use std::rc::Rc;

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::kinds::*;
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::{IterVal, ObjVal, Value};

pub struct Constant;

impl Family for Constant {
    fn name(&self) -> &'static str {
        "constant"
    }

    /// The constant itself (an `id()` of an object made in the trace cannot leave).
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let _ = out;
        let Value::Const(c) = v else {
            return Err(Exit::internal("Constant family on another value"));
        };
        crate::interp::output::no_fake_id(tx, c)?;
        Ok(OutTemplate::Const(c.clone_ref(tx.py)))
    }

    fn getattr(&self, tx: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let py = tx.py;
        let Value::Const(c) = v else {
            return Err(Exit::internal("constant family on another value"));
        };
        let r = c.bind(py).getattr(name).map_err(|_| {
            Exit::brk(format!(
                "'{}' object has no attribute '{name}'",
                v.type_name(py)
            ))
        })?;
        let a = tx.realize(&r, None)?;
        // Methods of immutable constants are pure: calls on constant args fold.
        Ok(match a {
            Value::Object(o)
                if r.is_callable() && matches!(o.kind, KIND_UNSUPPORTED | KIND_OBJECT) =>
            {
                Value::Object(Rc::new(ObjVal {
                    obj: o.obj.clone_ref(py),
                    kind: KIND_PURE,
                    source: None,
                }))
            }
            other => other,
        })
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, _: Args, _: Kwargs) -> TResult<Value> {
        // Callable constants do not exist among the constant types; report clearly.
        Err(Exit::brk(format!(
            "'{}' object is not callable",
            v.type_name(tx.py)
        )))
    }

    super::container_methods!();

    fn iter(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        let py = tx.py;
        let Value::Const(c) = v else {
            return Err(Exit::internal("constant family on another value"));
        };
        let c = c.bind(py);
        if let Ok(r) = c.cast::<pyo3::types::PyRange>() {
            let int = |name: &str| -> TResult<i64> {
                r.getattr(name)
                    .and_then(|x| x.extract())
                    .map_err(|e| tx.err(e))
            };
            return Ok(Value::new_iter(IterVal::Range {
                next: int("start")?,
                stop: int("stop")?,
                step: int("step")?,
            }));
        }
        let it = c
            .try_iter()
            .map_err(|_| Exit::brk(format!("'{}' object is not iterable", v.type_name(py))))?;
        let mut items = Vec::new();
        for x in it {
            let x = x.map_err(|e| tx.err(e))?;
            items.push(tx.realize(&x, None)?);
        }
        Ok(crate::interp::iter::items_iter(items))
    }

    fn truthy(&self, tx: &mut Tracer<'_>, v: &Value) -> TResult<bool> {
        match v {
            Value::Const(c) => c.bind(tx.py).is_truthy().map_err(|e| tx.err(e)),
            _ => Err(Exit::internal("constant family on another value")),
        }
    }

    fn python_type<'py>(&self, tx: &Tracer<'py>, v: &Value) -> TResult<Bound<'py, PyAny>> {
        match v {
            Value::Const(c) => Ok(c.bind(tx.py).get_type().into_any()),
            _ => Err(Exit::internal("constant family on another value")),
        }
    }

    fn as_constant<'py>(&self, tx: &Tracer<'py>, v: &Value) -> Option<Bound<'py, PyAny>> {
        match v {
            Value::Const(c) => Some(c.bind(tx.py).clone()),
            _ => None,
        }
    }
}
