//! CodeCache: MRU order, hits move to the front, compile count, miss reasons.

use pyo3::prelude::*;
use pyo3::types::PyInt;

use super::util::{dicts, local, with_py};
use crate::guards::{
    CacheEntry, CodeCache, GlobalState, Guard, GuardTree, DEFAULT_RECOMPILE_LIMIT,
};

fn entry(py: Python<'_>, n: i64) -> CacheEntry<i64> {
    let g = Guard::Equals(PyInt::new(py, n).into_any().unbind());
    let tree = GuardTree::build(py, &[(local(0, "n"), g)], &[local(0, "n")]).unwrap();
    CacheEntry {
        shape_guard: None,
        state: GlobalState::empty(),
        tree,
        artifact: n,
    }
}

#[test]
fn mru_order_and_compile_count() {
    with_py(|py| {
        let (g, b) = dicts(py);
        let st = GlobalState::empty();
        let mut cache = CodeCache::new();
        for n in 0..4 {
            cache.insert(entry(py, n));
        }
        assert_eq!(cache.compile_count(), 4);
        let order = |c: &CodeCache<i64>| c.entries().iter().map(|e| e.artifact).collect::<Vec<_>>();
        assert_eq!(order(&cache), [3, 2, 1, 0]);
        let frame = [PyInt::new(py, 1).into_any()];
        let mut out = Vec::new();
        assert_eq!(cache.lookup(py, &st, &frame, &g, &b, &mut out), Some(&1));
        assert_eq!(out.len(), 1);
        assert_eq!(order(&cache), [1, 3, 2, 0]);
        let miss = [PyInt::new(py, 9).into_any()];
        let mut out = Vec::new();
        assert_eq!(cache.lookup(py, &st, &miss, &g, &b, &mut out), None);
        assert!(out.is_empty());
        assert_eq!(
            cache.last_miss_reasons(py, &st, &miss, &g, &b),
            ["n: 1 -> 9", "n: 3 -> 9", "n: 2 -> 9", "n: 0 -> 9"]
        );
        assert!(!cache.at_recompile_limit());
        for n in 4..DEFAULT_RECOMPILE_LIMIT as i64 {
            cache.insert(entry(py, n));
        }
        assert!(cache.at_recompile_limit());
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.compile_count(), 0);
    });
}

#[test]
fn global_state_mismatch_is_a_miss_with_a_reason() {
    with_py(|py| {
        let (g, b) = dicts(py);
        let mut cache = CodeCache::new();
        let mut e = entry(py, 1);
        e.state = GlobalState::from_values(&[1, 0, 6]);
        cache.insert(e);
        let frame = [PyInt::new(py, 1).into_any()];
        let mut out = Vec::new();
        let same = GlobalState::from_values(&[1, 0, 6]);
        assert_eq!(cache.lookup(py, &same, &frame, &g, &b, &mut out), Some(&1));
        let other = GlobalState::from_values(&[1, 1, 6]);
        let mut out = Vec::new();
        assert_eq!(cache.lookup(py, &other, &frame, &g, &b, &mut out), None);
        assert!(out.is_empty());
        let reasons = cache.last_miss_reasons(py, &other, &frame, &g, &b);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with("global state "), "{reasons:?}");
        assert!(
            reasons[0].ends_with("-> 1") || reasons[0].ends_with("-> True"),
            "{reasons:?}"
        );
    });
}
