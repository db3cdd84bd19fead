//! Iterators made in the trace (over ranges, items, enumerate/zip, a user iterator's
//! `__next__`): advanced by FOR_ITER and `next()` (`interp/iter.rs`).

use super::Family;
use crate::interp::exit::TResult;
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

super::representation!(
    iter_of,
    Iter,
    std::cell::RefCell<crate::interp::value::IterVal>
);

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
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let it = iter_of(v)?;
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
