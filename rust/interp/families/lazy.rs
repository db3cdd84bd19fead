//! An unread entry of a dict from the inputs (`Value::Lazy`). It lives only inside a
//! `DictVal`, whose readers realize it first (`Tracer::dict_entry_at`): reaching any verb
//! is an internal error (the frame then runs eagerly), never a guess; rebuilt after the
//! graph, it is the object at its source.

use super::Family;
use crate::interp::exit::TResult;
use crate::interp::output::{OutTemplate, Rebuild};
use crate::interp::tracer::Tracer;
use crate::interp::value::Value;

super::representation!(entry, Lazy, crate::interp::value::LazyVal);

pub struct Lazy;

impl Family for Lazy {
    fn name(&self) -> &'static str {
        "unread dict entry"
    }

    /// An entry of a dict from the inputs the trace never read: the same object.
    fn reconstruct(
        &self,
        tx: &mut Tracer<'_>,
        v: &Value,
        out: &mut Rebuild<'_>,
    ) -> TResult<OutTemplate> {
        let _ = tx;
        let l = entry(v)?;
        Ok(out.fetch(&l.source))
    }
}
