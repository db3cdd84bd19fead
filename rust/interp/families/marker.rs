//! Torch compiler markers (`torch._dynamo.graph_break`, `torch.compiler.disable`d
//! functions, `is_compiling`, `allow_in_graph`, comptime, ...): what calling one does is
//! decided in `interp/markers.rs`.

use super::python_object::{self, obj, python_object_verbs};
use super::{Args, Family, Kwargs};
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Marker;

impl Family for Marker {
    fn name(&self) -> &'static str {
        "torch compiler marker"
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
        crate::interp::markers::call_marker(tx, obj(v)?, args, kwargs)
    }
}
