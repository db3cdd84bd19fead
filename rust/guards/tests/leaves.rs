//! Each leaf kind passes and fails as documented.

use pyo3::types::{PyInt, PyString, PyType};

use super::util::{check1, explain1, get, run, with_py};
use crate::guards::Guard;

#[test]
fn type_match() {
    with_py(|py| {
        let int_t = py.get_type::<PyInt>().unbind();
        let one = PyInt::new(py, 1).into_any();
        let s = PyString::new(py, "a").into_any();
        assert!(check1(py, Guard::TypeMatch(int_t.clone_ref(py)), &one));
        assert!(!check1(py, Guard::TypeMatch(int_t.clone_ref(py)), &s));
        let ns = run(py, c"class I(int): pass\nv = I(3)");
        assert!(!check1(
            py,
            Guard::TypeMatch(int_t.clone_ref(py)),
            &get(&ns, "v")
        ));
        let msg = explain1(py, Guard::TypeMatch(int_t), &s).unwrap();
        assert_eq!(msg, "type(x): int -> str");
    });
}

#[test]
fn id_match() {
    with_py(|py| {
        let ns = run(py, c"a = object()\nb = object()");
        let a = get(&ns, "a");
        assert!(check1(py, Guard::IdMatch(a.clone().unbind()), &a));
        assert!(!check1(
            py,
            Guard::IdMatch(a.clone().unbind()),
            &get(&ns, "b")
        ));
    });
}

#[test]
fn equals_constants() {
    with_py(|py| {
        let ns = run(
            py,
            c"big = 2**80\nbig2 = 2**80\ns1 = 'hello world'\ns2 = ''.join(['hello', ' world'])
t1 = (1, 'a', (2.5, None))\nt2 = (1, 'a', (2.5, None))\nt3 = (True, 'a', (2.5, None))
i1 = 1000\ni2 = int('1000')\nf1 = 0.5\nf2 = float('0.5')",
        );
        let eq = |c: &str, v: &str| check1(py, Guard::Equals(get(&ns, c).unbind()), &get(&ns, v));
        assert!(eq("big", "big2"));
        assert!(eq("s1", "s2"));
        assert!(eq("t1", "t2"));
        assert!(!eq("t1", "t3"), "tuple elements compare with their types");
        assert!(eq("i1", "i2"));
        assert!(eq("f1", "f2"));
        assert!(!eq("i1", "f1"));
        let t = pyo3::types::PyBool::new(py, true).to_owned().into_any();
        let one = PyInt::new(py, 1).into_any();
        assert!(
            !check1(py, Guard::Equals(one.clone().unbind()), &t),
            "True is not 1"
        );
        assert!(!check1(py, Guard::Equals(py.None()), &one));
        assert!(check1(
            py,
            Guard::Equals(py.None()),
            &py.None().into_bound(py)
        ));
        let two = PyInt::new(py, 2).into_any();
        assert_eq!(
            explain1(py, Guard::Equals(one.unbind()), &two).unwrap(),
            "x: 1 -> 2"
        );
    });
}

#[test]
fn len_and_dict_keys() {
    with_py(|py| {
        let ns = run(
            py,
            c"t = (1, 2)\nl = [1, 2]\nd = {'a': 1, 'b': 2}\nd2 = {'b': 2, 'a': 1}\nn = 2",
        );
        for v in ["t", "l", "d"] {
            assert!(check1(py, Guard::Len(2), &get(&ns, v)), "{v}");
            assert!(!check1(py, Guard::Len(3), &get(&ns, v)), "{v}");
        }
        assert!(!check1(py, Guard::Len(2), &get(&ns, "n")));
        assert_eq!(
            explain1(py, Guard::Len(3), &get(&ns, "l")).unwrap(),
            "len(x): 3 -> 2"
        );
        let keys = || {
            vec![
                PyString::new(py, "a").into_any().unbind(),
                PyString::new(py, "b").into_any().unbind(),
            ]
        };
        assert!(check1(py, Guard::DictKeys(keys()), &get(&ns, "d")));
        assert!(
            !check1(py, Guard::DictKeys(keys()), &get(&ns, "d2")),
            "order matters"
        );
        assert!(!check1(py, Guard::DictKeys(keys()), &get(&ns, "t")));
        assert_eq!(
            explain1(py, Guard::DictKeys(keys()), &get(&ns, "d2")).unwrap(),
            "x.keys(): ['a', 'b'] -> ['b', 'a']"
        );
    });
}

#[test]
fn has_attr() {
    with_py(|py| {
        let ns = run(
            py,
            c"class C:\n    def __getattr__(self, n):\n        raise ValueError(n)\nc = C()\nc.foo = 1",
        );
        let c = get(&ns, "c");
        assert!(check1(py, Guard::HasAttr("foo".into(), true), &c));
        assert!(!check1(py, Guard::HasAttr("foo".into(), false), &c));
        // __getattr__ raising a non-AttributeError: still just "no attribute".
        assert!(check1(py, Guard::HasAttr("bar".into(), false), &c));
        let msg = explain1(py, Guard::HasAttr("bar".into(), true), &c).unwrap();
        assert_eq!(msg, "hasattr(x, 'bar'): True -> False");
        let _ = PyType::new::<PyInt>(py);
    });
}
