//! Source rendering.

use std::sync::Arc;

use super::util::{attr, global, inst_dict, item, local};
use crate::guards::{DictKey, Source};

#[test]
fn render_paths() {
    let s = local(0, "self");
    let d = inst_dict(&s);
    let l1 = item(&item(&d, "_modules"), "l1");
    let w = item(&item(&inst_dict(&l1), "_parameters"), "weight");
    assert_eq!(w.render(), "self.l1.weight");
    assert_eq!(item(&d, "_modules").render(), "self._modules");
    assert_eq!(
        item(&d, "not an ident").render(),
        "self.__dict__['not an ident']"
    );
    assert_eq!(global("CONFIG").render(), "G['CONFIG']");
    assert_eq!(attr(&local(1, "x"), "shape").render(), "x.shape");
    let idx = Arc::new(Source::Index {
        base: local(1, "x"),
        index: 0,
    });
    assert_eq!(idx.render(), "x[0]");
    assert_eq!(
        Source::TypeOf {
            base: local(1, "x")
        }
        .render(),
        "type(x)"
    );
    let int_item = Source::DictItem {
        base: global("D"),
        key: DictKey::Int(3),
    };
    assert_eq!(int_item.render(), "G['D'][3]");
    assert_eq!(item(&global("D"), "it's").render(), "G['D'][\"it's\"]");
    let b = Source::Builtin { name: "len".into() };
    assert_eq!(b.render(), "__builtins__['len']");
}

#[test]
fn sources_hash_and_compare_structurally() {
    use std::collections::HashSet;
    let a = item(&inst_dict(&local(0, "self")), "x");
    let b = item(&inst_dict(&local(0, "self")), "x");
    assert_eq!(a, b);
    let set: HashSet<Arc<Source>> = [a, b].into_iter().collect();
    assert_eq!(set.len(), 1);
}
