//! Closure cells: made in the trace (`Value::Cell`), or of a function that exists outside
//! it (`Value::ExternalCell`, read and guarded only when loaded). Only LOAD_DEREF /
//! STORE_DEREF touch their contents.

use super::Family;
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Cell;

impl Family for Cell {
    fn name(&self) -> &'static str {
        "cell"
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }
}
