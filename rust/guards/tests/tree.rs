//! Tree building (prefix sharing), fetch order, failures without exceptions, messages.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString};

use super::util::{attr, dicts, get, global, inst_dict, item, local, run, with_py};
use crate::guards::{Guard, GuardTree, Source};

fn int(py: Python<'_>, i: i64) -> Py<PyAny> {
    PyInt::new(py, i).into_any().unbind()
}

#[test]
fn shared_prefix_is_accessed_once() {
    with_py(|py| {
        let ns = run(
            py,
            c"class Cfg:
    calls = 0
    def __init__(self):
        self.d = {'a': 1, 'b': 2, 'c': 3}
class M:
    def __getattr__(self, name):
        Cfg.calls += 1
        if name == 'cfg':
            return Cfg()
        raise AttributeError(name)
m = M()",
        );
        let slf = local(0, "self");
        let cfg = attr(&slf, "cfg");
        let d = item(&inst_dict(&cfg), "d");
        let guards: Vec<(Arc<Source>, Guard)> = ["a", "b", "c"]
            .iter()
            .zip(1..)
            .map(|(k, v)| (item(&d, k), Guard::Equals(int(py, v))))
            .collect();
        let tree = GuardTree::build(py, &guards, &[]).unwrap();
        // self, self.cfg, self.cfg.__dict__, self.cfg.d, and the three items.
        assert_eq!(tree.node_count(), 7);
        assert_eq!(tree.len(), 3);
        let (g, b) = dicts(py);
        let m = get(&ns, "m");
        let mut out = Vec::new();
        assert!(tree.check(py, std::slice::from_ref(&m), &g, &b, &mut out));
        let calls: i64 = get(&ns, "Cfg").getattr("calls").unwrap().extract().unwrap();
        assert_eq!(calls, 1, "self.cfg evaluated once for three guards");
    });
}

#[test]
fn fetch_order_follows_fetch_list() {
    with_py(|py| {
        let (g, b) = dicts(py);
        g.set_item("A", "global-a").unwrap();
        let x = local(0, "x");
        let y = local(1, "y");
        let guards = vec![(x.clone(), Guard::Equals(int(py, 1)))];
        let fetch = vec![y.clone(), global("A"), x.clone(), y];
        let tree = GuardTree::build(py, &guards, &fetch).unwrap();
        let frame = [
            PyInt::new(py, 1).into_any(),
            PyString::new(py, "yy").into_any(),
        ];
        let mut out = vec![int(py, 99)];
        assert!(tree.check(py, &frame, &g, &b, &mut out));
        let got: Vec<String> = out.iter().map(|o| o.bind(py).to_string()).collect();
        assert_eq!(got, ["99", "yy", "global-a", "1", "yy"]);
        // A failing check leaves `out` untouched.
        let frame2 = [
            PyInt::new(py, 2).into_any(),
            PyString::new(py, "yy").into_any(),
        ];
        assert!(!tree.check(py, &frame2, &g, &b, &mut out));
        assert_eq!(out.len(), 5);
    });
}

#[test]
fn access_errors_are_failures_not_exceptions() {
    with_py(|py| {
        let ns = run(py, c"class O: pass\no = O()\no.d = [1, 2]\nt = (1,)");
        let x = local(0, "x");
        let cases: Vec<(Arc<Source>, &str, &str)> = vec![
            (
                attr(&x, "missing"),
                "o",
                "x.missing: AttributeError: 'O' object has no attribute 'missing'",
            ),
            (
                item(&attr(&x, "d"), "k"),
                "o",
                "x.d['k']: not a dict (list)",
            ),
            (item(&inst_dict(&x), "zz"), "o", "x.zz: key 'zz' missing"),
            (
                inst_dict(&x),
                "t",
                "x.__dict__: tuple object has no __dict__",
            ),
            (
                Arc::new(Source::Index {
                    base: x.clone(),
                    index: 5,
                }),
                "t",
                "x[5]: index 5 out of range for length 1",
            ),
        ];
        let (g, b) = dicts(py);
        for (src, val, msg) in cases {
            let tree =
                GuardTree::build(py, &[(src.clone(), Guard::Equals(py.None()))], &[]).unwrap();
            let v = get(&ns, val);
            let mut out = Vec::new();
            assert!(!tree.check(py, std::slice::from_ref(&v), &g, &b, &mut out));
            assert!(!PyErr::occurred(py), "{}: exception left set", src.render());
            let why = tree.explain_failure(py, std::slice::from_ref(&v), &g, &b);
            assert_eq!(why.as_deref(), Some(msg));
        }
        // A frame shorter than the tree's locals: failure, not a panic.
        let tree = GuardTree::build(py, &[(local(3, "w"), Guard::Len(0))], &[]).unwrap();
        assert!(!tree.check(py, &[], &g, &b, &mut Vec::new()));
    });
}

#[test]
fn explain_and_describe() {
    with_py(|py| {
        let (g, b) = dicts(py);
        g.set_item("CONFIG", 3).unwrap();
        let guards = vec![
            (
                local(0, "n"),
                Guard::TypeMatch(py.get_type::<PyInt>().unbind()),
            ),
            (global("CONFIG"), Guard::Equals(int(py, 3))),
        ];
        let tree = GuardTree::build(py, &guards, &[]).unwrap();
        assert_eq!(tree.describe(), ["n: type is int", "G['CONFIG']: == 3"]);
        let frame = [PyInt::new(py, 5).into_any()];
        assert_eq!(tree.explain_failure(py, &frame, &g, &b), None);
        g.set_item("CONFIG", 4).unwrap();
        assert!(!tree.check(py, &frame, &g, &b, &mut Vec::new()));
        let why = tree.explain_failure(py, &frame, &g, &b).unwrap();
        assert_eq!(why, "G['CONFIG']: 3 -> 4");
        g.del_item("CONFIG").unwrap();
        let why = tree.explain_failure(py, &frame, &g, &b).unwrap();
        assert_eq!(why, "G['CONFIG']: key 'CONFIG' missing");
    });
}

#[test]
fn builtins_and_type_of() {
    with_py(|py| {
        let (g, b) = dicts(py);
        let builtins = py.import("builtins").unwrap().dict();
        let len_fn = builtins.get_item("len").unwrap().unwrap();
        let src = Arc::new(Source::Builtin { name: "len".into() });
        let ty = Arc::new(Source::TypeOf {
            base: local(0, "x"),
        });
        let guards = vec![
            (src, Guard::IdMatch(len_fn.unbind())),
            (
                ty,
                Guard::IdMatch(py.get_type::<PyDict>().into_any().unbind()),
            ),
        ];
        let tree = GuardTree::build(py, &guards, &[]).unwrap();
        let frame = [PyDict::new(py).into_any()];
        assert!(tree.check(py, &frame, &g, &builtins, &mut Vec::new()));
        assert!(!tree.check(py, &frame, &g, &b, &mut Vec::new()));
    });
}

#[test]
fn structures_can_live_in_pyclasses() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Source>();
    send_sync::<Guard>();
    send_sync::<GuardTree>();
    send_sync::<crate::guards::CodeCache<Py<PyAny>>>();
}
