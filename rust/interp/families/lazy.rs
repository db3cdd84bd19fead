//! An unread entry of a dict from the inputs (`Value::Lazy`). It lives only inside a
//! `DictVal`, whose readers realize it first (`Tracer::dict_entry_at`): reaching any verb
//! is an internal error (the frame then runs eagerly), never a guess.

use super::Family;

pub struct Lazy;

impl Family for Lazy {
    fn name(&self) -> &'static str {
        "unread dict entry"
    }
}
