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

    /// An iterator is its own iterator.
    fn iter(&self, _: &mut Tracer<'_>, v: &Value) -> TResult<Value> {
        Ok(v.clone())
    }

    fn truthy(&self, _: &mut Tracer<'_>, _: &Value) -> TResult<bool> {
        Ok(true)
    }
}
