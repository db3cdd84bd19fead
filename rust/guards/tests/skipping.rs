//! Subtree skipping: unchanged dicts skip lookups and stable leaves; any mutation of a
//! dict on the path brings them back.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use super::util::{dicts, get, inst_dict, item, local, run, with_py};
use crate::guards::{dict_tags_supported, Guard, GuardTree, Source};

const SETUP: &std::ffi::CStr = c"calls = [0]
class K:
    def __hash__(self):
        return hash('a')
    def __eq__(self, other):
        calls[0] += 1
        return False
class Lin: pass
class M: pass
m = M()
m.cfg = {K(): 0, 'a': 1, 'b': 'x'}
l1, l2 = Lin(), Lin()
m.mods = {'l1': l1, 'l2': l2}
";

fn tree(py: Python<'_>, ns: &Bound<'_, PyDict>) -> GuardTree {
    let d = inst_dict(&local(0, "self"));
    let cfg = item(&d, "cfg");
    let mods = item(&d, "mods");
    let guards: Vec<(Arc<Source>, Guard)> = vec![
        (
            item(&cfg, "a"),
            Guard::Equals(PyInt::new(py, 1).into_any().unbind()),
        ),
        (
            item(&cfg, "b"),
            Guard::Equals(PyString::new(py, "x").into_any().unbind()),
        ),
        (cfg.clone(), Guard::Len(3)),
        (item(&mods, "l1"), Guard::IdMatch(get(ns, "l1").unbind())),
    ];
    GuardTree::build(py, &guards, &[item(&mods, "l2")]).unwrap()
}

#[test]
fn skipping_is_invisible_and_invalidated_by_mutation() {
    with_py(|py| {
        assert!(dict_tags_supported(py), "CPython 3.11 dict version tags");
        let ns = run(py, SETUP);
        let t = tree(py, &ns);
        assert!(t.subtree_skipping());
        let (g, b) = dicts(py);
        let m = get(&ns, "m");
        let frame = std::slice::from_ref(&m);
        let calls = || -> i64 { get(&ns, "calls").get_item(0).unwrap().extract().unwrap() };
        let check = || {
            let mut out = Vec::new();
            let ok = t.check(py, frame, &g, &b, &mut out);
            (ok, out.first().map(|o| o.bind(py).clone()))
        };
        let before = calls();
        let (ok, fetched) = check();
        assert!(ok);
        assert!(fetched.unwrap().is(get(&ns, "l2")));
        let after_first = calls();
        assert_eq!(after_first, before + 1, "one real lookup of cfg['a']");
        for _ in 0..3 {
            let (ok, fetched) = check();
            assert!(ok);
            assert!(
                fetched.unwrap().is(get(&ns, "l2")),
                "fetched values still produced"
            );
        }
        assert_eq!(calls(), after_first, "unchanged dict: lookup skipped");

        // Mutating the nested dict (not the instance dict) invalidates.
        run(py, c"import __main__").set_item("m", &m).unwrap();
        let cfg = m.getattr("cfg").unwrap();
        cfg.set_item("a", 2).unwrap();
        assert!(!check().0);
        cfg.set_item("a", 1).unwrap();
        assert!(check().0);
        assert!(calls() > after_first, "changed dict: looked up again");

        // Identity under a dict.
        let mods = m.getattr("mods").unwrap();
        mods.set_item("l1", get(&ns, "l2")).unwrap();
        assert!(!check().0);
        mods.set_item("l1", get(&ns, "l1")).unwrap();
        assert!(check().0);

        // A fetched item replaced: the new object is fetched.
        let fresh = run(py, c"class Z: pass\nz = Z()");
        mods.set_item("l2", get(&fresh, "z")).unwrap();
        let (ok, fetched) = check();
        assert!(ok);
        assert!(fetched.unwrap().is(get(&fresh, "z")));

        // Replacing a whole dict on the path (instance dict changes).
        let equal = PyDict::new(py);
        equal.set_item("a", 1).unwrap();
        equal.set_item("b", "x").unwrap();
        equal.set_item("c", 0).unwrap();
        m.setattr("cfg", &equal).unwrap();
        assert!(check().0);
        equal.set_item("b", "y").unwrap();
        assert!(!check().0);
        assert_eq!(
            t.explain_failure(py, frame, &g, &b).as_deref(),
            Some("self.cfg['b']: 'x' -> 'y'")
        );
        equal.set_item("b", "x").unwrap();
        equal.set_item("d", 0).unwrap();
        assert!(!check().0, "Len on the dict after an insert");
    });
}

#[test]
fn without_skipping_every_lookup_runs() {
    with_py(|py| {
        let ns = run(py, SETUP);
        let mut t = tree(py, &ns);
        t.set_subtree_skipping(false);
        let (g, b) = dicts(py);
        let m = get(&ns, "m");
        let calls = || -> i64 { get(&ns, "calls").get_item(0).unwrap().extract().unwrap() };
        let before = calls();
        for _ in 0..3 {
            assert!(t.check(py, std::slice::from_ref(&m), &g, &b, &mut Vec::new()));
        }
        assert_eq!(calls(), before + 3);
    });
}

#[test]
fn tensors_under_unchanged_dicts_are_still_checked() {
    with_py(|py| {
        if !super::util::torch_ready(py) {
            return;
        }
        let ns = run(
            py,
            c"import torch\nclass M: pass\nm = M()\nm.p = {'w': torch.zeros(4, 4)}",
        );
        let m = get(&ns, "m");
        let w_src = item(&item(&inst_dict(&local(0, "self")), "p"), "w");
        let w = m.getattr("p").unwrap().get_item("w").unwrap();
        let meta = crate::guards::TensorMeta::read(&w).unwrap();
        let t = GuardTree::build(py, &[(w_src.clone(), Guard::Tensor(meta))], &[w_src]).unwrap();
        let (g, b) = dicts(py);
        let frame = std::slice::from_ref(&m);
        assert!(t.check(py, frame, &g, &b, &mut Vec::new()));
        assert!(t.check(py, frame, &g, &b, &mut Vec::new()));
        w.call_method1("resize_", (2, 8)).unwrap();
        assert!(!t.check(py, frame, &g, &b, &mut Vec::new()));
        assert_eq!(
            t.explain_failure(py, frame, &g, &b).as_deref(),
            Some("self.p['w'].shape: [4, 4] -> [2, 8]")
        );
    });
}
