//! Tensor metadata: the native reader agrees with Python; mismatch messages.

use pyo3::prelude::*;
use pyo3::types::PyList;

use super::util::{check1, explain1, get, run, torch_ready, with_py};
use crate::guards::tensor_meta::python_view;
use crate::guards::tensor_native::native_reader;
use crate::guards::{native_tensor_reader_active, native_tensor_reader_note, Guard, TensorMeta};

#[test]
fn native_reader_agrees_with_python() {
    with_py(|py| {
        if !torch_ready(py) {
            return;
        }
        println!("{}", native_tensor_reader_note());
        assert!(
            native_tensor_reader_active(),
            "{}",
            native_tensor_reader_note()
        );
        let ns = run(
            py,
            c"import torch
b = torch.randn(5, 6, 7)
ts = [b, b.permute(2, 0, 1), b[1:4, ::2, 3], b.sum(), torch.arange(10)[::3],
      torch.zeros(2, 3, dtype=torch.int16), torch.ones(3, dtype=torch.float16).unsqueeze(1),
      torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(4), requires_grad=False),
      torch.zeros(0), torch.empty(3, 0, 2), torch.randn(2, requires_grad=True).exp(),
      torch.zeros(2, 2).as_strided((2, 2), (0, 1)), torch.tensor([True, False]),
      torch.zeros(3, device='meta')]",
        );
        let ts = get(&ns, "ts").cast_into::<PyList>().unwrap();
        let reader = native_reader().unwrap();
        for (i, t) in ts.iter().enumerate() {
            let native = reader.view(&t).expect("native read");
            let python = python_view(&t).unwrap();
            assert_eq!(native, python, "tensor {i}");
            let meta = TensorMeta::read(&t).unwrap();
            assert!(meta.matches(&t), "tensor {i}");
        }
        // Sparse tensors are read through Python (the native reader declines).
        let sparse = run(py, c"import torch\ns = torch.eye(3).to_sparse()");
        let s = get(&sparse, "s");
        assert!(reader.view(&s).is_none());
        let meta = TensorMeta::read(&s).unwrap();
        assert!(meta.matches(&s));
    });
}

#[test]
fn tensor_guard_mismatches() {
    with_py(|py| {
        if !torch_ready(py) {
            return;
        }
        let ns = run(
            py,
            c"import torch
x = torch.randn(8, 4)
bigger = torch.randn(9, 4)
f64 = torch.randn(8, 4, dtype=torch.float64)
rg = torch.randn(8, 4, requires_grad=True)
strided = torch.empty_strided((8, 4), (1, 8))
param = torch.nn.Parameter(torch.randn(8, 4))
other = torch.randn(8, 4)",
        );
        let meta = || TensorMeta::read(&get(&ns, "x")).unwrap();
        assert!(check1(py, Guard::Tensor(meta()), &get(&ns, "other")));
        let cases = [
            ("bigger", "x.shape: [8, 4] -> [9, 4]"),
            ("f64", "x.dtype: torch.float32 -> torch.float64"),
            ("rg", "x.requires_grad: False -> True"),
            ("strided", "x.stride(): [4, 1] -> [1, 8]"),
            ("param", "type(x): torch.Tensor -> torch.nn.Parameter"),
        ];
        for (name, msg) in cases {
            let v = get(&ns, name);
            assert!(!check1(py, Guard::Tensor(meta()), &v), "{name}");
            assert_eq!(
                explain1(py, Guard::Tensor(meta()), &v).as_deref(),
                Some(msg)
            );
        }
        let not_tensor = pyo3::types::PyInt::new(py, 3).into_any();
        assert!(!check1(py, Guard::Tensor(meta()), &not_tensor));
        assert_eq!(
            meta().describe(),
            "tensor(float32, cpu, size=[8, 4], stride=[4, 1], requires_grad=False)"
        );
        // In-place metadata change.
        let x = get(&ns, "x");
        let m = meta();
        x.call_method1("t_", ()).unwrap();
        assert!(!m.matches(&x));
    });
}
