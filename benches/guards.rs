//! Criterion benchmarks of guard evaluation: tensor-argument trees, a module-like tree
//! with and without subtree skipping, a cache hit behind 7 misses, native vs Python
//! tensor-metadata reads, and the global-state snapshot.

use std::ffi::CStr;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ferrodyn_core::guards::{
    init_native_tensor_reader, native_tensor_reader_note, torch_lib_dir, CacheEntry, CodeCache,
    DictKey, GlobalState, Guard, GuardTree, Source, TensorMeta,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Puts the venv on `sys.path`, imports torch, initialises the native reader.
fn setup(py: Python<'_>) -> bool {
    let venv = std::env::var("FERRODYN_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/ferrodyn-venv",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let v = py.version_info();
    let site = format!("{venv}/lib/python{}.{}/site-packages", v.major, v.minor);
    let ok = py
        .import("sys")
        .and_then(|s| s.getattr("path"))
        .and_then(|p| p.call_method1("insert", (0, site)))
        .and_then(|_| py.import("torch"))
        .is_ok();
    if !ok {
        eprintln!("torch is not importable; skipping guard benchmarks");
        return false;
    }
    let dir = torch_lib_dir(py).expect("torch lib dir");
    init_native_tensor_reader(py, &dir).expect("init");
    eprintln!("{}", native_tensor_reader_note());
    true
}

fn run<'py>(py: Python<'py>, code: &CStr) -> Bound<'py, PyDict> {
    let ns = PyDict::new(py);
    py.run(code, Some(&ns), Some(&ns))
        .expect("bench setup code");
    ns
}

fn get<'py>(ns: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    ns.get_item(name).unwrap().unwrap()
}

fn local(index: u32) -> Arc<Source> {
    Arc::new(Source::Local {
        index,
        name: format!("a{index}"),
    })
}

fn item(base: &Arc<Source>, key: &str) -> Arc<Source> {
    Arc::new(Source::DictItem {
        base: base.clone(),
        key: DictKey::Str(key.into()),
    })
}

fn inst_dict(base: &Arc<Source>) -> Arc<Source> {
    Arc::new(Source::InstDict { base: base.clone() })
}

fn tensor_args(c: &mut Criterion) {
    Python::attach(|py| {
        if !setup(py) {
            return;
        }
        let (g, b) = (PyDict::new(py), PyDict::new(py));
        let mut group = c.benchmark_group("tensor_args");
        for n in [1u32, 10, 100] {
            let ns = run(
                py,
                c"import torch\nts = [torch.randn(8, 4) for _ in range(100)]",
            );
            let ts = get(&ns, "ts").cast_into::<PyList>().unwrap();
            let frame: Vec<Bound<'_, PyAny>> = ts.iter().take(n as usize).collect();
            let guards: Vec<(Arc<Source>, Guard)> = (0..n)
                .map(|i| {
                    let meta = TensorMeta::read(&frame[i as usize]).unwrap();
                    (local(i), Guard::Tensor(meta))
                })
                .collect();
            let fetch: Vec<Arc<Source>> = (0..n).map(local).collect();
            let tree = GuardTree::build(py, &guards, &fetch).unwrap();
            let mut out = Vec::with_capacity(n as usize);
            assert!(tree.check(py, &frame, &g, &b, &mut out));
            group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bch, _| {
                bch.iter(|| {
                    out.clear();
                    black_box(tree.check(py, &frame, &g, &b, &mut out))
                })
            });
        }
        group.finish();
    });
}

/// A Sequential of 100 Linear layers (200 parameters), guarded the way a tracer would:
/// module identity and flags, buffer dicts, config ints, parameter dict keys, and per parameter either
/// a tensor guard plus a fetch (`params=tensor`) or an identity guard (`params=id`, a
/// specialised module whose parameters are constants of the graph).
fn module_tree(c: &mut Criterion) {
    Python::attach(|py| {
        if !setup(py) {
            return;
        }
        let ns = run(
            py,
            c"import torch
m = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(100)])",
        );
        let m = get(&ns, "m");
        let (g, b) = (PyDict::new(py), PyDict::new(py));
        let frame = [m.clone()];
        let mut group = c.benchmark_group("module_200_params");
        for tensors in [true, false] {
            let slf = local(0);
            let d = inst_dict(&slf);
            let mods = item(&d, "_modules");
            let mut guards = vec![
                (slf.clone(), Guard::TypeMatch(m.get_type().unbind())),
                (
                    item(&d, "training"),
                    Guard::Equals(
                        true.into_pyobject(py)
                            .unwrap()
                            .to_owned()
                            .into_any()
                            .unbind(),
                    ),
                ),
            ];
            let mut fetch = Vec::new();
            let modules = m
                .getattr("_modules")
                .unwrap()
                .cast_into::<PyDict>()
                .unwrap();
            let keys: Vec<Py<PyAny>> = modules.keys().iter().map(|k| k.unbind()).collect();
            guards.push((mods.clone(), Guard::DictKeys(keys)));
            for (k, sub) in modules.iter() {
                let k: String = k.extract().unwrap();
                let s = item(&mods, &k);
                let sd = inst_dict(&s);
                guards.push((s.clone(), Guard::IdMatch(sub.clone().unbind())));
                let t = true
                    .into_pyobject(py)
                    .unwrap()
                    .to_owned()
                    .into_any()
                    .unbind();
                guards.push((item(&sd, "training"), Guard::Equals(t)));
                guards.push((item(&sd, "_buffers"), Guard::Len(0)));
                let four = 4i64.into_pyobject(py).unwrap().into_any().unbind();
                guards.push((item(&sd, "in_features"), Guard::Equals(four)));
                let params = item(&sd, "_parameters");
                let pd = sub
                    .getattr("_parameters")
                    .unwrap()
                    .cast_into::<PyDict>()
                    .unwrap();
                let pkeys: Vec<Py<PyAny>> = pd.keys().iter().map(|k| k.unbind()).collect();
                guards.push((params.clone(), Guard::DictKeys(pkeys)));
                for (pk, p) in pd.iter() {
                    let ps = item(&params, &pk.extract::<String>().unwrap());
                    if tensors {
                        guards.push((ps.clone(), Guard::Tensor(TensorMeta::read(&p).unwrap())));
                        fetch.push(ps);
                    } else {
                        guards.push((ps, Guard::IdMatch(p.unbind())));
                    }
                }
            }
            let mut tree = GuardTree::build(py, &guards, &fetch).unwrap();
            for skip in [true, false] {
                tree.set_subtree_skipping(skip);
                let mut out = Vec::with_capacity(fetch.len());
                assert!(tree.check(py, &frame, &g, &b, &mut out));
                let id = format!(
                    "params={}/skipping={}",
                    if tensors { "tensor" } else { "id" },
                    if skip { "on" } else { "off" }
                );
                group.bench_function(BenchmarkId::from_parameter(id), |bch| {
                    bch.iter(|| {
                        out.clear();
                        black_box(tree.check(py, &frame, &g, &b, &mut out))
                    })
                });
            }
            eprintln!(
                "module tree (tensors={tensors}): {} leaves, {} nodes",
                tree.len(),
                tree.node_count()
            );
        }
        group.finish();
    });
}

/// K=8 entries differing in x's shape; inputs cycle so that each lookup hits the least
/// recently used entry, which is always the last one (7 misses, then the hit).
fn cache_hit_last(c: &mut Criterion) {
    Python::attach(|py| {
        if !setup(py) {
            return;
        }
        let ns = run(
            py,
            c"import torch\nxs = [torch.randn(i + 1, 4) for i in range(8)]",
        );
        let xs: Vec<Bound<'_, PyAny>> = get(&ns, "xs")
            .cast_into::<PyList>()
            .unwrap()
            .iter()
            .collect();
        let (g, b) = (PyDict::new(py), PyDict::new(py));
        let mut cache = CodeCache::new();
        for (i, x) in xs.iter().enumerate() {
            let guards = [(local(0), Guard::Tensor(TensorMeta::read(x).unwrap()))];
            let tree = GuardTree::build(py, &guards, &[local(0)]).unwrap();
            cache.insert(CacheEntry {
                shape_guard: None,
                state: GlobalState::empty(),
                tree,
                artifact: i,
            });
        }
        let frames: Vec<[Bound<'_, PyAny>; 1]> = xs.iter().map(|x| [x.clone()]).collect();
        let st = GlobalState::empty();
        let mut out = Vec::with_capacity(1);
        for round in 0..16 {
            let i = round % 8;
            assert_eq!(cache.entries().last().map(|e| e.artifact), Some(i));
            assert_eq!(
                cache.lookup(py, &st, &frames[i], &g, &b, &mut out).copied(),
                Some(i)
            );
            out.clear();
        }
        let mut i = 0usize;
        c.bench_function("cache_k8_hit_last", |bch| {
            bch.iter(|| {
                out.clear();
                let hit = cache.lookup(py, &st, &frames[i], &g, &b, &mut out).copied();
                i = (i + 1) % 8;
                black_box(hit)
            })
        });
    });
}

fn tensor_read(c: &mut Criterion) {
    Python::attach(|py| {
        if !setup(py) {
            return;
        }
        let ns = run(py, c"import torch\nx = torch.randn(8, 4)");
        let x = get(&ns, "x");
        let meta = TensorMeta::read(&x).unwrap();
        let mut group = c.benchmark_group("tensor_match");
        group.bench_function("native", |bch| bch.iter(|| black_box(meta.matches(&x))));
        group.bench_function("python", |bch| {
            bch.iter(|| black_box(meta.matches_python(&x)))
        });
        group.finish();
    });
}

/// The global-state snapshot every call reads (grad/inference mode, autocast, default dtype,
/// deterministic and backend flags, mode stacks): native reads vs the same fields through
/// Python.
fn global_state(c: &mut Criterion) {
    Python::attach(|py| {
        if !setup(py) {
            return;
        }
        let ok = py
            .import("sys")
            .and_then(|s| s.getattr("path"))
            .and_then(|p| p.call_method1("insert", (0, "pysrc")))
            .and_then(|_| py.import("ferrodyn.global_state"));
        let Ok(m) = ok else {
            eprintln!("ferrodyn.global_state is not importable; skipping");
            return;
        };
        let read_all = m.getattr("read_all").unwrap();
        // The first read builds the reader (validation flips): keep it out of the timing.
        GlobalState::current(py).unwrap();
        let mut group = c.benchmark_group("global_state");
        group.bench_function("native_snapshot", |bch| {
            bch.iter(|| black_box(GlobalState::current(py).unwrap()))
        });
        group.bench_function("python_reads", |bch| {
            bch.iter(|| black_box(read_all.call0().unwrap()))
        });
        group.finish();
    });
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tensor_args, module_tree, cache_hit_last, tensor_read, global_state
}
criterion_main!(benches);
