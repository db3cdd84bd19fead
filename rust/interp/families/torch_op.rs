//! Torch functions and ops (`torch.add`, `F.relu`, `torch.Tensor.add`, ...): a call is a
//! graph node, its result a fake tensor (or a constant when the op folds).

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct TorchOp;

impl Family for TorchOp {
    fn name(&self) -> &'static str {
        "torch function"
    }

    python_object_verbs!(
        getattr,
        setattr,
        call_method,
        truthy,
        python_type,
        as_constant,
        reconstruct
    );

    fn call(&self, tx: &mut Tracer<'_>, v: &Value, args: Args, kwargs: Kwargs) -> TResult<Value> {
        if let Some(r) = python_object::call_prelude(tx, v, &args, &kwargs)? {
            return Ok(r);
        }
        let f = obj(v)?.obj.bind(tx.py).clone();
        crate::interp::calls::graph_call(tx, &f, &args, &kwargs)
    }
}
