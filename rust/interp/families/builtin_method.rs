//! `receiver.name` for a method a family models on its own values (a tensor method, a
//! list's `append`, a generator's `send`, ...), not yet called: calling it is the
//! receiver family's `call_method`.

use pyo3::prelude::*;

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct BuiltinMethod;

super::representation!(parts, BuiltinMethod, (Value, String));

impl Family for BuiltinMethod {
    fn name(&self) -> &'static str {
        "builtin method"
    }

    /// `getattr(receiver, name)` again (the C method under any Python override, on a
    /// user object reached through `super()`); a grad-mode context's `__exit__` is a helper
    /// that restores the mode.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let py = tx.py;
        let m = parts(v)?;
        Ok(match &m.0 {
            Value::GradMode(prev) => {
                let helper = crate::interp::output::py_attr(tx, "ferrodyn._glue", "GradModeExit")?;
                let obj = helper.bind(py).call1((*prev,)).map_err(|e| tx.err(e))?;
                OutTemplate::Const(obj.unbind())
            }
            recv => {
                let r = out.value(tx, recv)?;
                let name = pyo3::types::PyString::new(py, &m.1).into_any().unbind();
                let get = if matches!(recv, Value::Object(_)) {
                    crate::interp::output::py_attr(tx, "ferrodyn._glue", "builtin_method")?
                } else {
                    tx.hooks.b.getattr.clone_ref(py)
                };
                OutTemplate::Call(get, vec![r, OutTemplate::Const(name)])
            }
        })
    }

    fn getattr(&self, _: &mut Tracer<'_>, v: &Value, name: &str) -> TResult<Value> {
        let m = parts(v)?;
        match name {
            "__self__" => Ok(m.0.clone()),
            _ => Err(Exit::brk(format!(
                "attribute '{name}' of method {} of a {}",
                m.1,
                super::family_of(&m.0).name()
            ))),
        }
    }

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        let m = parts(v)?;
        super::call_method(tx, &m.0, &m.1, args, kwargs)
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }
}
