//! `receiver.name` for a method a family models on its own values (a tensor method, a
//! list's `append`, a generator's `send`, ...), not yet called: calling it is the
//! receiver family's `call_method`.

use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct BuiltinMethod;

super::representation!(parts, BuiltinMethod, (Value, String));

impl Family for BuiltinMethod {
    fn name(&self) -> &'static str {
        "builtin method"
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
