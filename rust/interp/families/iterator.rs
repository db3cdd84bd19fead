//! Iterators made in the trace (over ranges, items, enumerate/zip, a user iterator's
//! `__next__`): advanced by FOR_ITER and `next()` (`interp/iter.rs`).

use super::Family;
use crate::interp::exit::TResult;
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

pub struct Iterator;

impl Family for Iterator {
    fn name(&self) -> &'static str {
        "iterator"
    }

    /// The iterator rebuilt in its current state (`output::iter_template`).
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut crate::interp::output::Rebuild<'_>,
    ) -> TResult<crate::interp::output::OutTemplate> {
        let Value::Iter(it) = v else {
            return Err(crate::interp::exit::Exit::internal(
                "Iterator family on another value",
            ));
        };
        crate::interp::output::iter_template(tx, it, out.outputs, out.extra)
    }

    /// An iterator is its own iterator.
    fn iter(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        Ok(v.clone())
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }
}
