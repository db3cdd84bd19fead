//! Python modules (`math`, `torch.nn.functional`, user modules): attributes read through
//! the module's dict with guards; a module is not callable.

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::exit::{Exit, TResult};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct PythonModule;

impl Family for PythonModule {
    fn name(&self) -> &'static str {
        "module"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant
    );

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        let f = obj(v)?.obj.bind(tx.py).clone();
        Err(Exit::brk(format!(
            "call to non-traceable function {}",
            tx.describe(&f)
        )))
    }
}
